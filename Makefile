# The two commands a reader needs: `make book` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: install book test test-unit test-notebooks test-notebooks-other-cpu test-notebooks-both test-browser \
        notebooks benchmark gpu-check gpu-book gpu-wheels constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Builds the HTML book from the notebooks' stored outputs (which `make test` checks with nbval).
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going

# Every test: the library and the book build (side by side), each notebook twice (nbval: once on this CPU's
# code path, once on another, side by side), the pages in Chromium. The book is built from the notebooks'
# stored outputs, which nbval checks, so the order of the two does not matter.
test: $(STAMP)
	mkdir -p _build
	rm -rf _build/html _build/.doctrees _build/test-times.txt
	start=$$(date +%s); \
	$(MAKE) book > _build/book.log 2>&1 & book=$$!; \
	$(MAKE) test-unit; unit=$$?; \
	wait $$book; built=$$?; \
	echo "library tests and book build: $$(( $$(date +%s) - start )) s" >> _build/test-times.txt; \
	echo "---- book build ----"; tail -n 5 _build/book.log; \
	test $$unit -eq 0 && test $$built -eq 0 || { cat _build/book.log; exit 1; }
	start=$$(date +%s); $(MAKE) test-notebooks-both; rc=$$?; \
	echo "notebooks on two CPU code paths: $$(( $$(date +%s) - start )) s" >> _build/test-times.txt; exit $$rc
	start=$$(date +%s); $(MAKE) test-browser; rc=$$?; \
	echo "browser: $$(( $$(date +%s) - start )) s" >> _build/test-times.txt; exit $$rc
	@echo "---- time of each stage ----"; cat _build/test-times.txt

# The library tests in two processes side by side: those marked slow (they train to the end, install a
# package or run a script) and the rest.
test-unit: $(STAMP)
	mkdir -p _build
	$(PY) -m pytest tests -m "slow and not browser" -p no:cacheprovider --durations=8 > _build/unit-slow.log 2>&1 & slow=$$!; \
	$(PY) -m pytest tests -m "not slow and not browser" --durations=8; fast=$$?; \
	wait $$slow; slow_rc=$$?; \
	echo "---- library tests marked slow ----"; cat _build/unit-slow.log; \
	test $$fast -eq 0 && test $$slow_rc -eq 0

test-notebooks: $(STAMP)
	$(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg \
	    --nbval-cell-timeout 3600 --durations=12 \
	    -p no:randomly $(NBVAL_EXTRA) notebooks

# The notebooks again under another CPU code path (.ci/other_cpu_path.sh): the numbers printed from trained
# models then differ from the stored ones in the last digits, and every check must still pass.
test-notebooks-other-cpu: $(STAMP)
	.ci/other_cpu_path.sh $(MAKE) test-notebooks NBVAL_EXTRA="-p no:cacheprovider"

# Both notebook runs at once (the training chapters use one thread each); the second run's log follows the first's.
test-notebooks-both: $(STAMP)
	mkdir -p _build
	$(MAKE) test-notebooks-other-cpu > _build/nbval-other-cpu.log 2>&1 & other=$$!; \
	$(MAKE) test-notebooks; first=$$?; \
	wait $$other; second=$$?; \
	echo "---- notebooks under another CPU code path ----"; cat _build/nbval-other-cpu.log; \
	test $$first -eq 0 && test $$second -eq 0

test-browser: $(STAMP)
	$(PY) -m pytest tests -m browser

# Re-executes every notebook in a fresh kernel and saves its outputs (and widget state).
notebooks: $(STAMP)
	$(PY) .ci/execute_notebooks.py $(NOTEBOOKS)

benchmark: $(STAMP)
	$(PY) benchmarks/attention_overhead.py

# On a GPU (budget ≤ 8 minutes on one H200; not yet run on one): trains the GPU preset for every kind of chapter 3 on 3 seeds, evaluates
# it up to 32×L and writes book/data/gpu/<gpu>.json. GPU_CHECK_ARGS="--device cpu --tiny" tests it on a CPU;
# GPU_CHECK_ARGS="--task text" runs chapter 3d's real-text models instead (budget ≤ 5 minutes).
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# On a GPU (budget ≤ 8 minutes on one H200; not yet run on one): every chapter top to bottom, one process each, all
# at once, and chapters 3 and 3b again with bf16 reported unsupported (fp16); writes _build/gpu_book/. The device
# machine runs it without make (benchmarks/README.md). GPU_BOOK_ARGS="--device cpu --chapters 01 02" tests it here.
gpu-book: $(STAMP)
	$(PY) benchmarks/gpu_book.py $(GPU_BOOK_ARGS)

# The wheels gpu-book installs on the device machine (newer transformers, IPython and ipywidgets) into .wheels/.
gpu-wheels: $(STAMP)
	$(PY) benchmarks/gpu_book.py --download-wheels

# Re-pins every package of the test environment (run after changing dependencies).
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' | sed 's/+cpu$$//' > $(CONSTRAINTS)

clean:
	rm -rf _build

# The two commands a reader needs: `make book` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: install book test test-unit test-notebooks test-browser notebooks benchmark constraints clean

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

# Every test: the library, each notebook once (nbval, strict), the book build, the pages in Chromium.
test: $(STAMP)
	$(MAKE) test-unit
	$(MAKE) test-notebooks
	rm -rf _build/html _build/.doctrees
	$(MAKE) book
	$(MAKE) test-browser

test-unit: $(STAMP)
	$(PY) -m pytest tests -m "not browser"

test-notebooks: $(STAMP)
	$(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg \
	    --nbval-cell-timeout 900 \
	    -p no:randomly notebooks

test-browser: $(STAMP)
	$(PY) -m pytest tests -m browser

# Re-executes every notebook in a fresh kernel and saves its outputs (and widget state).
notebooks: $(STAMP)
	$(PY) .ci/execute_notebooks.py $(NOTEBOOKS)

benchmark: $(STAMP)
	$(PY) benchmarks/attention_overhead.py

# Re-pins every package of the test environment (run after changing dependencies).
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' | sed 's/+cpu$$//' > $(CONSTRAINTS)

clean:
	rm -rf _build

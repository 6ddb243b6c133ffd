"""benchmarks/gpu_book.py: every notebook becomes a plain script, and the run's report says what happened.

The GPU itself is not here: the script runs with ``--device cpu`` on chapters 1 and 2 (no training) and on
small synthetic notebooks that train a 2-step model, fail in a known cell, or outlast their timeout.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_book.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("gpu_book", SCRIPT)
gpu_book = sys.modules["gpu_book"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up there
_spec.loader.exec_module(gpu_book)

SETTINGS = dict(chapter="x", variant="default", device="cpu", no_bf16=False, status="status.json",
                models="models.jsonl")


TRAIN_TWO_STEPS = """\
try:  # the library's layout (ssmax_lite.lab.train, formerly ssmax_lite.train)
    from ssmax_lite.lab.train import preset, train
except ImportError:
    from ssmax_lite.train import preset, train
result = train(preset("quick", steps=2), progress=False)
try:
    from ssmax_lite.lab.convert import fine_tune
except ImportError:
    from ssmax_lite.convert import fine_tune
fine_tune(result.model, result.config, 3)  # its own loop: recorded too"""


def _code(source, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": [],
            "execution_count": None}


def _notebook(path: Path, cells) -> Path:
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    return path


def _run(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


# ------------------------------------------------------------------------ notebook -> script


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_becomes_a_script_that_compiles(notebook):
    data = json.loads(notebook.read_text())
    code = [(i, c) for i, c in enumerate(data["cells"]) if c["cell_type"] == "code"]
    cells = gpu_book.notebook_cells(notebook)
    assert [c.index for c in cells] == [i for i, _ in code]
    assert [c.code_index for c in cells] == list(range(len(code)))
    for cell, (_, raw) in zip(cells, code):
        if "colab-install" in raw["metadata"].get("tags", []):
            assert cell.source is None and cell.skipped == "tagged colab-install"
            continue
        assert cell.skipped is None
        compile(cell.source, f"{notebook.stem} cell {cell.index}", "exec")
        assert not [line for line in cell.source.splitlines() if re.match(r"\s*[%!]", line)]
    assert sum(c.skipped is not None for c in cells) >= 1  # every chapter has its Colab install cell
    script = gpu_book.notebook_to_script(notebook, settings=SETTINGS)
    compile(script, str(notebook), "exec")
    assert "%pip" not in script  # the Colab cell's install line is not in the script, not even as a comment


def test_magics_are_dropped_only_where_they_are_not_python():
    cell = ("import sys\nif 'google.colab' in sys.modules:\n    %pip install -q x\n"
            "files = !ls\n!echo hi\n%matplotlib inline")
    assert gpu_book.strip_magics(cell).splitlines() == [
        "import sys", "if 'google.colab' in sys.modules:", "    pass  # dropped: %pip install -q x",
        "files = None  # dropped: !ls", "pass  # dropped: !echo hi", "pass  # dropped: %matplotlib inline"]
    python = 'n = 3\ntext = ("%d items"\n        % n)'  # a line that starts with % inside brackets is Python
    assert gpu_book.strip_magics(python) == python


def test_cell_magics_run_their_body_or_skip_the_cell():
    source, skipped = gpu_book.convert_cell("%%time\nx = 1\n%env A=1", [])
    assert skipped is None and source == "# dropped: %%time\nx = 1\npass  # dropped: %env A=1"
    assert gpu_book.convert_cell("%%bash\necho hi", []) == (None, "cell magic %%bash: not Python")
    assert gpu_book.convert_cell("print(1)", ["colab-install"]) == (None, "tagged colab-install")


def test_chapters_are_named_by_name_number_or_path(tmp_path):
    assert gpu_book.resolve_chapter("03b").name == "03b_softmax_fades.ipynb"
    assert gpu_book.resolve_chapter("03").name == "03_tiny_model.ipynb"
    assert gpu_book.resolve_chapter("06_your_own_model").name == "06_your_own_model.ipynb"
    own = _notebook(tmp_path / "own.ipynb", [])
    assert gpu_book.resolve_chapter(str(own)) == own
    with pytest.raises(ValueError, match=r"unknown chapter '7'.*accepted.*01_attention_fading"):
        gpu_book.resolve_chapter("7")


def test_every_carried_package_has_a_pinned_version():
    pins = gpu_book.pinned_versions(gpu_book.CARRIED_PACKAGES)
    assert tuple(map(int, pins["transformers"].split(".")[:2])) >= (5, 24)  # what chapter 6 needs


def test_gpu_book_refuses_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = _run("--out", str(tmp_path / "out"), "--chapters", "01")
    assert done.returncode == 2 and "--device cuda: torch sees no GPU" in done.stderr
    assert not (tmp_path / "out").exists()


def test_gpu_book_names_the_accepted_chapters(tmp_path):
    done = _run("--device", "cpu", "--chapters", "3z", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown chapter '3z'" in done.stderr and "03b_softmax_fades" in done.stderr
    done = _run("--device", "cpu", "--chapters", "01", "01_attention_fading", "--out", str(tmp_path))
    assert done.returncode == 2 and "--chapters: each chapter once" in done.stderr


# ------------------------------------------------------------------------ a run on the CPU


@pytest.mark.slow
def test_chapters_1_and_2_pass_and_a_planted_failure_is_reported(tmp_path):
    planted = _notebook(tmp_path / "planted.ipynb", [
        _code('%pip install nothing\nraise RuntimeError("the Colab cell must be skipped")', ["colab-install"]),
        {"cell_type": "markdown", "metadata": {}, "source": "# a planted failure"},
        _code('%matplotlib inline\nimport matplotlib.pyplot as plt\nimport torch\nplt.plot([1, 2])\nplt.show()\n'
              'display("shown")\nprint("bf16 check:", torch.cuda.is_bf16_supported.__name__)'),
        _code(TRAIN_TWO_STEPS),
        _code("x = 1\nassert x == 2"),
        _code('print("never runs")'),
    ])
    out = tmp_path / "out"
    (tmp_path / "no-wheels").mkdir()  # this environment has every package: install none
    done = _run("--device", "cpu", "--chapters", "01", "02", str(planted), "--no-bf16", str(planted),
                "--out", str(out), "--jobs", "2", "--timeout", "300", "--wheels", str(tmp_path / "no-wheels"))
    assert done.returncode == 1, done.stderr  # the planted failure fails the whole check
    assert sorted(p.name for p in out.iterdir()) == ["gpu_book.json", "gpu_book.txt", "gpu_book_logs.tar.gz"]
    report = json.loads((out / "gpu_book.json").read_text())
    assert report["device"] == "cpu" and report["precision"] == "fp32" and report["all_passed"] is False
    assert report["environment"]["ssmax_lite"] == str(ROOT / "ssmax_lite")  # the working tree's library
    runs = {(r["chapter"], r["variant"]): r for r in report["runs"]}
    assert list(runs) == [("01_attention_fading", "default"), ("02_softmax_vs_ssmax", "default"),
                          ("planted", "default"), ("planted", "no-bf16")]

    for chapter in ("01_attention_fading", "02_softmax_vs_ssmax"):
        run = runs[(chapter, "default")]
        code_cells = len(gpu_book.notebook_cells(ROOT / "notebooks" / f"{chapter}.ipynb"))
        assert run["passed"] and run["reasons"] == [] and run["returncode"] == 0 and not run["timed_out"]
        assert run["cells_run"] == run["cells_to_run"] == code_cells - 1  # all but the Colab install cell
        assert run["failed_cell"] is None and run["models"] == []  # chapters 1 and 2 train nothing
        assert 0 < run["wall_time_s"] < 300 and len(run["cell_seconds"]) == code_cells - 1

    for variant, bf16 in (("default", "is_bf16_supported"), ("no-bf16", "_bf16_reported_unsupported")):
        run = runs[("planted", variant)]
        assert not run["passed"] and run["returncode"] == 1 and run["reasons"] == ["cell 4: AssertionError"]
        assert run["failed_cell"]["cell"] == 4 and run["failed_cell"]["code_cell"] == 3
        assert run["failed_cell"]["source_head"] == ["x = 1", "assert x == 2"]
        assert run["failed_cell"]["exception"] == "AssertionError"
        assert run["failed_cell"]["line"] == "line 2: assert x == 2"
        assert run["cells_run"] == 2 and run["cells_to_run"] == 4
        assert run["cells_skipped"] == [{"cell": 0, "why": "tagged colab-install"}]
        assert sorted(run["cell_seconds"]) == ["2", "3", "4"] and run["wall_time_s"] > 0
        model, tuned = run["models"]  # the 2-step model of cell 3 and its 3 steps of fine-tuning, both recorded
        assert model["cell"] == tuned["cell"] == 3 and model["model"] == tuned["model"] == "TinyTransformer"
        assert (model["steps"], tuned["steps"]) == (2, 3)
        assert (model["desc"], tuned["desc"]) == ("softmax/nope seed 0", "fine_tune")
        for m in (model, tuned):
            assert (m["device"], m["device_asked"], m["precision"], m["dtype"]) == ("cpu", "cpu", "fp32", "float32")
        assert "shown" in run["output_tail"] and f"bf16 check: {bf16}" in run["output_tail"]
        assert "never runs" not in run["output_tail"] and "Colab cell" not in run["output_tail"]

    table = (out / "gpu_book.txt").read_text()
    assert "planted (no-bf16): cell 4 (code cell 3) failed" in table and "| assert x == 2" in table
    assert "bf16 reported unsupported" in table and "2 of 4 runs passed" in table
    assert table.strip() in done.stdout
    with tarfile.open(out / "gpu_book_logs.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"01_attention_fading/01_attention_fading.py", "planted-no-bf16/models.jsonl",
            "planted/output.log", "planted/status.json"} <= names


@pytest.mark.slow
def test_a_run_past_its_timeout_is_ended_and_names_its_cell(tmp_path):
    sleeper = _notebook(tmp_path / "sleeper.ipynb", [_code('print("before")'), _code("import time\ntime.sleep(600)")])
    (tmp_path / "no-wheels").mkdir()
    done = _run("--device", "cpu", "--chapters", str(sleeper), "--out", str(tmp_path / "out"), "--timeout", "15",
                "--wheels", str(tmp_path / "no-wheels"), timeout=120)
    assert done.returncode == 1, done.stderr
    [run] = json.loads((tmp_path / "out" / "gpu_book.json").read_text())["runs"]
    assert run["timed_out"] and not run["passed"] and 15 <= run["wall_time_s"] < 45
    assert run["failed_cell"]["cell"] == 1 and run["failed_cell"]["source_head"][-1] == "time.sleep(600)"
    assert run["reasons"] == ["cell 1: timed out after 15.0 s in this cell"]
    assert run["cells_run"] == 1

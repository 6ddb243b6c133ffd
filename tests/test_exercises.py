"""Exercises (issue 13): every chapter that has an "Exercises" section hides each solution in the HTML book
(tag ``hide-cell``) and collapses it in Colab (``cellView: form`` with a ``#@title`` line), and a solution
whose answer is a number checks it with an ``assert`` (so nbval checks it whenever the notebooks run)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
WITH_EXERCISES = [p for p in NOTEBOOKS if "## Exercises" in p.read_text()]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_every_chapter_has_exercises():
    missing = sorted(p.stem for p in NOTEBOOKS if p not in WITH_EXERCISES)
    assert not missing, f"chapters without an Exercises section: {missing}"


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_solutions_are_hidden_and_checked(path):
    cells = _cells(path)
    solutions = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("#@title Solution")]
    prompts = [c for c in cells if c["cell_type"] == "markdown" and "**1." in "".join(c["source"])]
    assert len(solutions) >= 2 and prompts, f"{path.name}: an Exercises section needs ≥ 2 exercises with solutions"
    for cell in solutions:
        assert "hide-cell" in cell["metadata"].get("tags", []), f"{path.name}: a solution is not hidden in the book"
        assert cell["metadata"].get("cellView") == "form", f"{path.name}: a solution is not collapsed in Colab"
        assert cell["outputs"], f"{path.name}: a solution has no stored output (run .ci/execute_notebooks.py)"
    assert sum("assert " in "".join(c["source"]) for c in solutions) >= 2, f"{path.name}: answers are not checked"

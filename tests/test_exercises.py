"""Exercises: every chapter has an "Exercises" section with at least two exercises. Each
solution is a code cell that the book shows collapsed under a toggle labelled "Solution" (tag ``hide-cell``,
MyST-NB's ``code_prompt_show``) and Colab shows collapsed under its title (``cellView: form`` with a
``#@title Solution …`` line, which the book leaves out of the page). The solution shows only the solution:
its checks sit in the cell right after it, which the book removes (tag ``remove-cell``) and nbval still runs,
so every answer is checked whenever the notebooks run."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
WITH_EXERCISES = [p for p in NOTEBOOKS if "## Exercises" in p.read_text()]

# Chapters that may still use the first mechanism (asserts inside a hide-cell solution), with the reason; once a
# chapter's solutions hold no assert it is held to the new mechanism, and its entry can go.
FIRST_MECHANISM: dict[str, str] = {}


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"])


def _asserts(cell):
    return sum(1 for line in _source(cell).splitlines() if re.match(r"\s*assert\b", line))


def test_every_chapter_has_exercises():
    missing = sorted(p.stem for p in NOTEBOOKS if p not in WITH_EXERCISES)
    assert not missing, f"chapters without an Exercises section: {missing}"


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_solutions_are_hidden_and_checked(path):
    cells = _cells(path)
    positions = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and _source(c).startswith("#@title Solution")]
    prompts = [c for c in cells if c["cell_type"] == "markdown" and "**1." in _source(c)]
    assert len(positions) >= 2 and prompts, f"{path.name}: an Exercises section needs ≥ 2 exercises with solutions"
    for i in positions:
        cell = cells[i]
        assert "hide-cell" in cell["metadata"].get("tags", []), f"{path.name}: a solution is not hidden in the book"
        assert cell["metadata"].get("cellView") == "form", f"{path.name}: a solution is not collapsed in Colab"
        assert cell["outputs"], f"{path.name}: a solution has no stored output (run .ci/execute_notebooks.py)"

    if path.stem in FIRST_MECHANISM and any(_asserts(cells[i]) for i in positions):
        assert sum(_asserts(cells[i]) for i in positions) >= 2, f"{path.name}: answers are not checked"
        return

    checked = 0
    for i in positions:
        cell, after = cells[i], cells[i + 1] if i + 1 < len(cells) else None
        label = cell["metadata"].get("mystnb", {}).get("code_prompt_show")
        assert label == "Solution", f"{path.name}: the toggle of {_source(cell).splitlines()[0]!r} reads {label!r}"
        assert _asserts(cell) == 0, f"{path.name}: {_source(cell).splitlines()[0]!r} shows its asserts to the reader"
        if after is not None and after["cell_type"] == "code" and "remove-cell" in after["metadata"].get("tags", []):
            checked += _asserts(after) > 0
    assert checked == len(positions), (f"{path.name}: {len(positions) - checked} solution(s) without a check cell "
                                       "(tag remove-cell, with asserts) right after them")

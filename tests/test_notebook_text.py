"""Notebook sources hold no control characters: a LaTeX command written with one backslash in the JSON
(``"$\theta$"``) is read as a TAB followed by ``heta``, and renders as "heta"."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_cells_have_no_control_characters(path):
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        bad = sorted({repr(ch) for ch in source if ord(ch) < 32 and ch != "\n"})
        assert not bad, f"{path.name} cell {index} holds control characters {bad} (a LaTeX command with one backslash?)"

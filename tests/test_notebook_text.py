"""Notebook sources hold no control characters: a LaTeX command written with one backslash in the JSON
(``"$\theta$"``) is read as a TAB followed by ``heta``, and renders as "heta". And the cells the book shows
hold only what the prose explains, with printed lines that fit the page."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_cells_have_no_control_characters(path):
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        bad = sorted({repr(ch) for ch in source if ord(ch) < 32 and ch != "\n"})
        assert not bad, f"{path.name} cell {index} holds control characters {bad} (a LaTeX command with one backslash?)"


# ------------------------------------------------------------------------- what the reader sees

HIDDEN = {"remove-cell", "remove-input"}
# Scaffolding a reader should not meet in a code cell the book shows: checks, timers, cache bookkeeping and
# Colab form titles (a solution's "#@title Solution …" first line is left out of the page by book/_ext).
SCAFFOLDING = {
    "assert": re.compile(r"^\s*assert\b"),
    "timer": re.compile(r"perf_counter|process_time|\[time:|\btime\.time\(|^\s*%%?time|\btimeit\b"),
    "check helper": re.compile(r"\b(np|numpy|torch)\.testing\b|\bpytest\b"),
    "cache bookkeeping": re.compile(r"cache_dir|default_cache_dir|\bCACHE\b"),
    "Colab form title": re.compile(r"^\s*#@(title|markdown|param)"),
}
WIDEST_OUTPUT_LINE = 90  # characters: what the book's code column shows without scrolling
# Chapters not yet moved to the reader's view, with the reason (the lead session keeps this list).
NOT_YET: dict[str, str] = {}
IN_SCOPE = [p for p in NOTEBOOKS if p.stem not in NOT_YET]


def _shown(cell):
    return cell["cell_type"] == "code" and not HIDDEN & set(cell["metadata"].get("tags", []))


@pytest.mark.parametrize("path", IN_SCOPE, ids=[p.stem for p in IN_SCOPE])
def test_code_cells_the_book_shows_hold_no_scaffolding(path):
    found = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if not _shown(cell):
            continue
        lines = "".join(cell["source"]).splitlines()
        if lines and lines[0].startswith("#@title Solution") and "hide-cell" in cell["metadata"].get("tags", []):
            lines = lines[1:]  # the book drops this line; Colab shows it as the collapsed cell's title
        for kind, pattern in SCAFFOLDING.items():
            found += [f"cell {index}: {kind}: {line.strip()[:60]}" for line in lines if pattern.search(line)]
    assert not found, f"{path.name}: scaffolding in cells the book shows (move it to a remove-cell cell): {found}"


@pytest.mark.parametrize("path", IN_SCOPE, ids=[p.stem for p in IN_SCOPE])
def test_printed_lines_fit_the_column(path):
    """Text the book shows as printed (not a table with an HTML rendering) is at most 90 characters a line."""
    wide = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if not _shown(cell) or "remove-output" in cell["metadata"].get("tags", []):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data or "image/png" in data:
                continue  # the page shows the HTML or the image, not the text
            text = "".join(out.get("text", "")) + "".join(data.get("text/plain", ""))
            wide += [f"cell {index}: {len(line)} characters: {line[:50]}…" for line in text.splitlines()
                     if len(line) > WIDEST_OUTPUT_LINE]
    assert not wide, f"{path.name}: printed lines wider than {WIDEST_OUTPUT_LINE} characters: {wide}"


WIDEST_FIGURE = 700  # CSS pixels: a figure wider than the code column (676 px at 1280) is shrunk, and its labels with it


@pytest.mark.parametrize("path", IN_SCOPE, ids=[p.stem for p in IN_SCOPE])
def test_figures_are_drawn_at_the_size_the_page_shows_them(path):
    """Every matplotlib figure is stored at its page size (at most the column's width, so 9-pt labels stay 9 pt)
    with at least 1.5 image pixels per CSS pixel: the book style's retina PNGs (use_book_style)."""
    import base64
    import struct

    wrong = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        for out in cell.get("outputs", []):
            if "image/png" not in out.get("data", {}):
                continue
            pixels = struct.unpack(">I", base64.b64decode(out["data"]["image/png"])[16:20])[0]
            shown = out.get("metadata", {}).get("image/png", {}).get("width")
            if shown is None or shown > WIDEST_FIGURE or pixels < 1.5 * shown:
                wrong.append(f"cell {index}: {pixels} px shown at {shown} CSS px")
    assert not wrong, f"{path.name}: figures not at the book's size and sharpness: {wrong}"


def test_the_not_yet_list_names_chapters():
    assert set(NOT_YET) <= {p.stem for p in NOTEBOOKS}


def test_no_cjk_characters_in_the_book_sources():
    """A reader's browser without CJK fonts draws them as boxes: a CJK title is given in pinyin instead."""
    root = Path(__file__).resolve().parent.parent
    sources = [*NOTEBOOKS, *sorted((root / "book").glob("*.md")), root / "book" / "references.bib", root / "README.md"]
    cjk = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")
    found = [f"{p.name}: {m.group()}" for p in sources for m in cjk.finditer(p.read_text(encoding="utf-8"))]
    assert not found, f"CJK characters, drawn as boxes without CJK fonts: {found[:5]}"

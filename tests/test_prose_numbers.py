"""Every number the chapters' prose quotes comes from a cell: it appears in the notebook's code or in
a stored output, so prose cannot drift from the outputs it describes without this test failing.

A number counts when it has two or more digits, or a decimal point (single digits are counts and chapter
numbers). The exceptions below are constants of the setup or arithmetic done in the text, each with its reason;
they are not measurements."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

# a number with a decimal point, or one of two or more digits (with thousands separators)
NUMBER = re.compile(r"(?<![\w.,$\\{}^_#-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d{2,})(?![\w])")
# what is not a quoted number: citations, links, arXiv ids, years
NOT_PROSE = re.compile(r"\{cite\}`[^`]*`|\]\([^)]*\)|arXiv[^ ]*|\b(19|20)\d\d\b")

FROM_THE_TEXT = {
    "01_attention_fading": {"148": "e^5, the arithmetic of the example", "0.2": "e^5 / (e^5 + 10^5) in percent"},
    "02_softmax_vs_ssmax": {"64": "8^2 in the worked example", "71": "64 + 7 in the worked example"},
    "03_tiny_model": {"512": "8×L tokens of the attention map"},
    "03b_softmax_fades": {"400": "chapter 3's number of steps", "0.1": "the paper's weight decay; and a move in accuracy "
                          "between CPU paths measured in benchmarks/README.md", "14": "gaps measured in the survey of "
                          "benchmarks/README.md", "10,000": "RoPE's θ"},
    "03c_why_log_n": {"0.5": "a bound on b ln n for n ≤ 64, from the fitted b printed above"},
    "03d_real_text": {"171": "the corpus's file count (ssmax_lite.lab.corpus)", "4.7": "the corpus size in MB",
                      "3.11": "Python 3.11.2, the corpus's source", "20,000": "the paper's evaluation length",
                      "3,000": "the steps of benchmarks/text_longer_training.py",
                      "1,000": "a step of benchmarks/text_longer_training.py's runs (benchmarks/README.md)",
"0.9": "AdamW's β1", "0.95": "AdamW's β2"},
    "04_log_n_family": {"4.2": "ln 64", "2.4": "(0.1 ln 256 + 1)^2", "30": "seconds per model, a rough timing"},
    "05_switching_to_ssmax": {"4.2": "ln 64", "30": "seconds per model, a rough timing",
                              "0.1": "a move in accuracy between CPU paths (chapter 3b)", "0.24": "1 / ln 64",
                              "50": "the paper's θ factor"},
    "06_your_own_model": {"128": "32 sequences × 4 needles", "0.008": "1/128, one answer", "1,020": "16L − 4",
                          "508": "8L − 4", "1.67": "ln 1024 / ln 64"},
}


def _quoted_numbers(cell_text):
    text = NOT_PROSE.sub("", cell_text)
    return [m.group(1) for m in NUMBER.finditer(text)]


def _printed_or_coded(cells):
    parts = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        parts.append("".join(cell["source"]))
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _found(number, haystack):
    """Whether ``number`` as quoted (``0.82``, ``2,048``) is a number of the haystack rounded to the quoted digits."""
    quoted = number.replace(",", "")
    digits = len(quoted.split(".")[1]) if "." in quoted else 0
    for printed in re.findall(r"\d+(?:\.\d+)?", haystack.replace(",", "")):
        if printed == quoted or ("." in printed and round(float(printed), digits) == float(quoted)):
            return True
    return False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_number_in_the_prose_comes_from_a_cell(path):
    cells = json.loads(path.read_text())["cells"]
    haystack = _printed_or_coded(cells)
    allowed = FROM_THE_TEXT.get(path.stem, {})
    missing = sorted({n for cell in cells if cell["cell_type"] == "markdown"
                      for n in _quoted_numbers("".join(cell["source"]))
                      if n not in allowed and not _found(n, haystack)})
    assert not missing, (f"{path.name}: the prose quotes {missing}, which no cell prints; print them in a cell "
                         f"(or, for a constant of the setup, list it in FROM_THE_TEXT with its reason)")


def test_the_exceptions_are_still_in_the_prose():
    for path in NOTEBOOKS:
        prose = " ".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "markdown")
        quoted = set(_quoted_numbers(prose))
        stale = set(FROM_THE_TEXT.get(path.stem, {})) - quoted
        assert not stale, f"{path.name}: FROM_THE_TEXT lists {sorted(stale)}, which the prose no longer quotes"

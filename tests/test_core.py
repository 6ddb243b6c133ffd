"""The core is small and stands alone: a reader can lift ``ssmax_lite/core/`` into their own project.

* at most 400 lines of code (counted from the syntax tree: no docstrings, comments or blank lines);
* it imports nothing from the lab, and nothing but the standard library, torch, numpy and (in ``hf.py``
  only) transformers;
* ``import ssmax_lite`` imports the core and nothing of the lab.
"""

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "ssmax_lite" / "core"
CODE_LINE_LIMIT = 400
ALLOWED = {"torch", "numpy", "math", "numbers", "functools", "contextlib", "copy", "warnings", "__future__",
           "importlib", "inspect", "dataclasses", "typing", "re"}


def code_lines(source: str) -> int:
    """Lines that hold code: every token's lines, less comments, blank lines and docstrings."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
                        and isinstance(statement.value.value, str):
                    docstrings.update(range(statement.lineno, statement.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def imported_packages(source: str) -> set[str]:
    """Top-level names of absolute imports, and ``.``-relative ones as written (``..lab``, ``.attention``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or "") if node.level else node.module.split(".")[0])
    return names


def test_code_lines_are_counted_without_docstrings_and_comments():
    source = 'r"""Module docstring\n\nover lines."""\n\n# a comment\nx = (1 +\n     2)  # trailing\n\n\n' \
             'def f():\n    """Doc."""\n    return x\n'
    assert code_lines(source) == 4  # x = (1 +, 2), def f():, return x


def test_the_core_is_at_most_400_lines_of_code():
    counts = {path.name: code_lines(path.read_text()) for path in sorted(CORE.glob("*.py"))}
    assert "attention.py" in counts and "functional.py" in counts and "hf.py" in counts
    assert sum(counts.values()) <= CODE_LINE_LIMIT, counts


def test_the_core_imports_no_lab_and_no_other_package():
    for path in CORE.glob("*.py"):
        imports = imported_packages(path.read_text())
        relative = {name for name in imports if name.startswith(".")}
        assert not {name for name in relative if name.startswith("..")}, f"{path.name} imports outside the core"
        outside = {name for name in imports - relative if name not in ALLOWED}
        assert outside <= ({"transformers"} if path.name == "hf.py" else set()), (path.name, outside)


def test_import_ssmax_lite_loads_no_lab_module_and_no_transformers():
    code = ("import sys, ssmax_lite; "
            "print(sorted(m for m in sys.modules if m.startswith('ssmax_lite.lab') or m == 'transformers'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_that_moved_still_import_and_run_with_a_warning_that_names_their_new_place():
    """Old code (``import ssmax_lite.train``, ``python -m ssmax_lite.experiments``) keeps working."""
    code = ("import warnings; warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    import ssmax_lite.train as old, ssmax_lite.lab.train as new\n"
            "    from ssmax_lite import CausalSelfAttention\n"
            "    import ssmax_lite.hf\n"
            "from ssmax_lite.lab.layers import CausalSelfAttention as moved\n"
            "assert old is new and CausalSelfAttention is moved and ssmax_lite.hf.__name__ == 'ssmax_lite.core.hf'\n"
            "print([str(w.message) for w in seen if w.category is DeprecationWarning])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    messages = out.stdout
    assert "ssmax_lite.train has moved to ssmax_lite.lab.train" in messages
    assert "ssmax_lite.CausalSelfAttention has moved to ssmax_lite.lab.layers" in messages
    assert "ssmax_lite.core.hf" not in messages  # the documented short path does not warn
    run = subprocess.run([sys.executable, "-m", "ssmax_lite.experiments", "length", "--help"], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "usage: python -m ssmax_lite.lab.experiments length" in run.stdout, run.stderr
    assert "run python -m ssmax_lite.lab.experiments" in run.stderr

"""The rule nbval applies to cells tagged `nbval-approx` (notebooks/conftest.py): same words, same integers,
decimals within max(0.05, 3 % of the stored value)."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "notebooks_conftest", Path(__file__).resolve().parent.parent / "notebooks" / "conftest.py")
rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rules)


@pytest.mark.parametrize("stored, fresh", [
    ("softmax 0.196 ± 0.154", "softmax 0.196 ± 0.155"),                       # last digit
    ("needles [0.685, 0.746]", "needles [0.684, 0.745]"),
    ("constant 0.917 [0.750–1.000]", "constant 0.922 [0.766–1.000]"),
    ("[[0.371 0.342]]", "[[0.37  0.342]]"),                                  # numpy column padding
    ("s·log n at 32 L: 2.654", "s·log n at 32 L: 2.720"),                      # 0.066 ≤ 0.03·2.654
    ("9 models, 1×L", "9 models, 1×L"),
])
def test_close_numbers_pass(stored, fresh):
    assert rules.approx_equal(stored, fresh) == (True, "")


@pytest.mark.parametrize("stored, fresh, reason", [
    ("softmax 0.939", "softmax 0.880", "stored 0.939, computed 0.880"),        # a real regression
    ("loss 0.006", "loss 0.070", "stored 0.006, computed 0.070"),
    ("s·log n 2.654", "s·log n 2.780", "stored 2.654, computed 2.780"),
    ("9 models", "8 models", "stored 9, computed 8"),                          # integers are exact
    ("layer 1", "layer 1.0", "stored 1, computed 1.0"),
    ("ssmax 1.000", "softmax 1.000", "the text around the numbers differs"),
    ("0.1 0.2", "0.1 0.2 0.3", "the text around the numbers differs"),
])
def test_far_numbers_or_other_text_fail(stored, fresh, reason):
    equal, why = rules.approx_equal(stored, fresh)
    assert not equal and reason in why


def test_numbers_inside_words_stay_text():
    # "x64" and "v1" are words, not numbers: a change there is a change of text
    assert not rules.approx_equal("Qwen-7B (v1)", "Qwen-7B (v2)")[0]
    assert rules.NUMBER.findall("1×L 32×L -0.5 [0.750–1.000] n=64") == ["1", "32", "-0.5", "0.750", "1.000", "64"]


def test_nbval_applies_the_rule_to_tagged_cells_only(tmp_path):
    """End to end: nbval with the chapters' conftest passes a tagged cell whose number moved in the last
    digits, and fails a tagged cell whose number moved too far and an untagged cell that moved at all."""
    import shutil
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    import nbformat

    def cell(printed_now, stored, tagged):
        code = nbformat.v4.new_code_cell(f"print({printed_now!r})", execution_count=1,
                                         outputs=[nbformat.v4.new_output("stream", name="stdout", text=stored)])
        code.metadata["tags"] = ["nbval-approx"] if tagged else []
        return code

    notebook = nbformat.v4.new_notebook(cells=[
        cell("accuracy 0.951 ± 0.012, 9 models", "accuracy 0.949 ± 0.010, 9 models\n", tagged=True),
        cell("accuracy 0.951, 9 models", "accuracy 0.800, 9 models\n", tagged=True),
        cell("accuracy 0.951, 9 models", "accuracy 0.951, 8 models\n", tagged=True),
        cell("accuracy 0.951", "accuracy 0.950\n", tagged=False),
    ])
    nbformat.write(notebook, tmp_path / "chapter.ipynb")
    shutil.copy(Path(__file__).resolve().parent.parent / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:randomly",
                    "-p", "no:cacheprovider", "--rootdir", str(tmp_path), f"--junitxml={report}",
                    str(tmp_path / "chapter.ipynb")], cwd=tmp_path, capture_output=True, timeout=300)
    outcomes = {case.get("name"): ("failed" if case.find("failure") is not None else "passed")
                for case in ET.parse(report).iter("testcase")}
    assert list(outcomes.values()) == ["passed", "failed", "failed", "failed"], outcomes

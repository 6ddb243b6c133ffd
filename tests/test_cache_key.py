"""The training cache's key changes when the code that trains a model changes, and only then.

The key hashes the parse tree of every module the training loop imports (``code_modules``), without
docstrings and comments (``code_fingerprint``): editing prose reuses every cached model, editing a formula
trains afresh, and a module the model comes to depend on is covered without anyone updating a list.
"""

import inspect

from ssmax_lite.lab import scalings, train as train_module
from ssmax_lite.lab.train import cache_key, code_fingerprint, code_modules, preset

SOURCE = inspect.getsource(scalings)


def test_cache_key_covers_every_module_a_trained_model_depends_on():
    covered = set(code_modules())
    # reached only through the model's layers: a module left out here would serve stale models
    assert {"ssmax_lite.lab.train", "ssmax_lite.lab.model", "ssmax_lite.lab.layers", "ssmax_lite.lab.scalings",
            "ssmax_lite.lab.rope", "ssmax_lite.lab.tasks", "ssmax_lite.lab.corpus",
            "ssmax_lite.core._checks"} <= covered
    # and nothing that only measures or plots trained models
    assert not covered & {"ssmax_lite.lab.evaluate", "ssmax_lite.lab.experiments", "ssmax_lite.lab.plotting"}


def test_a_docstring_or_comment_edit_keeps_the_fingerprint():
    original = code_fingerprint(SOURCE)
    assert '"""One registry of length scalings' in SOURCE
    edited_doc = SOURCE.replace('"""One registry of length scalings', '"""One (typo fixed) registry of scalings')
    assert code_fingerprint(edited_doc) == original
    edited_comment = SOURCE.replace("# one learned value per count", "# a learned value for each count")
    assert edited_comment != SOURCE and code_fingerprint(edited_comment) == original
    blank_lines = SOURCE.replace("\n\n\n", "\n\n\n\n")
    assert code_fingerprint(blank_lines) == original


def test_a_formula_edit_changes_the_fingerprint():
    original = code_fingerprint(SOURCE)
    formula = "return 1.0 + p[\"beta\"] * xp.log(xp.floor(n / p[\"floor_scale\"]) + 1.0)"
    assert formula in SOURCE
    assert code_fingerprint(SOURCE.replace(formula, formula.replace("1.0 +", "2.0 +"))) != original
    assert code_fingerprint(SOURCE.replace("0.1 * math.log(factor)", "0.2 * math.log(factor)")) != original


def test_the_key_reads_the_fingerprints_not_the_text(monkeypatch):
    config = preset("quick", attention="ssmax")
    before = cache_key(config, "cpu")
    real_getsource = inspect.getsource

    def with_edited_docstring(obj):
        text = real_getsource(obj)
        return text.replace('"""', '"""Edited. ', 1) if getattr(obj, "__name__", "") == scalings.__name__ else text

    monkeypatch.setattr(inspect, "getsource", with_edited_docstring)
    train_module._code_digest.cache_clear()
    try:
        assert cache_key(config, "cpu") == before

        def with_edited_code(obj):
            text = real_getsource(obj)
            return text.replace("0.1 * math.log(factor)", "0.2 * math.log(factor)") \
                if getattr(obj, "__name__", "") == scalings.__name__ else text

        monkeypatch.setattr(inspect, "getsource", with_edited_code)
        train_module._code_digest.cache_clear()
        assert cache_key(config, "cpu") != before
    finally:
        monkeypatch.undo()
        train_module._code_digest.cache_clear()

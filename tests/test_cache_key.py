"""The training cache's key must cover the source of every module that changes a trained model.

A module left out of ``ssmax_lite.train._SOURCE_MODULES`` is a stale-cache bug: editing it (a multiplier's
formula in ``scalings.py``, say) would reuse models trained by the old code. The set of modules that the
model, the tasks and the training loop import from ``ssmax_lite`` (transitively) is read here from their
source, so a new import is caught without anyone updating a list by hand.
"""

import ast
import importlib
import inspect

from ssmax_lite import train as train_module


def _package_imports(module) -> set[str]:
    """Names of the ``ssmax_lite`` modules that ``module`` imports with ``from .x import ...``."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(f"ssmax_lite.{node.module}")
            else:  # from . import x
                names.update(f"ssmax_lite.{alias.name}" for alias in node.names)
    return names


def _closure(start: list[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_package_imports(importlib.import_module(name)))
    return seen


def test_cache_key_covers_every_module_a_trained_model_depends_on():
    needed = _closure(["ssmax_lite.model", "ssmax_lite.tasks"])
    covered = {m.__name__ for m in train_module._SOURCE_MODULES} | {"ssmax_lite.train"}
    assert "ssmax_lite.scalings" in needed  # the module the issue found missing, reached through layers
    assert needed <= covered, f"missing from the cache key: {sorted(needed - covered)}"

"""ssmax_lite: Scalable-Softmax (SSMax, Nakanishi 2025, arXiv 2501.19399), and a lab to study it.

``ssmax(z) = softmax((s·log n)·z)``: the softmax of n logits, sharpened by log n so that
attention does not fade as the context grows.

Two parts, one folder each:

* :mod:`ssmax_lite.core` — what a reader lifts into their own model (torch and numpy only):
  ``softmax`` and ``ssmax`` (:mod:`~ssmax_lite.core.functional`), ``scaled_dot_product_attention``
  with SSMax at the cost of torch's own (:mod:`~ssmax_lite.core.attention`), and SSMax in Hugging Face
  ``transformers`` models (:mod:`~ssmax_lite.core.hf`, needs the extra ``hf``).
* :mod:`ssmax_lite.lab` — the book's experiment kit: the tiny model and its attention layer with
  SSMax's peers, the tasks, training, evaluation, experiments and plots.

``import ssmax_lite`` imports only the core (numpy and torch; ``ssmax_lite.hf``, the short name of
:mod:`ssmax_lite.core.hf`, imports transformers). Modules that used to sit at the top level
(``ssmax_lite.train``, ``ssmax_lite.attention``, …) still import, with a ``DeprecationWarning`` that names
their new place.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from .core.attention import attended_key_counts, scaled_dot_product_attention
from .core.functional import softmax, ssmax, ssmax_multiplier

__version__ = "0.2.0"

__all__ = ["attended_key_counts", "scaled_dot_product_attention", "softmax", "ssmax", "ssmax_multiplier"]

_MOVED = {  # old module name -> where it lives now
    **{name: f"core.{name}" for name in ("attention", "functional", "hf")},
    **{name: f"lab.{name}" for name in ("compare", "convert", "corpus", "diagram", "evaluate", "experiments",
                                         "fading", "fits", "hf_task", "layers", "model", "plotting", "rope",
                                         "scalings", "tasks", "train")},
}
_SHORT_PATHS = {"hf"}  # documented short paths: ``import ssmax_lite.hf`` is ssmax_lite.core.hf, without a warning
_MOVED_NAMES = {"ATTENTION_KINDS": "lab.layers", "CausalSelfAttention": "lab.layers", "RotaryEmbedding": "lab.rope"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import ssmax_lite.train`` finds ``ssmax_lite.lab.train`` (and warns), so old code keeps working."""

    real_specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        short = spec.name.rpartition(".")[2]
        new_name = f"{__name__}.{_MOVED[short]}"
        if short not in _SHORT_PATHS:
            warnings.warn(f"{spec.name} has moved to {new_name}; import it from there", DeprecationWarning,
                          stacklevel=2)
        module = importlib.import_module(new_name)
        self.real_specs[spec.name] = module.__spec__  # put back by exec_module: the module keeps its own
        return module

    def exec_module(self, module):
        module.__spec__ = self.real_specs[module.__spec__.name]

    def get_code(self, fullname):
        """``python -m ssmax_lite.experiments`` runs ``ssmax_lite.lab.experiments`` as ``__main__`` (and warns)."""
        new_name = f"{__name__}.{_MOVED[fullname.rpartition('.')[2]]}"
        message = f"python -m {fullname}: the module has moved; run python -m {new_name}"
        return compile(f"import runpy, warnings\nwarnings.warn({message!r}, DeprecationWarning)\n"
                       f"runpy.run_module({new_name!r}, run_name='__main__', alter_sys=True)\n", fullname, "exec")


sys.meta_path.append(_MovedModules())


def __getattr__(name):
    """The lab's names that used to be exported here (``ssmax_lite.CausalSelfAttention``), with a warning."""
    if name in _MOVED_NAMES:
        warnings.warn(f"ssmax_lite.{name} has moved to ssmax_lite.{_MOVED_NAMES[name]}", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{_MOVED_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

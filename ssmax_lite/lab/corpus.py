"""The real text of chapter 3d: CPython 3.11's standard library, as bytes, shipped with the package.

``ssmax_lite/data/python_stdlib_{train,test}.txt.gz`` hold the 171 top-level modules ``Lib/*.py`` of
CPython 3.11.2 (Debian's libpython3.11-stdlib), each preceded by a line ``# ==== Lib/<name> ====``: 154
files (4.36 MB) for training, 17 other files (0.38 MB) for testing, so no test byte was seen in training.
``.ci/make_text_corpus.py`` built them; ``python_stdlib_files.txt`` lists the files of each split and
``LICENSE-PSF.txt`` is their licence (the PSF License Agreement). :func:`load_corpus` checks the SHA-256
of the text it unpacks, so a changed file cannot silently change a cached model's data.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

import numpy as np

__all__ = ["CORPUS_SPLITS", "byte_entropy", "load_corpus"]

DATA_DIR = Path(__file__).resolve().parent / "data"

CORPUS_SPLITS = {
    "train": "2fc249b4dc149c7f15a5f838f35ee2e0fce85941adf1a1b6b5508fa6c6dba108",
    "test": "b881045d999ef49feb70f447427afe0a9d115f18fae50aff5efa36af5434dec7",
}
"""Split name → SHA-256 of its text."""


@functools.lru_cache(maxsize=None)
def load_corpus(split: str = "train") -> np.ndarray:
    """The bytes of one split as a read-only ``uint8`` array (each byte is a token, vocabulary 256)."""
    if split not in CORPUS_SPLITS:
        raise ValueError(f"split must be one of {tuple(CORPUS_SPLITS)}, got {split!r}")
    path = DATA_DIR / f"python_stdlib_{split}.txt.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall ssmax_lite (the corpus ships with the package)")
    text = gzip.decompress(path.read_bytes())
    if hashlib.sha256(text).hexdigest() != CORPUS_SPLITS[split]:
        raise ValueError(f"{path} does not hold the expected text (SHA-256 mismatch); rebuild it with "
                         f".ci/make_text_corpus.py")
    data = np.frombuffer(text, dtype=np.uint8)
    data.flags.writeable = False
    return data


def byte_entropy(split: str = "train") -> float:
    r"""Entropy of the byte frequencies of a split, :math:`-\sum_b p_b \ln p_b` in nats: the loss of the
    best model that ignores the context."""
    counts = np.bincount(load_corpus(split), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())

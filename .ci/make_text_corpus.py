"""Build the text corpus of chapter 3d from this machine's Python 3.11 standard library (run once; the output is committed).

Usage: python .ci/make_text_corpus.py [/usr/lib/python3.11]

Takes every top-level module ``Lib/*.py`` of the given standard library (Debian's libpython3.11-stdlib
3.11.2, i.e. CPython 3.11.2's sources), in sorted order; every tenth file (index 5, 15, 25, ...) goes to the
test split, the others to the training split. Each file is preceded by a line ``# ==== Lib/<name> ====``.
Writes ``ssmax_lite/data/python_stdlib_{train,test}.txt.gz`` (gzip with mtime 0, so the bytes are
reproducible), the file list and the PSF licence, and prints the SHA-256 of each split's text, which
``ssmax_lite.lab.corpus`` checks on every load.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "ssmax_lite" / "data"


def main(lib: Path) -> None:
    files = sorted(p for p in lib.glob("*.py") if p.is_file())
    splits = {"train": [], "test": []}
    for i, path in enumerate(files):
        splits["test" if i % 10 == 5 else "train"].append(path)
    OUT.mkdir(parents=True, exist_ok=True)
    listing = []
    for split, paths in splits.items():
        text = b"".join(f"# ==== Lib/{p.name} ====\n".encode() + p.read_bytes() + b"\n" for p in paths)
        with open(OUT / f"python_stdlib_{split}.txt.gz", "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
                gz.write(text)
        print(f"{split}: {len(paths)} files, {len(text):,} bytes, sha256 {hashlib.sha256(text).hexdigest()}")
        listing += [f"{split}\tLib/{p.name}" for p in paths]
    (OUT / "python_stdlib_files.txt").write_text("\n".join(listing) + "\n")
    shutil.copyfile(lib / "LICENSE.txt", OUT / "LICENSE-PSF.txt")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/python3.11"))

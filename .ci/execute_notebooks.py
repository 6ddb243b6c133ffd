"""Re-execute notebooks in a fresh kernel and save them with their outputs and widget state.

Usage: python .ci/execute_notebooks.py notebooks/NN_name.ipynb [...]

Each notebook runs top to bottom in its own fresh `python3` kernel with the notebooks folder as
working directory (as under nbval and in Colab). The widget state is stored in the notebook's
metadata so that the book can show ipywidgets' initial state. A notebook whose cells raise is not
saved and the script exits non-zero.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_repo_url  # noqa: E402

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def execute(path: Path) -> float:
    sync_repo_url.sync_notebook(path)
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNEL
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", store_widget_state=True,
                            record_timing=False,
                            resources={"metadata": {"path": str(path.resolve().parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [c for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise RuntimeError(f"{path}: {len(errors)} cell(s) produced an error; not saved")
    if not _has_widgets(nb):
        nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


def _has_widgets(nb) -> bool:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return bool(state.get("state"))


def main(argv: list[str]) -> int:
    failed = 0
    for name in argv:
        path = Path(name)
        try:
            elapsed = execute(path)
            print(f"{path}: executed and saved in {elapsed:.1f} s")
        except (CellExecutionError, RuntimeError) as err:
            failed += 1
            print(f"{path}: FAILED\n{err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

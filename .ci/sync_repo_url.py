"""Write the repository URL from `_config.yml` into every notebook's first two cells and the README.

Usage: python .ci/sync_repo_url.py [notebooks/NN_name.ipynb ...]   (default: every notebook)

Cell 0 of each notebook becomes the "Open in Colab" badge (markdown), cell 1 the Colab-only install
cell. Existing cells with the tags `colab-badge` / `colab-install` are rewritten in place; missing
ones are inserted at the top. Stored outputs of other cells are left untouched.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repo_links as links  # noqa: E402


def _tagged(cell, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def sync_notebook(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    rel = path.resolve().relative_to(links.ROOT).as_posix()
    badge = nbformat.v4.new_markdown_cell(links.badge_markdown(rel))
    badge.metadata["tags"] = [links.BADGE_TAG]
    install = nbformat.v4.new_code_cell(links.install_cell_source(rel))
    install.metadata["tags"] = [links.INSTALL_TAG, "remove-cell"]  # the HTML book needs no install step

    old_badge = next((c for c in nb.cells if _tagged(c, links.BADGE_TAG)), None)
    old_install = next((c for c in nb.cells if _tagged(c, links.INSTALL_TAG)), None)
    if old_install is not None:  # keep its execution count; its output is always empty
        install.execution_count = old_install.get("execution_count")
        install.outputs = old_install.get("outputs", [])
    rest = [c for c in nb.cells if c is not old_badge and c is not old_install]
    if old_badge is not None:
        badge["id"] = old_badge.get("id", badge["id"])
    if old_install is not None:
        install["id"] = old_install.get("id", install["id"])
    new_cells = [badge, install] + rest
    def signature(cells):
        return [(c.source, c.get("metadata", {}).get("tags", [])) for c in cells]

    changed = signature(new_cells) != signature(nb.cells)
    nb.cells = new_cells
    if changed:
        nbformat.write(nb, path)
    return changed


def sync_readme(path: Path) -> bool:
    text = path.read_text()
    url, branch = links.repository()
    new = re.sub(r"ssmax_lite(\[([\w,]+)\])? @ git\+https://github\.com/[^\s\"'@]+@[\w./-]+",
                 lambda m: links.pip_requirement(m.group(2).split(",") if m.group(2) else ()), text)
    new = re.sub(r"https://colab\.research\.google\.com/github/[^\s)]+?/blob/[^/\s)]+/(notebooks/[\w.-]+\.ipynb)",
                 lambda m: links.colab_url(m.group(1)), new)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str]) -> None:
    paths = [Path(p) for p in argv] or sorted((links.ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        if sync_notebook(path):
            print(f"updated {path}")
    if sync_readme(links.ROOT / "README.md"):
        print("updated README.md")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The public repository's URL is defined once, in `_config.yml`; everything else must agree with it.

Checked: each notebook's Colab badge (cell 0) and Colab-only install cell (cell 1), the README's install
command and Colab links, `pyproject.toml`'s homepage, and the book's Colab launch button.
`python .ci/sync_repo_url.py` rewrites them all from `_config.yml`.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".ci"))
import repo_links as links  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_config_names_a_github_repository_and_the_colab_launcher():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = links.repository()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert branch
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_starts_with_badge_and_colab_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    badge, install = nb.cells[0], nb.cells[1]
    rel = path.relative_to(ROOT).as_posix()
    assert badge.cell_type == "markdown" and badge.source == links.badge_markdown(rel)
    assert install.cell_type == "code" and install.source == links.install_cell_source(rel)
    # the install line is guarded, and installs ssmax_lite alone (never torch, numpy, matplotlib, ipywidgets)
    pip_lines = [line.strip() for line in install.source.splitlines() if "pip install" in line]
    assert pip_lines == [f'%pip install -q "{links.pip_requirement(links.EXTRAS.get(rel, ()))}"']
    assert install.source.index('if "google.colab" in sys.modules:') < install.source.index("%pip")
    others = [c for c in nb.cells[2:] if c.cell_type == "code" and re.search(r"pip install|colab\.research", c.source)]
    assert not others, f"{path.name}: install commands or Colab links outside the managed cells"


def test_readme_links_agree_with_config():
    text = (ROOT / "README.md").read_text()
    urls = re.findall(r"git\+https://github\.com/[^\s\"'@]+@[\w./-]+", text)
    assert urls, "README.md should show how to pip install ssmax_lite from the repository"
    url, branch = links.repository()
    assert set(urls) == {f"git+{url}@{branch}"}
    for link in re.findall(r"https://colab\.research\.google\.com/github/[^\s)]+", text):
        assert link == links.colab_url(link.split(f"/blob/{branch}/", 1)[-1]), link


def test_pyproject_homepage_agrees_with_config():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    url, _ = links.repository()
    assert project["urls"]["Homepage"] == url


def test_no_other_repository_url_anywhere():
    """A stray copy of an old URL in a notebook, page or the workflow would send readers elsewhere."""
    url, _ = links.repository()
    org_repo = links.github_path()
    files = NOTEBOOKS + sorted((ROOT / "book").rglob("*.md")) + [ROOT / "README.md"]
    for path in files:
        for found in re.findall(r"github\.com/([\w.-]+/[\w.-]+)", path.read_text()):
            found = found.removesuffix(".git").rstrip(".")
            if found.startswith(("jupyter-book/", "executablebooks/", "googlecolab/")):
                continue
            assert found == org_repo, f"{path.name} links to github.com/{found}, not {url}"

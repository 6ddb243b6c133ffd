"""The public repository's URL, read from the one place that holds it (`_config.yml`), and every
link and install command derived from it.

`sync_repo_url.py` writes these into the notebooks and the README; `tests/test_repository_links.py`
checks that they all agree with `_config.yml`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_TAG = "colab-badge"
INSTALL_TAG = "colab-install"


def repository() -> tuple[str, str]:
    """(url, branch) from `_config.yml`'s `repository` section; the url has no trailing slash or .git."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    url = repo["url"].rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    return url, repo.get("branch", "main")


def github_path() -> str:
    """'org/name' of a github.com URL."""
    url, _ = repository()
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"repository.url in _config.yml must be a https://github.com/ URL, got {url!r}")
    return url[len(prefix):]


def colab_url(notebook: str) -> str:
    """Colab link that opens `notebook` (a path relative to the repository root) from GitHub."""
    _, branch = repository()
    return f"https://colab.research.google.com/github/{github_path()}/blob/{branch}/{notebook}"


def badge_markdown(notebook: str) -> str:
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(notebook)})"


EXTRAS = {"notebooks/06_your_own_model.ipynb": ("hf",)}
"""The optional extras a chapter's Colab cell installs with ssmax_lite (chapter 6 needs transformers >= 5.24)."""


def pip_requirement(extras=()) -> str:
    """The pip requirement that installs ssmax_lite (with ``extras``) from the repository's branch."""
    url, branch = repository()
    name = f"ssmax_lite[{','.join(extras)}]" if extras else "ssmax_lite"
    return f"{name} @ git+{url}@{branch}"


def install_cell_source(notebook: str = "") -> str:
    """The Colab-only install cell of ``notebook`` (a path relative to the repository root)."""
    return (
        "# Runs only in Google Colab: installs ssmax_lite from the book's repository.\n"
        "# Colab already has torch, numpy, matplotlib and ipywidgets; they are left as they are.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "{pip_requirement(EXTRAS.get(notebook, ()))}"'
    )

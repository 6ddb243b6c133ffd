"""The notebooks' Colab install cell, run for real against this checkout.

Colab already has torch; installing ssmax_lite must leave it exactly as it was. The test makes a fresh
virtual environment, installs torch into it (the pinned version, as a stand-in for Colab's), then runs
the command of the install cell with the repository URL pointed at this local checkout, and checks that
torch was not replaced and that ssmax_lite imports.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".ci"))
import repo_links as links  # noqa: E402

pytestmark = pytest.mark.slow


def _pinned_torch() -> str:
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line.startswith("torch=="):
            return line.strip()
    raise AssertionError(".ci/constraints.txt pins no torch version")


def _torch_fingerprint(python: Path) -> str:
    """torch's version plus a hash of its installed-files record: changes if pip touches torch."""
    code = ("import importlib.metadata as m; d = m.distribution('torch'); "
            "print(d.version); print(d.read_text('RECORD'))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout
    version, record = out.split("\n", 1)
    return f"{version} {hashlib.sha256(record.encode()).hexdigest()}"


def _install_command_from_notebook_cell() -> list[str]:
    """The `%pip install ...` line of the managed install cell, as the argument list pip gets."""
    line = next(ln.strip() for ln in links.install_cell_source().splitlines() if "%pip install" in ln)
    args = shlex.split(line.removeprefix("%pip "))
    url, branch = links.repository()
    local = f"git+file://{ROOT}@{branch}"
    return [re.sub(re.escape(f"git+{url}@{branch}"), local, a) for a in args]


def test_colab_install_cell_leaves_torch_alone(tmp_path):
    branch = links.repository()[1]
    has_branch = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", branch],
                                capture_output=True).returncode == 0
    if not has_branch:
        pytest.fail(f"this checkout has no branch {branch!r} (the branch named in _config.yml)")
    venv = tmp_path / "colab-like"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    # Colab's pip is recent; the pip that `venv` bundles may be too old for a git+file requirement
    subprocess.run(pip + ["install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(pip + ["install", "-q", _pinned_torch()], check=True)
    before = _torch_fingerprint(python)

    args = _install_command_from_notebook_cell()
    assert args[0] == "install" and not any(a.startswith(("torch", "numpy", "matplotlib", "ipywidgets"))
                                            for a in args[1:]), args
    result = subprocess.run(pip + args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

    assert _torch_fingerprint(python) == before, "installing ssmax_lite changed torch"
    check = ("import ssmax_lite, importlib.util as u; "
             "print(ssmax_lite.__version__, u.find_spec('matplotlib') is None, u.find_spec('ipywidgets') is None)")
    out = subprocess.run([str(python), "-c", check], check=True, capture_output=True, text=True).stdout.split()
    assert out[1:] == ["True", "True"], "the Colab install pulled in plotting packages Colab already has"

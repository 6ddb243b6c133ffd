r"""Run every chapter of the book top to bottom on a GPU, all at once, and report per chapter.

Each notebook in ``notebooks/`` is turned into a plain Python script (read as JSON: no Jupyter, no
nbconvert) and run in its own process, every chapter at the same time, as a Colab reader runs it on a GPU
runtime: its code cells in order, in one namespace, with their ``assert``\ s. Chapters 3 and 3b run a
second time, concurrently, with ``torch.cuda.is_bf16_supported`` answering False, as on Colab's T4: the
trainer then takes its fp16 path (``ssmax_lite.train.precision_for``). The report says, per run: passed
or not, the failing cell (its index, the first lines of its source, the exception and the line that
raised), the wall time, and the device and precision of every model it trained.

How a notebook becomes a script (:func:`notebook_to_script`):

* code cells in order; cells tagged ``colab-install`` are skipped (they install ssmax_lite in Colab);
* IPython magics and shell lines (``%pip …``, ``!ls``, ``%matplotlib inline``, ``x = !cmd``) are
  dropped when the cell does not compile as Python; ``%%time``, ``%%timeit`` and ``%%capture`` cells run
  their body once; a cell of any other cell magic (``%%bash``, ``%%writefile``) is skipped;
* each cell is run by ``exec`` in one shared namespace inside a ``try``, so a failure names its cell;
  a cell's last expression is passed to ``display`` as a notebook would show it;
* the preamble: matplotlib's Agg backend, ``plt.show()`` closes the figures (as the inline backend
  does), ``display`` (IPython's, or a ``print`` when IPython is missing), and the library's two training
  loops (``fit`` and ``convert.fine_tune``) wrapped wherever they are bound, so that every model trained
  (chapter 6's Hugging Face models train through ``fit`` too) appends its device, dtype and precision to a JSON-lines log. With ``--device cuda``
  the preamble exits at once when torch sees no GPU: nothing falls back to the CPU, and a model that
  trained on another device than the one asked for fails its chapter.

Every run gets its own empty model cache (``SSMAX_LITE_CACHE``), so every chapter trains its models as
a fresh Colab runtime would. ``ssmax_lite`` is the working tree's (``PYTHONPATH`` = the repository's
root; the script checks where it was imported from).

The device machine has no Jupyter and transformers 5.17, where chapter 6 needs >= 5.24: the missing
packages travel as wheels in ``.wheels/`` (git-ignored; ``make gpu-wheels`` fills it, see
:data:`CARRIED_PACKAGES`), which the script installs with ``pip --no-index --no-deps --target`` into
its work folder and puts on ``PYTHONPATH`` before running anything.

Writes three files under ``--out`` (default ``_build/gpu_book``): ``gpu_book.json`` (the report),
``gpu_book.txt`` (the table printed at the end) and ``gpu_book_logs.tar.gz`` (each run's generated
script, output, cell status and model log). Budget: ≤ 8 minutes on one H200 (``--timeout`` per run).

Usage::

    python benchmarks/gpu_book.py --out "$OUT"                   # on a GPU: every chapter, and 3, 3b in fp16
    python benchmarks/gpu_book.py --device cpu --chapters 01 02  # a test of the script on the CPU
    python benchmarks/gpu_book.py --download-wheels              # here: fill .wheels/ for the device machine
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WHEELS = ROOT / ".wheels"
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"
DEFAULT_OUT = ROOT / "_build" / "gpu_book"
DEFAULT_TIMEOUT_S = 420  # per run; every run starts at once, so this bounds the whole check (budget 8 minutes)
NO_BF16_CHAPTERS = ("03_tiny_model", "03b_softmax_fades")
"""Run a second time with bf16 reported unsupported (the fp16 path, as on a T4), when they run at all."""
SKIP_TAG = "colab-install"
BODY_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")
"""Cell magics whose cell is run as plain Python (once); a cell of any other cell magic is skipped."""
OUTPUT_TAIL_LINES = 60
SOURCE_HEAD_LINES = 4

CARRIED_PACKAGES = {
    # package (as in .ci/constraints.txt): why the device machine needs it
    "transformers": "chapter 6 (ssmax_lite.hf) needs >= 5.24, the device has 5.17. 5.24's other requirements "
                    "equal 5.17's except huggingface-hub >= 1.31, which the device's 1.33 meets",
    "ipywidgets": "chapters 1, 2 and 4 import it (sliders, ssmax_lite.plotting)",
    "comm": "ipywidgets", "traitlets": "ipywidgets, IPython", "widgetsnbextension": "ipywidgets",
    "jupyterlab_widgets": "ipywidgets",
    "ipython": "ipywidgets, and ssmax_lite.plotting (IPython.display)",
    "ipython_pygments_lexers": "IPython", "jedi": "IPython", "parso": "jedi", "matplotlib-inline": "IPython",
    "pexpect": "IPython", "ptyprocess": "pexpect", "prompt_toolkit": "IPython", "wcwidth": "prompt_toolkit",
    "stack-data": "IPython", "executing": "stack-data", "asttokens": "stack-data", "pure_eval": "stack-data",
}
"""What ``.wheels/`` holds, at the versions of ``.ci/constraints.txt``. The device machine already has
torch, numpy, matplotlib, tqdm, pygments, psutil, tokenizers, safetensors, huggingface-hub, regex, pyyaml,
typer and packaging at versions these accept (docs of the device tool: KINDS.md)."""
DEVICE_PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
                   *[arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                                     "manylinux2014_x86_64", "manylinux1_x86_64") for arg in ("--platform", tag)]]
"""The device machine's Python (3.12, x86-64 Linux), for ``pip download``."""


# ----------------------------------------------------------------------------- notebook -> script


@dataclass(frozen=True)
class Cell:
    """One code cell: where it is in the notebook, its Python source, or why it is skipped."""

    index: int        # position among all the notebook's cells (nb["cells"][index])
    code_index: int   # position among its code cells
    source: str | None
    skipped: str | None = None


_MAGIC_LINE = re.compile(r"^(?P<indent>\s*)(?:(?P<target>[A-Za-z_][\w.]*)\s*=\s*)?(?P<magic>[%!].*)$")


def strip_magics(source: str) -> str:
    """``source`` with each IPython magic or shell line replaced by ``pass`` (or ``x = None`` for ``x = !cmd``).

    A cell that compiles as Python is returned unchanged: a continuation line that starts with ``%``
    inside brackets (``% n`` under ``("%d items"``) is Python, not a magic. The replacement keeps the
    line's indentation and the magic as a comment, so a ``%pip install`` under an ``if`` stays a valid block.
    """
    if _compiles(source):
        return source
    lines = []
    for line in source.split("\n"):
        match = _MAGIC_LINE.match(line)
        if match is None:
            lines.append(line)
            continue
        indent, target, magic = match.group("indent", "target", "magic")
        lines.append(f"{indent}{target + ' = None' if target else 'pass'}  # dropped: {magic.strip()}")
    return "\n".join(lines)


def _compiles(source: str) -> bool:
    try:
        compile(source, "<cell>", "exec")
    except SyntaxError:
        return False
    return True


def convert_cell(source: str, tags) -> tuple[str | None, str | None]:
    """(Python source, None) for a cell to run, or (None, why) for a cell to skip."""
    if SKIP_TAG in tags:
        return None, f"tagged {SKIP_TAG}"
    first, _, body = source.partition("\n")
    if first.lstrip().startswith("%%"):
        magic = first.split()[0]
        if magic not in BODY_CELL_MAGICS:
            return None, f"cell magic {magic}: not Python"
        source = f"# dropped: {first.strip()}\n{body}"
    return strip_magics(source), None


def notebook_cells(notebook: Path) -> list[Cell]:
    """The notebook's code cells in order, each converted by :func:`convert_cell`."""
    data = json.loads(Path(notebook).read_text(encoding="utf-8"))
    cells, code_index = [], 0
    for index, cell in enumerate(data["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        converted, skipped = convert_cell(source, cell.get("metadata", {}).get("tags", []))
        cells.append(Cell(index, code_index, converted, skipped))
        code_index += 1
    return cells


PREAMBLE = r'''
import ast
import builtins
import functools
import inspect
import json
import linecache
import os
import sys
import time
import traceback

_STATUS = {"chapter": SETTINGS["chapter"], "variant": SETTINGS["variant"], "cells": [], "current": None,
           "failed": None, "finished": False, "notes": []}
_CURRENT_CELL = [None]


def _write_status():
    """The cells run so far, the one running, the failure: read by gpu_book.py, also after a timeout."""
    tmp = SETTINGS["status"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_STATUS, f)
    os.replace(tmp, SETTINGS["status"])


# matplotlib without a screen; plt.show() closes what it would show, as the notebook's inline backend does
import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt


def _show(*args, **kwargs):
    plt.close("all")


plt.show = _show

import torch

if SETTINGS["device"] == "cuda" and not torch.cuda.is_available():
    print("gpu_book: --device cuda was asked for, but torch sees no GPU in this process", file=sys.stderr)
    sys.exit(3)

if SETTINGS["no_bf16"]:
    def _bf16_reported_unsupported(including_emulation=True):
        """As on a T4: bf16 unsupported, so the trainer chooses fp16 (and a gradient scaler)."""
        return False

    torch.cuda.is_bf16_supported = _bf16_reported_unsupported

try:
    from IPython.display import display
except ImportError:
    def display(*objects, **kwargs):
        for obj in objects:
            print(repr(obj))
builtins.display = display  # as in IPython, where display needs no import


# every model trained goes through the library's training loops, ssmax_lite's train.fit and convert.fine_tune
# (fine-tuning and the second phase of switch_during_training): wrap them wherever they are bound
def _record_model(entry):
    with open(SETTINGS["models"], "a") as f:
        f.write(json.dumps(entry) + "\n")


def _recorded(fit):
    signature = inspect.signature(fit)
    precision_for = fit.__globals__.get("precision_for")

    @functools.wraps(fit)
    def fit_recorded(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        model, config, device = (bound.arguments.get(k) for k in ("model", "config", "device"))
        if device is None:  # fine_tune trains where the model is
            device = next(model.parameters()).device.type
        precision = precision_for(device) if precision_for is not None else "unknown"
        start = time.perf_counter()
        result = fit(*args, **kwargs)
        parameter = next(model.parameters(), None)
        _record_model({
            "cell": _CURRENT_CELL[0], "desc": bound.arguments.get("desc", fit.__name__), "model": type(model).__name__,
            "device_asked": str(device), "precision": precision,
            "device": None if parameter is None else str(parameter.device),
            "dtype": None if parameter is None else str(parameter.dtype).replace("torch.", ""),
            "steps": bound.arguments.get("steps", getattr(config, "steps", None)),
            "seconds": round(time.perf_counter() - start, 2)})
        return result

    fit_recorded.book_original = fit
    return fit_recorded


_WRAPPED = {}  # id(the library's fit) -> its recording wrapper


_TRAINING_LOOPS = {"fit": "train", "fine_tune": "convert"}  # function -> the end of its module's name


def _is_library_fit(value):
    """One of ssmax_lite's training loops, under whichever module the library's layout puts it (…train, …convert)."""
    return (inspect.isfunction(value) and value.__name__ in _TRAINING_LOOPS and not hasattr(value, "book_original")
            and value.__module__.startswith("ssmax_lite")
            and value.__module__.endswith(_TRAINING_LOOPS[value.__name__]))


def _wrap_fit(namespace):
    """Bind the recording fit wherever the library's own is bound: its modules (those imported since
    too) and the notebook's namespace. Run before every cell."""
    places = [vars(module) for name, module in list(sys.modules.items())
              if name == "ssmax_lite" or name.startswith("ssmax_lite.")]
    for place in (*places, namespace):
        for key, value in list(place.items()):
            if _is_library_fit(value):
                if id(value) not in _WRAPPED:
                    _WRAPPED[id(value)] = _recorded(value)
                place[key] = _WRAPPED[id(value)]


for _module in ("train", "convert"):  # import the training loops now, under either layout, to wrap them
    _errors = []
    for _name in (f"ssmax_lite.lab.{_module}", f"ssmax_lite.{_module}"):
        try:
            __import__(_name)
            break
        except Exception as error:
            _errors.append(f"{_name}: {type(error).__name__}: {error}")
    else:
        _STATUS["notes"].append(f"ssmax_lite's {_module} could not be imported before the first cell: "
                                + "; ".join(_errors))


def _run_cell(index, source, namespace):
    """exec the cell; display its last expression, as a notebook shows it (unless it ends with ';')."""
    filename = f"<cell {index}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, filename, "eval"), namespace)
        if value is not None:
            display(value)


def _failure(index, code_index, error):
    """The exception, and the line of the cell that raised it (an assert often has no message)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == f"<cell {index}>"]
    message = str(error).strip()
    return {"cell": index, "code_cell": code_index,
            "exception": f"{type(error).__name__}: {message}" if message else type(error).__name__,
            "line": f"line {frames[-1].lineno}: {frames[-1].line}" if frames else None,
            "traceback": "".join(traceback.format_exception(error))[-4000:]}


def _run_notebook(cells):
    namespace = {"__name__": "__main__", "__builtins__": builtins, "display": display}
    for index, code_index, source, skipped in cells:
        if skipped is not None:
            _STATUS["cells"].append({"cell": index, "code_cell": code_index, "skipped": skipped})
            continue
        _STATUS["current"], _CURRENT_CELL[0] = index, index
        _write_status()
        _wrap_fit(namespace)
        print(f"---- gpu_book: cell {index} (code cell {code_index})", flush=True)
        start = time.perf_counter()
        try:
            _run_cell(index, source, namespace)
        except BaseException as error:
            _STATUS["failed"] = _failure(index, code_index, error)
            _STATUS["cells"].append({"cell": index, "code_cell": code_index, "error": True,
                                     "seconds": round(time.perf_counter() - start, 2)})
            _STATUS["current"] = None
            _write_status()
            traceback.print_exc()
            return 1
        finally:
            plt.close("all")
        _STATUS["cells"].append({"cell": index, "code_cell": code_index,
                                 "seconds": round(time.perf_counter() - start, 2)})
    _STATUS["current"], _STATUS["finished"] = None, True
    _write_status()
    return 0
'''


def notebook_to_script(notebook: Path, *, settings: dict) -> str:
    """A plain Python script that runs ``notebook``'s code cells (:func:`notebook_cells`) after :data:`PREAMBLE`.

    ``settings``: chapter, variant, device (``"cuda"`` or ``"cpu"``), no_bf16 (bool), and the paths of
    the status file and the models' log that the script writes.
    """
    missing = {"chapter", "variant", "device", "no_bf16", "status", "models"} - set(settings)
    if missing:
        raise ValueError(f"settings must name {sorted(missing)} too, got {sorted(settings)}")
    lines = [f"# Generated by benchmarks/gpu_book.py from {Path(notebook).name}: its code cells in order, "
             "each run in one shared namespace.",
             f"SETTINGS = {settings!r}", PREAMBLE, "CELLS = []  # (cell index, code cell index, source, why skipped)"]
    for cell in notebook_cells(notebook):
        lines.append(f"\n# ---- cell {cell.index} (code cell {cell.code_index})"
                     + (f": skipped, {cell.skipped}" if cell.skipped else ""))
        lines.append(f"CELLS.append(({cell.index}, {cell.code_index}, {_literal(cell.source)}, {cell.skipped!r}))")
    lines.append('\nif __name__ == "__main__":\n    sys.exit(_run_notebook(CELLS))\n')
    return "\n".join(lines)


def _literal(source: str | None) -> str:
    """``source`` as a Python literal: a raw triple-quoted string, readable in the script, where that is exact."""
    if source is not None:
        literal = f'r"""{source}"""'
        try:
            if ast.literal_eval(literal) == source:
                return literal
        except (SyntaxError, ValueError):
            pass
    return repr(source)


# ----------------------------------------------------------------------------- wheels


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(names, constraints: Path = CONSTRAINTS) -> dict[str, str]:
    """``{name: version}`` of each of ``names`` in the constraints file (``name==version`` lines)."""
    pins = {}
    for line in constraints.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[_normalise(name)] = version
    missing = [name for name in names if _normalise(name) not in pins]
    if missing:
        raise SystemExit(f"error: {constraints} pins no version of {missing}")
    return {name: pins[_normalise(name)] for name in names}


def download_wheels(dest: Path = WHEELS) -> int:
    """Fill ``dest`` with :data:`CARRIED_PACKAGES` at their pinned versions, for the device's Python 3.12."""
    dest.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}=={version}" for name, version in pinned_versions(CARRIED_PACKAGES).items()]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *DEVICE_PLATFORM,
                           "-d", str(dest), *specs])
    if done.returncode != 0:
        return done.returncode
    wanted = {_normalise(s.split("==")[0]) + "==" + s.split("==")[1] for s in specs}
    for wheel in dest.glob("*.whl"):  # one version of each: two stop the install on the device
        name, version = wheel.name.split("-")[:2]
        if f"{_normalise(name)}=={version}" not in wanted:
            wheel.unlink()
            print(f"removed {wheel.name}: not a version this script carries")
    total = sum(w.stat().st_size for w in dest.glob("*.whl"))
    print(f"{len(list(dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {dest}")
    return 0


def install_wheels(wheels: Path, target: Path) -> list[str]:
    """``pip install --no-index --no-deps`` every wheel in ``wheels`` into ``target``; their file names."""
    files = sorted(wheels.glob("*.whl"))
    names = [_normalise(w.name.split("-")[0]) for w in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"error: {wheels} holds two versions of {twice}: keep one (make gpu-wheels)")
    if files:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(target), *map(str, files)], check=True)
    return [w.name for w in files]


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One chapter run in its own process: as the device runs it, or with bf16 reported unsupported."""

    chapter: str
    notebook: Path
    no_bf16: bool
    folder: Path

    @property
    def key(self) -> str:
        return f"{self.chapter}-no-bf16" if self.no_bf16 else self.chapter

    @property
    def variant(self) -> str:
        return "no-bf16" if self.no_bf16 else "default"


def available_chapters() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def resolve_chapter(name: str) -> Path:
    """A notebook from a chapter's name (``03b_softmax_fades``), its number (``03b``) or an ``.ipynb`` path."""
    if name.endswith(".ipynb"):
        path = Path(name).resolve()
        if not path.is_file():
            raise ValueError(f"--chapters/--no-bf16: no notebook at {name}")
        return path
    stems = available_chapters()
    matches = [s for s in stems if s == name] or [s for s in stems if s.split("_")[0] == name]
    if len(matches) != 1:
        raise ValueError(f"--chapters/--no-bf16: unknown chapter {name!r}; accepted: a path to an .ipynb, "
                         f"or one of {stems} (or its number, e.g. 03b)")
    return NOTEBOOKS / f"{matches[0]}.ipynb"


def child_env(args, site: Path | None, cache: Path) -> dict:
    """The environment of every process: this tree's ssmax_lite first, then the carried wheels."""
    paths = [str(ROOT), *([str(site)] if site else []), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), SSMAX_LITE_CACHE=str(cache), MPLBACKEND="Agg",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the chapters pick the GPU when they see one
    return env


PROBE = r'''
import json, os, platform
info = {"python": platform.python_version()}
import torch
info.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
if info["cuda_available"]:
    info.update(gpu=torch.cuda.get_device_name(), bf16=torch.cuda.is_bf16_supported(including_emulation=False))
for name in ("numpy", "matplotlib", "transformers", "IPython", "ipywidgets"):
    try:
        info[name] = __import__(name).__version__
    except Exception as error:
        info[name] = f"missing ({type(error).__name__}: {error})"
try:
    import ssmax_lite
    info["ssmax_lite"] = os.path.dirname(os.path.abspath(ssmax_lite.__file__))
    import transformers
    info["transformers_from"] = os.path.dirname(os.path.abspath(transformers.__file__))
except Exception as error:
    info["ssmax_lite"] = f"missing ({type(error).__name__}: {error})"
print(json.dumps(info))
'''


def probe(env: dict) -> dict:
    """Versions, GPU and ssmax_lite's folder as the chapters' processes will see them."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=NOTEBOOKS, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"error: the environment probe failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start(run: Run, args, env: dict) -> subprocess.Popen:
    """Write the run's script and start it in a new process group (so a timeout can end all of it)."""
    run.folder.mkdir(parents=True, exist_ok=True)
    settings = dict(chapter=run.chapter, variant=run.variant, device=args.device, no_bf16=run.no_bf16,
                    status=str(run.folder / "status.json"), models=str(run.folder / "models.jsonl"))
    script = run.folder / f"{run.key}.py"
    script.write_text(notebook_to_script(run.notebook, settings=settings), encoding="utf-8")
    with open(run.folder / "output.log", "w") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, str(script)], cwd=run.notebook.parent, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def run_all(runs: list[Run], args, envs: dict[str, dict]) -> dict[str, dict]:
    """Run up to ``args.jobs`` at once (each with its environment ``envs[run.key]``); end a run, its whole
    process group, after ``args.timeout`` seconds. Returns each run's exit code, timeout and wall time."""
    pending, running, done = list(runs), {}, {}
    while pending or running:
        while pending and len(running) < args.jobs:
            run = pending.pop(0)
            running[run.key] = (run, start(run, args, envs[run.key]), time.perf_counter())
        time.sleep(0.5)
        for key, (run, process, began) in list(running.items()):
            elapsed = time.perf_counter() - began
            timed_out = process.poll() is None and elapsed > args.timeout
            if timed_out:
                os.killpg(process.pid, signal.SIGKILL)  # the run's own process group, started above
                process.wait()
            if process.poll() is None:
                continue
            del running[key]
            done[key] = {"returncode": process.returncode, "timed_out": timed_out, "wall_time_s": round(elapsed, 1)}
            print(f"{key}: {'timed out' if timed_out else f'exit {process.returncode}'} after {elapsed:.1f} s",
                  flush=True)
    return done


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def collect(run: Run, outcome: dict, args) -> dict:
    """One run's entry of the report: passed, why not, the failing cell, its models, the end of its output."""
    status = _read_json(run.folder / "status.json", {})
    models = [json.loads(line) for line in _read_text(run.folder / "models.jsonl").splitlines() if line.strip()]
    cells = notebook_cells(run.notebook)
    by_index = {c.index: c for c in cells}
    failed = status.get("failed")
    if failed is None and status.get("current") is not None:  # ended from outside while in a cell
        ended = (f"timed out after {args.timeout} s" if outcome["timed_out"]
                 else f"the process exited with {outcome['returncode']}")
        failed = {"cell": status["current"], "code_cell": by_index[status["current"]].code_index,
                  "exception": f"{ended} in this cell", "line": None}
    if failed is not None:
        source = by_index[failed["cell"]].source or ""
        failed["source_head"] = [line for line in source.splitlines() if line.strip()][:SOURCE_HEAD_LINES]
    reasons = _reasons(outcome, status, failed, models, run, args)
    output = _read_text(run.folder / "output.log").splitlines()
    return {
        "chapter": run.chapter, "variant": run.variant, "notebook": _relative(run.notebook),
        "passed": not reasons, "reasons": reasons, **outcome,
        "cells_run": sum(1 for c in status.get("cells", []) if "skipped" not in c and not c.get("error")),
        "cells_to_run": sum(1 for c in cells if c.skipped is None),
        "cells_skipped": [{"cell": c.index, "why": c.skipped} for c in cells if c.skipped],
        "cell_seconds": {str(c["cell"]): c["seconds"] for c in status.get("cells", []) if "seconds" in c},
        "failed_cell": failed, "models": models, "notes": status.get("notes", []),
        "output_tail": "\n".join(output[-OUTPUT_TAIL_LINES:]),
    }


def _reasons(outcome, status, failed, models, run, args) -> list[str]:
    """Why a run did not pass: a cell failed or timed out, the process died, or a model trained elsewhere."""
    reasons = []
    if failed is not None:
        reasons.append(f"cell {failed['cell']}: {failed['exception'].splitlines()[0] if failed['exception'] else ''}")
    elif outcome["timed_out"]:
        reasons.append(f"timed out after {args.timeout} s" + ("" if status.get("cells") else " before its first cell"))
    elif outcome["returncode"] == 3:
        reasons.append("--device cuda was asked for, but torch saw no GPU in the chapter's process")
    elif outcome["returncode"] != 0 or not status.get("finished"):
        reasons.append(f"the process exited with {outcome['returncode']} before its last cell")
    elsewhere = [m for m in models if str(m.get("device")).split(":")[0] != args.device]
    if elsewhere:
        reasons.append(f"{len(elsewhere)} model(s) trained on {sorted({m['device'] for m in elsewhere})}, "
                       f"not on the asked device {args.device}")
    if run.no_bf16 and args.device == "cuda":
        not_fp16 = [m for m in models if m.get("precision") != "fp16"]
        if not_fp16:
            reasons.append(f"{len(not_fp16)} model(s) trained in {sorted({m['precision'] for m in not_fp16})} "
                           f"although bf16 was reported unsupported")
    return reasons


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- report


def models_summary(models: list[dict]) -> str:
    """``9× cuda:0 bf16`` for each (device, precision) pair, in order of first appearance."""
    counts = {}
    for m in models:
        key = f"{m.get('device')} {m.get('precision')}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n}× {key}" for key, n in counts.items()) or "-"


def format_report(report: dict) -> str:
    """The readable table: one section per variant, then the failures in full."""
    env = report["environment"]
    lines = [f"gpu_book on {report['gpu']} ({report['device']}), torch {env.get('torch')}, "
             f"transformers {env.get('transformers')}, {report['date_utc']}: {len(report['runs'])} runs, "
             f"{report['jobs']} at once, timeout {report['timeout_s']} s each, total {report['total_wall_time_s']} s",
             f"ssmax_lite from {env.get('ssmax_lite')}; wheels installed: {len(report['wheels'])}"]
    lines += [f"warning: {w}" for w in report["warnings"]]
    sections = (("default", f"As the device runs them (precision {report['precision']})"),
                ("no-bf16", "bf16 reported unsupported: the fp16 path, as on a T4"))
    header = f"{'chapter':<24} {'passed':<6} {'time (s)':>8} {'cells':>7}  {'models (device precision)':<28} failure"
    for variant, title in sections:
        runs = [r for r in report["runs"] if r["variant"] == variant]
        if not runs:
            continue
        lines += ["", title, header, "-" * len(header)]
        for r in runs:
            failure = "; ".join(r["reasons"]) or "-"
            lines.append(f"{r['chapter']:<24} {'yes' if r['passed'] else 'NO':<6} {r['wall_time_s']:>8.1f} "
                         f"{r['cells_run']:>3}/{r['cells_to_run']:<3}  {models_summary(r['models']):<28} {failure}")
    failures = [r for r in report["runs"] if r["failed_cell"]]
    for r in failures:
        cell = r["failed_cell"]
        lines += ["", f"{r['chapter']} ({r['variant']}): cell {cell['cell']} (code cell {cell['code_cell']}) failed",
                  *[f"    | {line}" for line in cell.get("source_head", [])],
                  f"    {cell['exception']}"]
        if cell.get("line"):
            lines.append(f"    at {cell['line']}")
    passed = sum(r["passed"] for r in report["runs"])
    lines += ["", f"{passed} of {len(report['runs'])} runs passed"]
    return "\n".join(lines)


def write_outputs(report: dict, runs: list[Run], out: Path) -> None:
    """gpu_book.json, gpu_book.txt and gpu_book_logs.tar.gz (three files: the device tool brings back eight)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_book.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_book.txt").write_text(format_report(report) + "\n")
    with tarfile.open(out / "gpu_book_logs.tar.gz", "w:gz") as tar:
        for run in runs:
            for name in (f"{run.key}.py", "output.log", "status.json", "models.jsonl"):
                if (run.folder / name).exists():
                    tar.add(run.folder / name, arcname=f"{run.key}/{name}")


# ----------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cuda (default; fails when torch sees no GPU) or cpu (a test of the script)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="CHAPTER",
                        help="chapters to run: names (03b_softmax_fades), numbers (03b) or .ipynb paths; "
                             "default every notebook in notebooks/")
    parser.add_argument("--no-bf16", nargs="*", default=None, metavar="CHAPTER",
                        help="chapters run a second time with bf16 reported unsupported (fp16); default 03 and 03b "
                             "when they are among --chapters; give none to skip")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the report (default _build/gpu_book)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the scripts, logs, model caches and installed wheels "
                             "(default: a temporary one, removed at the end)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per run before it is ended (default {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once, one process each (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process (OMP_NUM_THREADS)")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="folder of wheels to install first (default .wheels if it exists)")
    parser.add_argument("--download-wheels", action="store_true",
                        help="only fill .wheels with the packages the device machine lacks (needs the network)")
    return parser


def _select(args, parser) -> list[tuple[Path, bool]]:
    """(notebook, no_bf16) of every run, the default runs first."""
    try:
        chapters = [resolve_chapter(c) for c in args.chapters] if args.chapters else \
            [NOTEBOOKS / f"{s}.ipynb" for s in available_chapters()]
        if args.no_bf16 is None:
            no_bf16 = [p for p in chapters if p.stem in NO_BF16_CHAPTERS]
        else:
            no_bf16 = [resolve_chapter(c) for c in args.no_bf16]
    except ValueError as error:
        parser.error(str(error))
    for option, paths in (("--chapters", chapters), ("--no-bf16", no_bf16)):
        stems = [p.stem for p in paths]
        if len(set(stems)) < len(stems):
            parser.error(f"{option}: each chapter once (a run is named by its notebook's name), got {stems}")
    return [(p, False) for p in chapters] + [(p, True) for p in no_bf16]


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.download_wheels:
        return download_wheels()
    if args.timeout <= 0 or args.threads < 1 or (args.jobs is not None and args.jobs < 1):
        parser.error(f"--timeout must be > 0, --threads and --jobs >= 1; got --timeout {args.timeout}, "
                     f"--threads {args.threads}, --jobs {args.jobs}")
    if args.wheels is not None and not args.wheels.is_dir():
        parser.error(f"--wheels: no folder at {args.wheels} (make gpu-wheels fills .wheels)")
    selected = _select(args, parser)
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU (use --device cpu to test the script)")

    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_book-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        wheels_dir = args.wheels or (WHEELS if WHEELS.is_dir() else None)
        site = work / "site" if wheels_dir else None
        wheels = install_wheels(wheels_dir, site) if wheels_dir else []
        runs = [Run(nb.stem, nb, flag, work / (f"{nb.stem}-no-bf16" if flag else nb.stem)) for nb, flag in selected]
        args.jobs = args.jobs or len(runs)
        environment = probe(child_env(args, site, work / "probe-cache"))
        warnings = _warnings(environment, args)
        if any(w.startswith("error:") for w in warnings):
            print("\n".join(warnings), file=sys.stderr)
            return 2
        print(f"gpu_book: {len(runs)} runs ({', '.join(r.key for r in runs)}), {args.jobs} at once, "
              f"device {args.device}, work folder {work}", flush=True)
        began = time.perf_counter()
        outcomes = run_all(runs, args, {run.key: child_env(args, site, run.folder / "cache") for run in runs})
        total = round(time.perf_counter() - began, 1)
        report = {
            "script": "benchmarks/gpu_book.py", "device": args.device,
            "gpu": environment.get("gpu", "cpu") if args.device == "cuda" else "cpu",
            "precision": _precision(environment, args.device),
            "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": environment, "wheels": wheels, "warnings": warnings, "timeout_s": args.timeout,
            "jobs": args.jobs, "threads": args.threads, "total_wall_time_s": total,
            "runs": [collect(run, outcomes[run.key], args) for run in runs],
        }
        report["all_passed"] = all(r["passed"] for r in report["runs"])
        write_outputs(report, runs, args.out)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(format_report(report))
    print(f"wrote {args.out / 'gpu_book.json'}, gpu_book.txt and gpu_book_logs.tar.gz")
    return 0 if report["all_passed"] else 1


def _precision(environment: dict, device: str) -> str:
    if device == "cpu":
        return "fp32"
    return "bf16" if environment.get("bf16") else "fp16"


def _warnings(environment: dict, args) -> list[str]:
    """What in the chapters' environment would make a run fail for another reason than the book's code."""
    warnings = []
    if args.device == "cuda" and not environment.get("cuda_available"):
        warnings.append("error: --device cuda: the chapters' processes see no GPU")
    where = environment.get("ssmax_lite", "")
    if not where.startswith(str(ROOT)):
        warnings.append(f"error: ssmax_lite is imported from {where}, not from this working tree {ROOT}")
    version = environment.get("transformers", "missing")
    numbers = re.match(r"(\d+)\.(\d+)", version)
    if numbers is None or tuple(map(int, numbers.groups())) < (5, 24):
        warnings.append(f"transformers {version}: chapter 6 needs >= 5.24 (make gpu-wheels, carry .wheels)")
    for name in ("IPython", "ipywidgets"):
        if str(environment.get(name, "missing")).startswith("missing"):
            warnings.append(f"{name} {environment.get(name)}: chapters 1, 2 and 4 need it (make gpu-wheels)")
    return warnings


if __name__ == "__main__":
    raise SystemExit(main())

"""The book's tables: HTML for a reader, the same numbers as text for tests and terminals.

A chapter ends a cell with a :class:`Table` instead of printing one. Jupyter, Colab and the book then show
it as an HTML table that scrolls sideways on its own when it is wider than the page, with a shadow at
the edge that hides columns; the ``text/plain`` rendering of the same output holds every number of the
table, in lines of at most :data:`TEXT_WIDTH` characters (a wide table is split into blocks of columns,
each repeating the row names). The text is what ``print(table)`` shows and what the book's tests read.

The builders turn the lab's results into tables:

* :func:`length_table` — a :func:`~ssmax_lite.lab.experiments.length_experiment` summary, one row per
  attention kind, one column per length (``mean ± std`` over seeds);
* :func:`depth_table` — its accuracy by the number of keys a query sees;
* :func:`position_table` — a ``task="text"`` summary's test loss in position bins;
* :func:`method_table` — :class:`~ssmax_lite.lab.compare.MethodResult` rows, ``mean [worst–best seed]``.
"""

from __future__ import annotations

import html
import textwrap
from typing import Sequence

import numpy as np

__all__ = ["TEXT_WIDTH", "Table", "depth_table", "length_table", "method_table", "position_table"]

TEXT_WIDTH = 88
"""The widest line of a table's text rendering: it fits the book's code column."""

# Inline, so that the table scrolls and shows its cue in Jupyter and Colab too, not only in the book.
# The two "local" gradients cover the two "scroll" shadows until the content is scrolled away from that edge.
_WRAP_STYLE = (
    "overflow-x:auto;max-width:100%;margin:0.25em 0 1em 0;"
    "background:"
    "linear-gradient(to right,var(--pst-color-background,#fff) 30%,rgba(255,255,255,0)) left/2.5em 100% no-repeat local,"
    "linear-gradient(to left,var(--pst-color-background,#fff) 30%,rgba(255,255,255,0)) right/2.5em 100% no-repeat local,"
    "radial-gradient(farthest-side at 0 50%,rgba(0,0,0,.28),rgba(0,0,0,0)) left/0.9em 100% no-repeat scroll,"
    "radial-gradient(farthest-side at 100% 50%,rgba(0,0,0,.28),rgba(0,0,0,0)) right/0.9em 100% no-repeat scroll"
)
_TABLE_STYLE = "border-collapse:collapse;font-size:0.88em;font-variant-numeric:tabular-nums;margin:0"
_CELL_STYLE = "padding:0.2em 0.7em;white-space:nowrap;border-bottom:1px solid rgba(127,127,127,.3)"
_TEXT_CELL_STYLE = "padding:0.3em 0.7em;vertical-align:top;border-bottom:1px solid rgba(127,127,127,.3)"


class Table:
    """A table of text cells with a header row, shown as HTML and as text with the same cells.

    Args:
        header: the column names; the first names the row labels.
        rows: one sequence of cells per row, as many as ``header``; a cell is shown as ``str(cell)``
            (format numbers before, to the digits the text quotes).
        title: a line above the table (its caption in HTML).
        notes: lines below the table.
        records: for cells of running text (a scorecard): the HTML cells wrap their text, and the text
            rendering shows each row as a block, its first cell on a line of its own and every other
            cell under it, indented and wrapped, after its column's name.
        align: one letter per column, ``l`` or ``r`` (default: the row labels left, every other column
            right, as numbers are).
        math_columns: indices of columns whose cells are TeX (``s_h \\ln n``): the HTML shows them as
            formulas (MathJax, in the book and in Jupyter), the text as written.

    ``str(table)`` and ``repr(table)`` are the text rendering; ``table._repr_html_()`` the HTML one.
    """

    def __init__(self, header: Sequence, rows: Sequence[Sequence], *, title: str = "", notes: Sequence[str] = (),
                 records: bool = False, align: str | None = None, math_columns: Sequence[int] = ()):
        self.header = [str(h) for h in header]
        self.rows = [[str(c) for c in row] for row in rows]
        if len(self.header) < 2:
            raise ValueError(f"header must name the row labels and at least one column, got {self.header}")
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"every row must have {len(self.header)} cells (as many as header), got {row}")
        if isinstance(notes, str):
            raise ValueError("notes must be a list of lines, not one string")
        self.title = str(title)
        self.notes = [str(n) for n in notes]
        self.records = bool(records)
        self.align = align or "l" + "r" * (len(self.header) - 1)
        if len(self.align) != len(self.header) or set(self.align) - {"l", "r"}:
            raise ValueError(f"align must give l or r for each of the {len(self.header)} columns, got {align!r}")
        self.math_columns = set(math_columns)
        if not self.math_columns <= set(range(len(self.header))):
            raise ValueError(f"math_columns must be column indices below {len(self.header)}, got {sorted(math_columns)}")

    # ------------------------------------------------------------------ text

    def text(self, width: int = TEXT_WIDTH) -> str:
        """The table as lines of at most ``width`` characters: the row labels left, the cells right-aligned;
        columns that do not fit continue in a further block under the first, with the row labels again."""
        if width < 20:
            raise ValueError(f"width must be at least 20 characters, got {width}")
        if self.records:
            return self._record_text(width)
        columns = list(zip(self.header, *self.rows))
        sizes = [max(len(c) for c in col) for col in columns]
        label = min(sizes[0], width // 3)
        blocks, current, used = [], [], label
        for j in range(1, len(columns)):
            if current and used + 2 + sizes[j] > width:
                blocks.append(current)
                current, used = [], label
            current.append(j)
            used += 2 + sizes[j]
        blocks.append(current)
        if len(blocks) > 1:  # the same number of blocks, with the columns shared out evenly if they fit
            n, k = len(columns) - 1, len(blocks)
            per = -(-n // k)
            even = [list(range(1 + i, min(1 + i + per, 1 + n))) for i in range(0, n, per)]
            if len(even) == k and all(label + sum(2 + sizes[j] for j in b) <= width for b in even):
                blocks = even

        lines = textwrap.wrap(self.title, width) if self.title else []
        for b, block in enumerate(blocks):
            if b:
                lines.append("")
            for i, cells in enumerate(zip(*columns)):
                first = _clip(cells[0], label).ljust(label)
                lines.append((first + "".join("  " + (cells[j].ljust(sizes[j]) if self.align[j] == "l"
                                                      else cells[j].rjust(sizes[j])) for j in block)).rstrip())
        for note in self.notes:
            lines.extend(textwrap.wrap(note, width))
        return "\n".join(lines)

    def _record_text(self, width: int) -> str:
        lines = textwrap.wrap(self.title, width) if self.title else []
        for row in self.rows:
            lines.extend(textwrap.wrap(row[0], width))
            for name, cell in zip(self.header[1:], row[1:]):
                lines.extend(textwrap.wrap(f"{name}: {cell}", width, initial_indent="    ",
                                           subsequent_indent="      "))
        for note in self.notes:
            lines.extend(textwrap.wrap(note, width))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's text/plain
        printer.text(self.text())

    # ------------------------------------------------------------------ HTML

    def _cell_html(self, column: int, text: str) -> str:
        return _math(text) if column in self.math_columns and text.strip() not in ("", "-") else html.escape(text)

    def _repr_html_(self) -> str:
        esc = html.escape
        cell_style = _TEXT_CELL_STYLE if self.records else _CELL_STYLE
        align = (lambda j: "left") if self.records else (lambda j: "left" if self.align[j] == "l" else "right")
        head = "".join(f'<th style="{cell_style};text-align:{align(j)}">{esc(h)}</th>'
                       for j, h in enumerate(self.header))
        body = "".join(
            "<tr>" + "".join(
                f'<{"th" if j == 0 else "td"} style="{cell_style};text-align:{align(j)}'
                f'{";font-weight:normal" if j == 0 else ""}">{self._cell_html(j, c)}</{"th" if j == 0 else "td"}>'
                for j, c in enumerate(row)) + "</tr>"
            for row in self.rows)
        caption = (f'<caption style="caption-side:top;text-align:left;padding:0 0 0.3em 0;font-size:0.95em">'
                   f"{esc(self.title)}</caption>") if self.title else ""
        notes = "".join(f'<p style="margin:0.3em 0 0 0;font-size:0.85em">{esc(n)}</p>' for n in self.notes)
        table_style = _TABLE_STYLE + (";min-width:40em" if self.records else "")
        classes = "ssmax-table" + (" mathjax_process tex2jax_process" if self.math_columns else "")
        return (f'<div class="{classes}" style="{_WRAP_STYLE}"><table style="{table_style}">{caption}'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}</div>")


def _math(text: str) -> str:
    return "\\(" + html.escape(text) + "\\)"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# ---------------------------------------------------------------------- builders


def _seeds(summary: dict) -> str:
    n = len(summary["seeds"])
    return f"{n} seed{'s' if n != 1 else ''}"


def length_table(summary: dict, metric: str = "accuracy", evaluation: str = "plain", *, label: str = "") -> Table:
    """One row per attention kind of a :func:`~ssmax_lite.lab.experiments.length_experiment` summary,
    one column per evaluation length m·L: ``mean ± std`` over seeds, to 3 decimals (the numbers of
    :func:`~ssmax_lite.lab.experiments.format_length_table`). ``label`` names the evaluation in the title
    (default: ``evaluation`` itself)."""
    rows = []
    for kind, result in summary["results"].items():
        cells = result["evaluations"][evaluation][metric]
        rows.append([kind] + [f"{c['mean']:.3f} ± {c['std']:.3f}" for c in cells])
    title = (f"{metric} ({label or evaluation}; {summary['pe']}, L = {summary['train_len']}, "
             f"{_seeds(summary)}: mean ± std)")
    return Table(["attention"] + [f"{m:g}×L" for m in summary["eval_mult"]], rows, title=title)


def depth_table(summary: dict, mult, *, digits: int = 2) -> Table:
    """Accuracy by the number of keys a query sees, in sequences of ``mult``·L: one row per kind, one
    column per depth bin ``n ≤ hi`` (the bin's upper edge), the mean over seeds; empty bins are left out."""
    if mult not in summary["eval_mult"]:
        raise ValueError(f"mult must be one of the summary's eval_mult {summary['eval_mult']}, got {mult!r}")
    i = list(summary["eval_mult"]).index(mult)
    edges = summary["depth_edges"]
    rows_by_kind = {kind: result["depth"]["accuracy"][i] for kind, result in summary["results"].items()}
    keep = [j for j in range(len(edges) - 1) if any(not np.isnan(row[j]["mean"]) for row in rows_by_kind.values())]
    rows = [[kind] + ["–" if np.isnan(row[j]["mean"]) else f"{row[j]['mean']:.{digits}f}" for j in keep]
            for kind, row in rows_by_kind.items()]
    title = (f"accuracy by keys seen n, sequences of {mult:g}×L ({summary['pe']}, L = {summary['train_len']}, "
             f"{_seeds(summary)}: mean)")
    return Table(["attention"] + [f"n ≤ {edges[j + 1]:g}" for j in keep], rows, title=title)


def position_table(summary: dict, evaluation: str = "plain", mults=(1, 4, 16), *, label: str = "") -> Table:
    """A ``task="text"`` summary's test loss in the position bins that end at m·L for each m of ``mults``:
    one row per kind, ``mean [lowest–highest seed]`` (the numbers of
    :func:`~ssmax_lite.lab.experiments.format_position_table`)."""
    edges = list(summary["position_edges"])
    train_len = summary["train_len"]
    columns = [edges.index(m * train_len) - 1 for m in mults if m * train_len in edges[1:]]
    rows = []
    for kind, result in summary["results"].items():
        cells = [result["evaluations"][evaluation]["loss_by_position"][c] for c in columns]
        rows.append([kind] + [f"{c['mean']:.3f} [{c['min']:.3f}–{c['max']:.3f}]" for c in cells])
    title = (f"next-byte test loss ({label or evaluation}; {summary['pe']}, L = {train_len}, {_seeds(summary)}) "
             f"in bins of bytes seen n: mean [lowest–highest seed]")
    return Table(["attention"] + [f"{edges[c]} < n ≤ {edges[c + 1]}" for c in columns], rows, title=title)


def method_table(results, metric: str = "accuracy", digits: int = 3, *, title: str = "") -> Table:
    """One row per :class:`~ssmax_lite.lab.compare.MethodResult`, one column per evaluated length:
    ``mean [worst–best seed]`` (the numbers of :func:`~ssmax_lite.lab.compare.format_table`)."""
    results = list(results)
    if not results:
        raise ValueError("results must hold at least one MethodResult")
    lengths = results[0].lengths
    if any(r.lengths != lengths for r in results):
        raise ValueError("every result must be evaluated at the same lengths")
    rows = []
    for r in results:
        values = r.accuracy if metric == "accuracy" else r.loss if metric == "loss" else None
        if values is None:
            raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
        rows.append([r.name] + [f"{v.mean():.{digits}f} [{v.min():.{digits}f}–{v.max():.{digits}f}]" for v in values.T])
    return Table(["method"] + [f"n = {length:,}" for length in lengths], rows,
                 title=title or f"{metric} by sequence length: mean [worst–best seed]")

"""The book's tables (ssmax_lite.lab.tables): the HTML a reader sees and the text the tests read hold the same
cells, and the text fits the book's column."""

import re

import numpy as np
import pytest

from ssmax_lite.lab.compare import MethodResult
from ssmax_lite.lab.tables import TEXT_WIDTH, Table, depth_table, length_table, method_table, position_table


def cell(values):
    arr = np.asarray(values, dtype=float)
    return {"per_seed": list(arr), "mean": float(arr.mean()), "std": float(arr.std()),
            "min": float(arr.min()), "max": float(arr.max())}


def summary(kinds=("softmax", "ssmax", "constant"), mults=(1, 2, 4, 8, 16, 32)):
    rng = np.random.default_rng(0)
    results = {}
    for kind in kinds:
        evaluations = {"plain": {"accuracy": [cell(rng.uniform(0.4, 1, 3)) for _ in mults],
                                 "loss": [cell(rng.uniform(0, 3, 3)) for _ in mults],
                                 "loss_by_position": [cell(rng.uniform(2, 3, 3)) for _ in range(11)]}}
        depth = [[cell(rng.uniform(0, 1, 3)) for _ in range(5)] for _ in mults]
        depth[-1][0] = cell([np.nan] * 3)
        results[kind] = {"evaluations": evaluations, "depth": {"accuracy": depth}}
    return {"results": results, "eval_mult": list(mults), "pe": "nope", "train_len": 64, "seeds": [0, 1, 2],
            "depth_edges": [0, 64, 128, 256, 512, 1024], "position_edges": [0] + [2 ** i for i in range(11)]}


def html_cells(html):
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", html)]


def test_text_and_html_hold_the_same_cells():
    table = Table(["kind", "1×L", "32×L"], [["softmax", "1.000 ± 0.000", "0.544 ± 0.062"],
                                           ["ssmax", "1.000 ± 0.000", "1.000 ± 0.000"]], title="accuracy")
    text, html = str(table), table._repr_html_()
    for value in ["softmax", "ssmax", "1×L", "32×L", "0.544 ± 0.062", "accuracy"]:
        assert value in text and value in html
    assert html_cells(html) == ["kind", "1×L", "32×L", "softmax", "1.000 ± 0.000", "0.544 ± 0.062",
                                "ssmax", "1.000 ± 0.000", "1.000 ± 0.000"]
    assert repr(table) == text
    assert 'overflow-x:auto' in html  # a wide table scrolls on its own


def test_a_wide_table_is_split_into_blocks_that_keep_every_cell():
    header = ["attention"] + [f"{m}×L" for m in range(1, 13)]
    rows = [[kind] + [f"{i / 10:.3f} ± 0.{i:03d}" for i in range(12)] for kind in ("softmax", "ssmax")]
    text = str(Table(header, rows))
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    for row in rows:
        for value in row:
            assert value in text
    assert text.count("attention") >= 2  # every block repeats the row labels


def test_records_wrap_text_and_keep_the_numbers():
    table = Table(["claim", "effect", "verdict"],
                  [["(b) long context", "at 32×L accuracy softmax 0.54 [0.49–0.63], ssmax 1.00 " * 3, "reproduced"]],
                  records=True)
    text = str(table)
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    assert "verdict: reproduced" in text and text.count("0.49–0.63") == 3
    assert "white-space:nowrap" not in table._repr_html_()


def test_math_columns_are_typeset_in_html_only():
    table = Table(["name", "m(n)"], [["ssmax", r"s_h \ln n"]], math_columns=[1], align="ll")
    assert r"\(s_h \ln n\)" in table._repr_html_() and "mathjax_process" in table._repr_html_()
    assert r"s_h \ln n" in str(table) and r"\(" not in str(table)


@pytest.mark.parametrize("kwargs, word", [
    (dict(header=["only"], rows=[]), "header"),
    (dict(header=["a", "b"], rows=[["1"]]), "cells"),
    (dict(header=["a", "b"], rows=[], notes="a note"), "notes"),
    (dict(header=["a", "b"], rows=[], align="lx"), "align"),
    (dict(header=["a", "b"], rows=[], math_columns=[2]), "math_columns"),
])
def test_table_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Table(**kwargs)


def test_length_table_has_the_numbers_of_format_length_table():
    from ssmax_lite.lab.experiments import format_length_table

    s = summary()
    old, new = format_length_table(s, "loss"), str(length_table(s, "loss"))
    numbers = lambda text: sorted(re.findall(r"\d+\.\d{3}", text))  # noqa: E731
    assert numbers(old) == numbers(new)
    assert max(len(line) for line in new.splitlines()) <= TEXT_WIDTH


def test_position_and_depth_tables():
    from ssmax_lite.lab.experiments import format_position_table

    s = summary()
    old, new = format_position_table(s), str(position_table(s))
    assert sorted(re.findall(r"\d+\.\d{3}", old)) == sorted(re.findall(r"\d+\.\d{3}", new))
    depth = depth_table(s, 32)  # the first bin is empty for every kind at 32×L: left out
    assert depth.header == ["attention", "n ≤ 128", "n ≤ 256", "n ≤ 512", "n ≤ 1024"]
    row = s["results"]["ssmax"]["depth"]["accuracy"][-1]
    assert depth.rows[1] == ["ssmax"] + [f"{c['mean']:.2f}" for c in row[1:]]
    with pytest.raises(ValueError, match="mult"):
        depth_table(s, 3)


def test_method_table_matches_format_table():
    from ssmax_lite.lab.compare import format_table

    rng = np.random.default_rng(1)
    results = [MethodResult(name, (64, 2048), rng.uniform(0, 1, (3, 2)), rng.uniform(0, 3, (3, 2)))
               for name in ("(a) softmax", "(b) SSMax from the start")]
    for metric in ("accuracy", "loss"):
        old, new = format_table(results, metric), str(method_table(results, metric))
        assert sorted(re.findall(r"\d+\.\d{3}", old)) == sorted(re.findall(r"\d+\.\d{3}", new))
    with pytest.raises(ValueError, match="metric"):
        method_table(results, "speed")

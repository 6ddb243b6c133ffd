"""Chapter 3e's regime map: the benchmark's summary (verdicts from per-model results), the stored file's
schema, and the lab's table and heat map. No model is trained here: the per-model results are made up."""

import importlib.util
import json
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmax_lite.lab.regime import COMPARISONS, DEFAULT_PATH, SHORT, cell, load_regime_map, plot_regime_map, verdict_table  # noqa: E402
from ssmax_lite.lab.verdicts import VERDICTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("regime_map", ROOT / "benchmarks" / "regime_map.py")
regime_map = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regime_map)

SEEDS = (0, 1, 2, 3, 4)


def fake_results(decay=1.5):
    """Per-model results as run_job writes them: SSMax holds, softmax and the constant fade, tau = 2 repairs
    softmax at 16xL only."""
    out = []
    for pe in ("nope", "rope"):
        for method, (_, _, trained_with) in regime_map.METHODS.items():
            if pe not in trained_with:
                continue
            for seed in SEEDS:
                base = {"softmax": 0.4, "constant-matched": 0.2}.get(method, 0.0)
                fade = base + 0.01 * seed if base else 0.0
                curve = [1.0, 1.0, 1.0, 1.0 - fade / 4, 1.0 - fade / 2, 1.0 - fade]
                accuracy = {"plain": curve} | ({"theta x50": curve} if pe == "rope" else {})
                row = dict(decay=decay, pe=pe, method=method, seed=seed, accuracy=accuracy)
                if method == "softmax":
                    row["temperature"] = {evaluation: {"1.25": [0.7, 0.5], "1.5": [0.9, 0.6], "2.0": [1.0, 0.7],
                                                       "3.0": [0.8, 0.65]} for evaluation in accuracy}
                out.append(row)
    return out


@pytest.fixture(scope="module")
def summary():
    results = fake_results()
    return {"provenance": {}, "cells": regime_map.summarize(results, [1.5], SEEDS), "models": results}


def test_summary_verdicts_follow_the_rule(summary):
    nope = cell(summary, 1.5, "nope")
    verdicts = nope["verdicts"]
    assert verdicts["ssmax vs softmax at 32xL"]["label"] == "reproduced"
    assert math.isclose(verdicts["ssmax vs softmax at 32xL"]["difference"], 0.4 + 0.02)  # mean of 0.4 + 0.01·seed
    assert verdicts["ssmax vs constant-matched at 16xL"]["label"] == "reproduced"
    # the best fixed temperature is chosen per length on the same sequences: tau = 2 at 16xL gives 1.0
    assert nope["best_temperature"]["16"]["tau"] == 2.0
    assert verdicts["ssmax vs best fixed temperature at 16xL"]["label"] == "not testable here"
    assert verdicts["ssmax vs best fixed temperature at 32xL"]["label"] == "reproduced"
    assert "ssmax s0=1 vs softmax at 32xL" in verdicts
    rope = cell(summary, 1.5, "rope", "theta x50")
    assert "ssmax s0=1 vs softmax at 32xL" not in rope["verdicts"]  # trained with NoPE only
    json.dumps(summary, allow_nan=False)  # strict JSON: null, never NaN


def test_scale_invariant_attention_is_judged_against_softmax_and_ssmax(summary):
    verdicts = cell(summary, 1.5, "rope", "theta x50")["verdicts"]
    assert verdicts["scale-invariant vs softmax at 32xL"]["label"] == "reproduced"  # it holds, softmax fades
    assert verdicts["scale-invariant vs ssmax at 32xL"]["label"] == "not testable here"  # both at 1.0


def test_reuse_needs_an_out_file_and_the_same_task(tmp_path):
    stored = tmp_path / "map.json"
    stored.write_text(json.dumps({"provenance": {"task": "majority"}, "models": []}))
    with pytest.raises(SystemExit):  # argparse's error: the stored map must not be overwritten by default
        regime_map.main(["--methods", "scale-invariant", "--reuse", str(stored)])
    with pytest.raises(SystemExit):  # a majority map cannot stand in for the haystack's models
        regime_map.main(["--methods", "scale-invariant", "--reuse", str(stored), "--out", str(tmp_path / "o.json")])
    assert not (tmp_path / "o.json").exists()


def test_table_and_heat_map(summary):
    table = verdict_table(summary)
    assert table.splitlines()[0] == "ssmax vs softmax" and max(len(line) for line in table.splitlines()) <= 90
    assert table.count("wins +0.42") == 3  # NoPE, RoPE and RoPE θ×50 at 32×L
    fig, ax = plt.subplots()
    plot_regime_map(ax, summary, "ssmax vs softmax", 32)
    assert [t.get_text() for t in ax.texts] == ["wins\n+0.42"] * 3
    plt.close(fig)
    with pytest.raises(ValueError, match="no cell for decay=0.1"):
        cell(summary, 0.1, "nope")


def test_the_stored_map_has_the_schema_the_chapter_reads():
    if not DEFAULT_PATH.exists():
        pytest.skip("ssmax_lite/lab/data/regime_map.json is written by benchmarks/regime_map.py")
    stored = load_regime_map()
    provenance = stored["provenance"]
    assert provenance["command"].startswith("python benchmarks/regime_map.py")
    assert len(provenance["commit"]) == 40 and provenance["date"]
    assert {c["decay"] for c in stored["cells"]} == {0.1, 0.5, 1.5}
    for entry in stored["cells"]:
        assert len(entry["accuracy"]["softmax"]) >= 5 and len(entry["accuracy"]["softmax"][0]) == 6
        for name, verdict in entry["verdicts"].items():
            assert verdict["label"] in VERDICTS and verdict["label"] in SHORT
            assert any(name.startswith(comparison) for comparison in COMPARISONS)


def test_the_map_on_new_seeds_has_the_schema_the_chapter_reads():
    path = DEFAULT_PATH.with_name("regime_map_new_seeds.json")
    if not path.exists():
        pytest.skip("ssmax_lite/lab/data/regime_map_new_seeds.json is written by benchmarks/regime_map.py")
    again, first = load_regime_map(path), load_regime_map()
    assert again["provenance"]["command"].startswith("python benchmarks/regime_map.py --decays 0.1 0.5 1.5 --seeds 5")
    assert set(again["cells"][0]["seeds"]).isdisjoint(first["cells"][0]["seeds"])
    assert len(again["cells"]) == len(first["cells"])
    for entry in again["cells"]:  # every verdict of the first map exists on the new seeds too
        assert set(entry["verdicts"]) == set(cell(first, entry["decay"], entry["pe"], entry["evaluation"])["verdicts"])


def test_the_majority_task_runs_the_haystack_setting_with_three_needles_per_key():
    from ssmax_lite.lab.experiments import HAYSTACK_RUNS
    from ssmax_lite.lab.tasks import MajorityRecallTask

    haystack, majority = regime_map.task_changes("haystack"), regime_map.task_changes("majority")
    assert haystack == HAYSTACK_RUNS["quick"]
    assert isinstance(majority["task"], MajorityRecallTask) and majority["task"].copies == 3
    fields = ("n_keys", "n_values", "n_needles", "filler_values", "filler_keys")
    assert all(getattr(majority["task"], f) == getattr(haystack["task"], f) for f in fields)
    assert {k: v for k, v in majority.items() if k != "task"} == {k: v for k, v in haystack.items() if k != "task"}
    jobs = regime_map.cells([0.1], [0], ["nope"], ("softmax", "ssmax"), "majority")
    assert [j["method"] for j in jobs] == ["softmax", "ssmax"] and all(j["task"] == "majority" for j in jobs)
    names = {regime_map.job_name(j) for j in jobs}
    assert names.isdisjoint(regime_map.job_name(j) for j in regime_map.cells([0.1], [0], ["nope"]))


def test_the_stored_majority_map_has_the_schema_the_chapter_reads():
    path = DEFAULT_PATH.with_name("regime_map_majority.json")
    if not path.exists():
        pytest.skip("ssmax_lite/lab/data/regime_map_majority.json is written by benchmarks/regime_map.py --task majority")
    stored = load_regime_map(path)
    assert stored["provenance"]["command"].startswith("python benchmarks/regime_map.py --task majority")
    assert stored["provenance"]["task"] == "majority" and all(m["task"] == "majority" for m in stored["models"])
    assert all(m["config"]["task"]["copies"] == 3 for m in stored["models"]) and len(stored["models"]) == 60
    assert {(c["decay"], c["pe"], c["evaluation"]) for c in stored["cells"]} == {
        (decay, pe, evaluation) for decay in (0.1, 1.5)
        for pe, evaluation in (("nope", "plain"), ("rope", "plain"), ("rope", "theta x50"))}
    for entry in stored["cells"]:
        assert set(entry["accuracy"]) == {"softmax", "ssmax", "constant-matched"}
        assert all(len(seeds) == 5 for seeds in entry["accuracy"].values())
        assert all(v["label"] in VERDICTS for v in entry["verdicts"].values())


def test_the_scale_invariant_map_reuses_the_stored_models_and_has_the_schema_the_chapter_reads():
    path = DEFAULT_PATH.with_name("regime_map_scale_invariant.json")
    if not path.exists():
        pytest.skip("ssmax_lite/lab/data/regime_map_scale_invariant.json is written by benchmarks/regime_map.py "
                    "--methods scale-invariant --reuse …")
    stored, first = load_regime_map(path), load_regime_map()
    assert stored["provenance"]["command"].startswith("python benchmarks/regime_map.py --methods scale-invariant")
    assert stored["provenance"]["reused"]["made_by"] == first["provenance"]
    trained = [m for m in stored["models"] if m["method"] == "scale-invariant"]
    assert len(trained) == 30 and all(m["config"]["model"]["attention"] == "scale-invariant" for m in trained)
    # the other methods' results are the stored map's, row for row: the differences stay paired by seed
    by_key = {(m["decay"], m["pe"], m["method"], m["seed"]): m for m in first["models"]}
    reused = [m for m in stored["models"] if m["method"] != "scale-invariant"]
    assert reused and all(m == by_key[(m["decay"], m["pe"], m["method"], m["seed"])] for m in reused)
    assert {(c["decay"], c["pe"], c["evaluation"]) for c in stored["cells"]} == \
        {(c["decay"], c["pe"], c["evaluation"]) for c in first["cells"]}
    for entry in stored["cells"]:
        assert "scale-invariant" in entry["accuracy"] and len(entry["accuracy"]["scale-invariant"]) == 5
        for mult in (16, 32):
            for comparison in ("scale-invariant vs softmax", "scale-invariant vs ssmax"):
                assert entry["verdicts"][f"{comparison} at {mult}xL"]["label"] in VERDICTS

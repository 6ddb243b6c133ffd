"""Chapter 3d's models trained 12× longer: does SSMax's place against softmax change with more training?

Chapter 3d trains each model for 500 steps of 16 windows (0.5 M bytes). This script trains the same model
(the "quick" preset, L = 64) for 3,000 steps of 32 windows (6.1 M bytes, 1.4 passes over the training
split), softmax and SSMax, NoPE and RoPE, on the given seeds, and prints one JSON line per model: the
training loss (mean of 20 steps) at steps 500, 1,000, 2,000 and 3,000, and the test loss in the position
bins that end at 1×, 4× and 16×L (``experiments.evaluate_text_models``; RoPE also with θ × 50). About
100 s a model on one thread.

Usage: python benchmarks/text_longer_training.py KIND PE SEED [SEED ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ssmax_lite.lab.experiments import TEXT_RUNS, evaluate_text_models  # noqa: E402
from ssmax_lite.lab.train import preset, train  # noqa: E402

STEPS, BATCH, MULTS = 3000, 32, (1, 4, 16)


def main(kind: str, pe: str, seeds) -> None:
    torch.set_num_threads(1)
    for seed in seeds:
        config = preset("quick", attention=kind, pe=pe, seed=seed,
                        **(TEXT_RUNS["quick"] | dict(steps=STEPS, batch_size=BATCH, warmup=100)))
        run = train(config, progress=False)
        L = config.train_len
        evaluated = evaluate_text_models([run.model], L, max(MULTS),
                                         rope_theta_value=config.model.rope_theta * 50 if pe == "rope" else None)
        edges = evaluated["position_edges"]
        columns = [edges.index(m * L) - 1 for m in MULTS]
        out = {"kind": kind, "pe": pe, "seed": seed, "train_s": round(run.wall_time, 1),
               "train_loss": {s: round(float(run.losses[s - 20:s].mean()), 3) for s in (500, 1000, 2000, STEPS)}}
        for name, evaluation in evaluated["evaluations"].items():
            cells = evaluation["loss_by_position"]
            out[f"test_{name}"] = {f"{m}xL": round(cells[c]["mean"], 3) for m, c in zip(MULTS, columns)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]])

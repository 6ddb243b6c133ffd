"""Chapter 3b's verdict on seeds the chapter did not choose, through the command line it documents.

The chapter trains seeds 0, 1 and 2 (and the benchmark survey 10, 11 and 12). Here the CLI trains softmax and
SSMax on seed 7 with the default task (the one-token haystack) and must give the same verdict: both learn
the task at the training length, softmax's accuracy at 32×L is at most 0.7 and SSMax's at least 0.95.
The two kinds train side by side in two processes: about 50 s on two cores, the slowest unit test and the
only one that trains to the end.
"""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _run_cli(kind, out):
    return subprocess.Popen([sys.executable, "-m", "ssmax_lite.lab.experiments", "length", "--attention", kind,
                             "--seeds", "7", "--eval-mult", "1", "32", "--n-eval", "32", "--threads", "1",
                             "--no-progress", "--json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_softmax_fades_and_ssmax_holds_on_an_unchosen_seed(tmp_path):
    # the two kinds train side by side, one process and one thread each (the CLI is the same either way)
    outputs = {kind: tmp_path / f"{kind}.json" for kind in ("softmax", "ssmax")}
    runs = {kind: _run_cli(kind, out) for kind, out in outputs.items()}
    for kind, run in runs.items():
        log, _ = run.communicate(timeout=900)
        assert run.returncode == 0, log.decode()
    summaries = {kind: json.loads(out.read_text()) for kind, out in outputs.items()}
    assert all(summary["task"] == "haystack" for summary in summaries.values())
    accuracy = {kind: [cell["mean"] for cell in summary["results"][kind]["evaluations"]["plain"]["accuracy"]]
                for kind, summary in summaries.items()}
    assert accuracy["softmax"][0] >= 0.99 and accuracy["ssmax"][0] >= 0.99, accuracy   # both learned it
    assert accuracy["softmax"][1] <= 0.7, accuracy                                      # softmax fades
    assert accuracy["ssmax"][1] >= 0.95, accuracy                                       # SSMax holds

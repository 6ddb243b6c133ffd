"""Chapter 3b's verdict on seeds the chapter did not choose, through the command line it documents.

The chapter trains seeds 0, 1 and 2 (and the benchmark survey 10, 11 and 12). Here the CLI trains softmax and
SSMax on seed 7 with the default task (the one-token haystack) and must give the same verdict: both learn
the task at the training length, softmax's accuracy at 32×L is at most 0.7 and SSMax's at least 0.95.
About a minute and a half on one core: the slowest unit test, and the only one that trains to the end.
"""

import json

from ssmax_lite.experiments import main


def test_softmax_fades_and_ssmax_holds_on_an_unchosen_seed(tmp_path):
    out = tmp_path / "seed7.json"
    assert main(["length", "--attention", "softmax", "ssmax", "--seeds", "7", "--eval-mult", "1", "32",
                 "--n-eval", "32", "--threads", "1", "--no-progress", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["task"] == "haystack"
    accuracy = {kind: [cell["mean"] for cell in result["evaluations"]["plain"]["accuracy"]]
                for kind, result in summary["results"].items()}
    assert accuracy["softmax"][0] >= 0.99 and accuracy["ssmax"][0] >= 0.99, accuracy   # both learned it
    assert accuracy["softmax"][1] <= 0.7, accuracy                                      # softmax fades
    assert accuracy["ssmax"][1] >= 0.95, accuracy                                       # SSMax holds

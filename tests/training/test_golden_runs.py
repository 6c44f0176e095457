"""The one pipeline reproduces, to the last bit, runs recorded before routers and models shared it.

``golden_runs.json`` holds per-epoch metrics of short fixed-seed runs (WPL, fixed-random,
hard-concrete and REINFORCE with warm-up and separate optimizers on synthetic-groups; SNR-Trans and
MMoE on multilabel-synthetic; SNR-Aver on the mmoe-synthetic regression) recorded with the two
separate trainers of routing-rl 0.1.0 (commit 536f707), one torch thread, through ``routing-rl run``
with the arguments stored next to them. The same commands must give the same numbers now.
(``wpl-synthetic`` names ``--router-lr 0.001``, the ``--lr`` its recording used as the router's rate,
since WPL now has a router learning rate of its own by default; all name ``--eval-batch-size 1024``,
the evaluation batch of the recording, whose grouping of the summed evaluation losses they pin.)

Scores, routes, policies and parameter counts must be equal to the last bit; the mean losses to
a relative 1e-6, as their last bits depend on the processor's vector kernels: on an AMD EPYC the
MMoE run's second-epoch training loss is 32.753363093623406 where the recording machine gave
32.75336399784795 (every score the same).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main

GOLDEN = json.loads((Path(__file__).parent / "golden_runs.json").read_text())


def observed(results: dict) -> list[dict]:
    """The recorded fields of every epoch, from a results.json of the current schema."""
    out = []
    for e in results["epochs"]:
        row = {"train_loss": e["train_loss"], "val": e["val"]["per_task"], "test": e["test"]["per_task"],
               "val_loss": e["val"]["loss"], "test_loss": e["test"]["loss"]}  # fmt: skip
        if "routing" in e:
            row.update(routes=e["routing"]["routes"], policy=e["routing"]["policy"])
        else:
            row["parameters"] = e["parameters"]
        out.append(row)
    return out


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_pipeline_reproduces_the_recorded_run(name, tmp_path):
    args = GOLDEN[name]["args"]
    result = CliRunner().invoke(main, ["run", *args, "--logdir", str(tmp_path), "--quiet", "--threads", "1"])  # as recorded
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    got, recorded = observed(results), GOLDEN[name]["epochs"]
    losses = ("train_loss", "val_loss", "test_loss")
    assert [{k: v for k, v in e.items() if k not in losses} for e in got] == [{k: v for k, v in e.items() if k not in losses} for e in recorded]
    for epoch, (mine, theirs) in enumerate(zip(got, recorded, strict=True), start=1):
        for key in losses:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-6, abs=0), (epoch, key)

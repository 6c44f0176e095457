"""The one pipeline reproduces runs recorded before routers and models shared it: every route and
parameter count to the last bit, every score, loss and policy to a relative 1e-6.

``golden_runs.json`` holds per-epoch metrics of short fixed-seed runs (WPL, fixed-random,
hard-concrete and REINFORCE with warm-up and separate optimizers on synthetic-groups; SNR-Trans and
MMoE on multilabel-synthetic; SNR-Aver on the mmoe-synthetic regression) recorded with the two
separate trainers of routing-rl 0.1.0 (commit 536f707), one torch thread, through ``routing-rl run``
with the arguments stored next to them. The same commands must give the same numbers now.
(``wpl-synthetic`` names ``--router-lr 0.001``, the ``--lr`` its recording used as the router's rate,
since WPL now has a router learning rate of its own by default; all name ``--eval-batch-size 1024``,
the evaluation batch of the recording, whose grouping of the summed evaluation losses they pin.)

Routes and parameter counts must be equal to the last bit; scores, mean losses and routing
policies to a relative 1e-6, as their last bits depend on the processor's vector kernels: on an
AMD EPYC the MMoE run's second-epoch training loss is 32.753363093623406 where the recording
machine gave 32.75336399784795; on an Intel Xeon one probability of the REINFORCE run's third-epoch
policy differs by 1.5e-8 (one float32 step) and the SNR-Aver regression's per-task MSE by 3e-9.
An accuracy is a count over at most a few hundred test rows, so one prediction more or less moves
it by far more than 1e-6: the tolerance hides no change of a single prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    close = ("train_loss", "val_loss", "test_loss", "val", "test", "policy")
    assert [{k: v for k, v in e.items() if k not in close} for e in got] == [{k: v for k, v in e.items() if k not in close} for e in recorded]
    for epoch, (mine, theirs) in enumerate(zip(got, recorded, strict=True), start=1):
        for key in close:
            if key in theirs:
                np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-6, atol=0, err_msg=f"epoch {epoch}, {key}")

"""A new user's first learned-router run learns: ``routing-rl run --agent wpl`` (or ``reinforce``) with
every option at its default trains well above chance on the default suite in the default epochs.

The default suite is synthetic-groups (4-way tasks: chance is 0.25). Before routers had learning
rates of their own, both stayed at chance (test accuracy 0.26-0.27, training loss stuck at ln 4)
while fixed random routes reached 0.81: at the weights' lr 1e-3 the routes stayed near uniform, so
tasks of different groups kept sharing every block.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.training.setup.config import RunConfig


@pytest.mark.parametrize("agent", ["wpl", "reinforce"])
def test_default_learned_router_run_learns(agent, tmp_path):
    result = CliRunner().invoke(main, ["run", "--agent", agent, "--threads", "1", "--logdir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    config = results["config"]
    defaults = RunConfig()
    assert config["env"] == defaults.env == "synthetic-groups" and config["epochs"] == defaults.epochs
    assert config["router_lr"] is None and config["lr"] == defaults.lr  # nothing but the defaults
    assert results["learner"]["router_lr"] == {"wpl": 0.1, "reinforce": 0.3}[agent]  # the router's own rate
    assert results["final"]["last"]["test_mean"] > 0.6  # chance is 0.25; measured 0.81 (wpl) and 0.80 (reinforce)
    first, last = results["epochs"][0]["train_loss"], results["epochs"][-1]["train_loss"]
    assert last < 0.8 * first

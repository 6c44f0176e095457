"""The command line: list, run end to end, clear errors for bad input, resume."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from routing_rl.cli import main

SMALL_ENV = ["-e", "num_tasks=4", "-e", "train_per_task=120", "-e", "test_per_task=60"]


@pytest.fixture
def runner():
    return CliRunner()


def test_list_shows_envs_and_agents(runner):
    result = runner.invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("synthetic-groups", "fmnist-mtl", "cifar100-superclass", "fixed-random", "no-sharing", "routing_rl/SyntheticGroups-v0"):
        assert name in result.output


def test_run_end_to_end_writes_results_and_tensorboard(runner, tmp_path):
    args = ["run", "--agent", "fixed-random", "--env", "synthetic-groups", "--epochs", "2", "--logdir", str(tmp_path), "--quiet", *SMALL_ENV]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mean" in result.output and "best validation epoch" in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "complete" and len(results["epochs"]) == 2
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--resume" in again.output
    resumed = runner.invoke(main, [*args, "--resume"])
    assert resumed.exit_code == 0 and "nothing to do" in resumed.output
    shown = runner.invoke(main, ["show", str(tmp_path)])
    assert shown.exit_code == 0 and "test accuracy" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "nope"], "unknown agent 'nope'; valid choices: "),
        (["--env", "nope"], "unknown env 'nope'; valid choices: "),
        (["--routed", "conv7"], "unknown layer 'conv7'"),
        (["--epochs", "0"], "0 is not in the range 1<=x<=100000"),
        (["--agent", "no-sharing", "--blocks", "2"], "no-sharing needs at least one block per task"),
        (["-o", "temperature=2"], "fixed-random has no option 'temperature'"),
        (["-e", "num_tasks=abc"], "num_tasks='abc'"),
        (["--device", "cuda:0"], "CUDA is not available") ,
        (["--device", "banana"], "invalid --device"),
    ],
)
def test_bad_input_gives_a_clear_error_without_traceback(runner, tmp_path, args, message):
    result = runner.invoke(main, ["run", "--logdir", str(tmp_path), "--quiet", "--epochs", "1", *SMALL_ENV, *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_data_says_where_to_put_it(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTING_RL_DATA", str(tmp_path / "empty"))
    result = runner.invoke(main, ["run", "--env", "cifar100-superclass", "--data-dir", str(tmp_path / "empty"), "--logdir", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code != 0 and "cifar-100-python" in result.output and "Traceback" not in result.output


def test_analysis_commands_are_attached(runner):
    result = runner.invoke(main, ["--help"])
    for command in ("run", "list", "show", "analyze", "compare"):
        assert command in result.output


def test_nan_loss_stops_the_run_with_exit_code_3(runner, tmp_path):
    import torch

    from routing_rl.agents import Router
    from routing_rl.core.contracts import RoutingDecision

    class CliNaNRouter(Router):
        name = "test-cli-nan-router"

        def __init__(self, num_tasks, num_layers, num_blocks, *, seed: int = 0):
            super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
            self.bad = torch.nn.Parameter(torch.tensor(float("nan")))

        def act(self, obs, explore=True):
            return RoutingDecision(torch.zeros_like(obs.task_ids))

        def policy(self, depth):
            return torch.full((self.num_tasks, self.num_blocks), 1.0 / self.num_blocks)

        def loss(self, episodes):
            return self.bad * episodes.final_reward.mean()

    result = runner.invoke(main, ["run", "--agent", "test-cli-nan-router", "--logdir", str(tmp_path), "--quiet", *SMALL_ENV])
    assert result.exit_code == 3
    assert "loss became nan at epoch 1, batch 1" in result.output and "Traceback" not in result.output

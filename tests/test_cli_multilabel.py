"""`routing-rl run` on multi-label envs: SNR and its baselines end to end, results, resume, pruning, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data import Suite
from routing_rl.metrics import map_at_k
from routing_rl.models import train_parameter_count

SMALL_ENV = ["-e", "num_train=1500", "-e", "num_test=300", "-e", "input_dim=16"]
FAST = ["--epochs", "3", "--lr", "1e-2", "--batch-size", "64", "--quiet"]
MODELS = ["snr-trans", "snr-aver", "shared-bottom", "mmoe", "ml-mmoe"]
TIMING_KEYS = ("train_seconds", "samples_per_second", "eval_seconds")


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: more threads only contend for the shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def random_map() -> float:
    """MAP@10 of random scores on the small env's test split: the chance level to beat."""
    data = Suite.registry.get("multilabel-synthetic")(num_train=1500, num_test=300, input_dim=16).load(None, 0, 0.1)
    y = data.test.y
    scores = [map_at_k(torch.randn(y.shape, generator=torch.Generator().manual_seed(s)), y, 10, data.label_mask).macro for s in range(5)]
    return max(scores)


def run(runner, tmp_path, *args):
    return runner.invoke(main, ["run", "--env", "multilabel-synthetic", "--logdir", str(tmp_path), *SMALL_ENV, *args])


def without_timings(results):
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in results["epochs"]]


def test_list_shows_multilabel_envs_and_models(runner):
    result = runner.invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("multilabel-synthetic", "mmoe-synthetic", "youtube8m", *MODELS, "hard-concrete", "l0_lambda", "hidden_sizes"):
        assert name in result.output
    assert "(model shared-bottom-mlp)" in result.output


@pytest.mark.parametrize("agent", MODELS)
def test_each_model_trains_end_to_end(runner, tmp_path, random_map, agent):
    result = run(runner, tmp_path, "--agent", agent, *FAST)
    assert result.exit_code == 0, result.output
    for text in ("MAP@10", "macro", "micro", "serving", "train"):
        assert text in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["kind"] == "multilabel" and results["status"] == "complete" and results["metric"] == "map@10"
    assert results["config"]["agent"] == agent
    assert results["model"]["name"] == ("shared-bottom-mlp" if agent == "shared-bottom" else agent)
    epochs = results["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert len(epochs[-1]["test"]["per_task"]) == 6 and len(epochs[-1]["val"]["per_task"]) == 6
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    final = results["final"]
    assert final["test_macro"] > random_map + 0.05, f"{agent} did not learn: {final['test_macro']} vs chance {random_map}"
    counts = final["parameters"]
    assert 0 < counts["serving"] <= counts["train"]
    assert results["serving"]["metrics_equal"] and results["serving"]["test"]["macro"] == pytest.approx(final["test_macro"], abs=1e-6)
    assert (tmp_path / "checkpoint.pt").exists() and list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    usage = epochs[-1]["utilization_per_task"]
    assert (usage is None) == (agent == "shared-bottom")


def test_model_options_parse_sequences_and_reach_the_model(runner, tmp_path):
    result = run(runner, tmp_path, "--agent", "snr-trans", "-o", "hidden_sizes=24,12", "-o", "num_subnetworks=3", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["agent_options"] == {"hidden_sizes": [24, 12], "num_subnetworks": 3}
    expected = train_parameter_count("snr-trans", 16, [10, 8, 6, 10, 8, 6], hidden_sizes=(24, 12), num_subnetworks=3)
    assert results["final"]["parameters"]["train"] == expected


def test_large_lambda_prunes_and_the_serving_model_matches(runner, tmp_path):
    result = run(
        runner, tmp_path, "--agent", "snr-trans", "-o", "l0_lambda=1", "-o", "log_alpha_init=-2",
        "--epochs", "2", "--lr", "1e-2", "--batch-size", "64", "--quiet",
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    last = results["epochs"][-1]
    assert last["gates"]["open"] < last["gates"]["total"] == 24
    num_gates = last["gates"]["total"]
    assert last["parameters"]["serving"] < last["parameters"]["train"] - num_gates  # transformation matrices removed
    assert min(last["utilization_per_task"]) < 1.0
    serving = results["serving"]
    assert serving["parameters"] == last["parameters"]["serving"]
    assert serving["metrics_equal"] and serving["max_output_difference"] < 1e-4
    assert "equal to the gated model" in " ".join(result.output.split())


def test_resume_continues_to_the_same_final_result(runner, tmp_path):
    args = ["--agent", "snr-trans", "--lr", "1e-2", "--batch-size", "64", "--quiet", "--seed", "3"]
    full = run(runner, tmp_path / "full", *args, "--epochs", "3")
    assert full.exit_code == 0, full.output
    part = run(runner, tmp_path / "part", *args, "--epochs", "2")
    assert part.exit_code == 0, part.output
    again = run(runner, tmp_path / "part", *args, "--epochs", "3")
    assert again.exit_code != 0 and "--resume" in again.output
    changed = run(runner, tmp_path / "part", *args, "--epochs", "3", "--resume", "-o", "l0_lambda=0.1")
    assert changed.exit_code != 0 and "agent_options" in changed.output
    resumed = run(runner, tmp_path / "part", *args, "--epochs", "3", "--resume")
    assert resumed.exit_code == 0 and "resuming at epoch 3" in resumed.output
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "part" / "results.json").read_text())
    assert without_timings(a) == without_timings(b)
    assert a["serving"]["test"] == b["serving"]["test"]
    done = run(runner, tmp_path / "part", *args, "--epochs", "3", "--resume")
    assert done.exit_code == 0 and "nothing to do" in done.output
    shown = runner.invoke(main, ["show", str(tmp_path / "part")])
    assert shown.exit_code == 0 and "test MAP@10" in shown.output and "micro" in shown.output


def test_regression_env_reports_mse(runner, tmp_path):
    result = runner.invoke(main, [
        "run", "--env", "mmoe-synthetic", "--agent", "mmoe", "--epochs", "2", "--logdir", str(tmp_path), "--quiet",
        "-e", "num_train=800", "-e", "num_test=200", "-e", "input_dim=20",
    ])
    assert result.exit_code == 0, result.output
    assert "test MSE" in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metric"] == "mse" and len(results["final"]["test_per_task"]) == 2
    data = Suite.registry.get("mmoe-synthetic")(num_train=800, num_test=200, input_dim=20).load(None, 0, 0.1)
    predict_the_mean = data.test.y.var(dim=0).mean().item()  # MSE of a constant prediction
    assert results["final"]["test_macro"] < predict_the_mean
    assert results["serving"]["metrics_equal"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "wpl"], "wpl is a router for routing-network envs; for multilabel-synthetic choose one of: snr-trans, snr-aver, shared-bottom, mmoe, ml-mmoe"),
        (["--agent", "hard-concrete"], "hard-concrete is a router for routing-network envs"),
        (["--agent", "nope"], "unknown agent 'nope'; valid choices: snr-trans, snr-aver, shared-bottom, mmoe, ml-mmoe"),
        (["--agent", "snr-trans", "--routed", "conv"], "--routed only applies to routing-network envs"),
        (["--agent", "mmoe", "-o", "l0_lambda=1"], "mmoe has no option 'l0_lambda'; valid options: expert_hidden, num_experts, shared_hidden, tower_hidden"),
        (["--agent", "snr-trans", "-o", "hidden_sizes=64,x"], "hidden_sizes='64,x'"),
        (["--agent", "snr-trans", "-o", "hidden_sizes=64,32,16"], "hidden_sizes needs one size per sub-network layer"),
        (["--agent", "snr-trans", "-e", "relatedness=2"], "relatedness must be in [0, 1]"),
    ],
)
def test_bad_multilabel_input_gives_a_clear_error(runner, tmp_path, args, message):
    result = run(runner, tmp_path, "--epochs", "1", "--quiet", *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "snr-trans"], "snr-trans is a multi-task model for multi-label envs; for synthetic-groups choose one of: fixed-random"),
        (["--agent", "shared-bottom-mlp"], "shared-bottom-mlp is a multi-task model"),
        (["--map-k", "5"], "--map-k only applies to multi-label envs"),
        (["--env", "nope"], "valid choices: cifar100-superclass"),
    ],
)
def test_models_do_not_run_on_routing_envs(runner, tmp_path, args, message):
    result = runner.invoke(main, ["run", "--logdir", str(tmp_path), "--quiet", "--epochs", "1", *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    if args[0] == "--env":
        assert "multilabel-synthetic" in result.output

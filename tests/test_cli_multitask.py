"""`routing-rl run` on multi-label and regression suites: SNR and its baselines, and every router, end to end."""

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
MODELS = ["snr-trans", "snr-aver", "shared-bottom-mlp", "mmoe", "ml-mmoe"]
ROUTERS = ["wpl", "reinforce", "qlearning", "fixed-random", "shared-bottom", "no-sharing", "hard-concrete"]
TIMING_KEYS = ("train_seconds", "data_seconds", "samples_per_second", "eval_seconds")



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
    assert "multi-task model" in result.output and "router: reinforcement learning" in result.output


@pytest.mark.parametrize("agent", MODELS)
def test_each_model_trains_end_to_end(runner, tmp_path, random_map, agent):
    result = run(runner, tmp_path, "--agent", agent, *FAST)
    assert result.exit_code == 0, result.output
    for text in ("MAP@10", "mean", "micro", "serving", "train"):
        assert text in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["learner"]["kind"] == "model" and results["status"] == "complete"
    assert results["metric"]["name"] == "map@10" and results["metric"]["higher_is_better"] is True
    assert results["metric"]["tasks"] == [{"metric": "map@10", "higher_is_better": True}] * len(results["env"]["task_names"])
    assert results["config"]["agent"] == results["learner"]["agent"] == agent
    epochs = results["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert len(epochs[-1]["test"]["per_task"]) == 6 and len(epochs[-1]["val"]["per_task"]) == 6
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    final = results["final"]
    assert final["last"]["test_mean"] > random_map + 0.05, f"{agent} did not learn: {final['last']} vs chance {random_map}"
    counts = final["parameters"]
    assert 0 < counts["serving"] <= counts["train"]
    assert results["serving"]["metrics_equal"] and results["serving"]["test"]["mean"] == pytest.approx(final["last"]["test_mean"], abs=1e-6)
    assert (tmp_path / "checkpoint.pt").exists() and list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    usage = epochs[-1]["utilization_per_task"]
    assert (usage is None) == (agent == "shared-bottom-mlp")


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
    assert results["metric"] == {"name": "mse", "higher_is_better": False, "tasks": [{"metric": "mse", "higher_is_better": False}] * 2} and len(results["final"]["last"]["test_per_task"]) == 2
    data = Suite.registry.get("mmoe-synthetic")(num_train=800, num_test=200, input_dim=20).load(None, 0, 0.1)
    predict_the_mean = data.test.y.var(dim=0).mean().item()  # MSE of a constant prediction
    assert results["final"]["last"]["test_mean"] < predict_the_mean
    assert results["serving"]["metrics_equal"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "nope"], "unknown agent 'nope'; valid choices: "),
        (["--agent", "snr-trans", "--routed", "conv"], "--routed only applies to routers; snr-trans is a multi-task model"),
        (["--agent", "mmoe", "-o", "l0_lambda=1"], "mmoe has no option 'l0_lambda'; valid options: shared_hidden, expert_hidden, num_experts, tower_hidden"),
        (["--agent", "snr-trans", "-o", "hidden_sizes=64,x"], "hidden_sizes='64,x'"),
        (["--agent", "snr-trans", "-o", "hidden_sizes=64,32,16"], "hidden_sizes needs one size per sub-network layer"),
        (["--agent", "snr-trans", "-e", "relatedness=2"], "relatedness must be in [0, 1]"),
        (["--agent", "wpl", "--routed", "conv"], "this network has no conv layers"),
    ],
)
def test_bad_multilabel_input_gives_a_clear_error(runner, tmp_path, args, message):
    result = run(runner, tmp_path, "--epochs", "1", "--quiet", *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("agent", ROUTERS)
def test_every_router_trains_on_the_multilabel_suite(runner, tmp_path, agent):
    blocks = ["--blocks", "6"] if agent == "no-sharing" else ["--blocks", "3"]
    result = run(runner, tmp_path, "--agent", agent, "--epochs", "2", "--max-batches", "5", "--quiet", "--hidden", "16", *blocks)
    assert result.exit_code == 0, result.output
    assert "MAP@10" in result.output and "route" in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["learner"]["kind"] == "router" and results["learner"]["head_sizes"] == [10, 8, 6, 10, 8, 6]
    last = results["epochs"][-1]
    assert len(last["test"]["per_task"]) == 6 and len(last["routing"]["routes"]) == 6
    assert 0 < last["parameters"]["serving"] <= last["parameters"]["train"]


def test_a_routed_network_beats_chance_on_the_multilabel_suite(runner, tmp_path, random_map):
    result = run(runner, tmp_path, "--agent", "fixed-random", *FAST, "--hidden", "32")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["final"]["last"]["test_mean"] > random_map + 0.05
    assert results["epochs"][-1]["train_loss"] < results["epochs"][0]["train_loss"]


def test_routers_on_regression_default_to_the_negative_loss_reward(runner, tmp_path):
    env = ["--env", "mmoe-synthetic", "-e", "num_train=400", "-e", "num_test=100", "-e", "input_dim=8", "--quiet", "--epochs", "1"]
    ok = runner.invoke(main, ["run", "--agent", "reinforce", "--logdir", str(tmp_path / "a"), *env])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "a" / "results.json").read_text())["metric"]["name"] == "mse"
    refused = runner.invoke(main, ["run", "--agent", "reinforce", "--reward", "correct", "--logdir", str(tmp_path / "b"), *env])
    assert refused.exit_code != 0 and "--reward correct does not apply to regression tasks" in refused.output


def test_models_train_on_single_label_suites_too(runner, tmp_path):
    """One interface both ways: a multi-task model reads each row's own task output."""
    result = runner.invoke(main, ["run", "--agent", "snr-trans", "--env", "synthetic-groups", "--epochs", "2", "--quiet",
                                  "-e", "num_tasks=4", "-e", "train_per_task=200", "-e", "test_per_task=100",
                                  "--lr", "3e-3", "--logdir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metric"]["name"] == "accuracy" and results["final"]["last"]["test_mean"] > 0.4  # chance 0.25
    map_k = runner.invoke(main, ["run", "--map-k", "5", "--logdir", str(tmp_path / "x"), "--quiet"])
    assert map_k.exit_code != 0 and "--map-k only applies to multi-label suites" in map_k.output


def test_a_routed_multilabel_run_resumes_exactly(runner, tmp_path):
    args = ["--agent", "wpl", "--hidden", "16", "--blocks", "3", "--quiet", "--seed", "2"]
    assert run(runner, tmp_path / "full", *args, "--epochs", "2").exit_code == 0
    assert run(runner, tmp_path / "part", *args, "--epochs", "1").exit_code == 0
    resumed = run(runner, tmp_path / "part", *args, "--epochs", "2", "--resume")
    assert resumed.exit_code == 0 and "resuming at epoch 2" in resumed.output
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "part" / "results.json").read_text())
    assert without_timings(a) == without_timings(b)

"""``--fused-optimizer`` (torch's fused Adam/SGD kernels, one per tensor) keeps runs reproducible and
resumable, takes the same steps as the default multi-tensor optimizer up to rounding, and applies to
routers and multi-task models alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.loop.learner import make_optimizers


def run(tmp_path: Path, name: str, *extra: str, epochs: int = 2) -> dict:
    args = ["run", "--agent", "wpl", "--env", "synthetic-groups", "-e", "train_per_task=200", "-e", "test_per_task=50",
            "--epochs", str(epochs), "--threads", "1", "--quiet", "--logdir", str(tmp_path / name), *extra]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / name / "results.json").read_text())


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fused_optimizer_takes_the_default_optimizers_steps_up_to_rounding(optimizer):
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    initial = [w.detach().clone() for w in weights]
    fused = make_optimizers(RunConfig(optimizer=optimizer, fused_optimizer=True), weights, [], 1e-3)["all"]
    default = make_optimizers(RunConfig(optimizer=optimizer), copies, [], 1e-3)["all"]
    assert fused.defaults["fused"] is True and not default.defaults["fused"] and default.defaults["foreach"] is True
    for _ in range(3):
        grads = [torch.randn(5, 3) for _ in weights]
        for params, opt in ((weights, fused), (copies, default)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for w, c, w0 in zip(weights, copies, initial):
        assert (w - w0).abs().min() > 0  # every entry moved
        torch.testing.assert_close(w, c, rtol=1e-5, atol=1e-6)


def test_fused_optimizer_runs_are_reproducible_and_resume_exactly(tmp_path):
    first = run(tmp_path, "a", "--fused-optimizer")
    again = run(tmp_path, "b", "--fused-optimizer")
    assert first["config"]["fused_optimizer"] is True
    assert first["epochs"][-1]["test"] == again["epochs"][-1]["test"]
    assert first["epochs"][-1]["routing"]["policy"] == again["epochs"][-1]["routing"]["policy"]
    run(tmp_path, "c", "--fused-optimizer", epochs=1)
    resumed = run(tmp_path, "c", "--fused-optimizer", "--resume")
    assert resumed["epochs"][-1]["test"] == first["epochs"][-1]["test"]
    refused = CliRunner().invoke(main, ["run", "--agent", "wpl", "--env", "synthetic-groups", "-e", "train_per_task=200",
                                        "--epochs", "2", "--quiet", "--logdir", str(tmp_path / "c"), "--resume"])  # fmt: skip
    assert refused.exit_code == 1 and "fused_optimizer" in refused.output and isinstance(refused.exception, SystemExit)


def test_fused_kernels_are_refused_up_front_in_one_line_for_unsupported_parameters():
    meta = [torch.nn.Parameter(torch.empty(3, device="meta"))]
    with pytest.raises(ValueError, match=r"^--fused-optimizer is not available for these parameters .*run without it$"):
        make_optimizers(RunConfig(fused_optimizer=True), meta, [], 1e-3)
    make_optimizers(RunConfig(), meta, [], 1e-3)  # the default kernels take them


def test_fused_optimizer_trains_multi_task_models_with_separate_gate_optimizers(tmp_path):
    result = CliRunner().invoke(main, ["run", "--agent", "snr-trans", "--env", "multilabel-synthetic", "-e", "num_train=300",
                                       "-e", "num_test=100", "--epochs", "1", "--threads", "1", "--fused-optimizer",
                                       "--separate-optimizers", "--quiet", "--logdir", str(tmp_path / "m")])  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "m" / "results.json").read_text())
    assert results["config"]["fused_optimizer"] is True and results["epochs"][-1]["train_loss"] > 0

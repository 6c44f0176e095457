"""``--deterministic`` (the default) / ``--nondeterministic``: which CUDA kernels a run uses. CUDA is
not on the test machines, so these check the switch itself, what a run stores, and that the option
neither blocks a resume nor changes a suite trial's identity (it changes only CUDA's summation order)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites.spec import Trial
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.loop.determinism import CUBLAS_WORKSPACE, select_cuda_kernels


@pytest.fixture
def restore_kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_deterministic_kernels_are_selected_with_cublas_reproducible_workspace(restore_kernels):
    select_cuda_kernels(True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    select_cuda_kernels(False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_users_cublas_workspace_setting_is_kept(restore_kernels, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    select_cuda_kernels(True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def run(tmp_path: Path, *extra: str, epochs: int = 2) -> dict:
    args = ["run", "--agent", "wpl", "--env", "synthetic-groups", "-e", "train_per_task=100", "-e", "test_per_task=30",
            "--epochs", str(epochs), "--threads", "1", "--quiet", "--device", "cpu", "--logdir", str(tmp_path / "run"), *extra]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "run" / "results.json").read_text())


def test_the_choice_is_stored_and_a_run_resumes_under_the_other_one_with_the_same_cpu_numbers(tmp_path):
    whole = run(tmp_path / "a", epochs=2)
    assert whole["config"]["deterministic"] is True
    run(tmp_path / "b", "--nondeterministic", epochs=1)
    resumed = run(tmp_path / "b", "--resume", epochs=2)  # deterministic again: not refused
    assert resumed["config"]["deterministic"] is True
    assert resumed["final"]["last"]["test_mean"] == whole["final"]["last"]["test_mean"]


def test_the_choice_does_not_change_a_suite_trials_identity():
    config = RunConfig(agent="wpl", env="synthetic-groups", epochs=3)
    fast = RunConfig(agent="wpl", env="synthetic-groups", epochs=3, deterministic=False)
    assert Trial("wpl", 0, config).key == Trial("wpl", 0, fast).key

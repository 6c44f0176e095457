"""The benchmark and verification scripts run and print their tables (smoke runs: one step, no timing
is checked; speed targets live in benchmarks/README.md, never in tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["benchmarks/grid.py", "--plain-only", "--steps", "1", "--rounds", "1"], "| plain channels_last |"),
        (["benchmarks/fc_dispatch.py", "--steps", "1", "--rounds", "1"], "| 100 | 100 | 32 | 64 |"),
        (["benchmarks/conv_dispatch.py", "--steps", "1", "--rounds", "1", "--channels-last"], "| 32x14x14 | 20 |"),
        (["benchmarks/profile_step.py", "--agent", "wpl", "--tasks", "40", "--blocks", "40", "--vector", "--steps", "2"], "| optimizer step |"),
    ],
)
def test_benchmark_scripts_print_their_tables(args, expected):
    assert expected in run_script(*args)


def test_rerun_trial_finds_the_same_scores(tmp_path):
    args = ["run", "--agent", "wpl", "--env", "synthetic-groups", "-e", "train_per_task=100", "-e", "test_per_task=30",
            "--epochs", "2", "--threads", "1", "--quiet", "--logdir", str(tmp_path / "first")]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    out = run_script("docs/rerun_trial.py", str(tmp_path / "first"), "--out", str(tmp_path / "again"))
    assert "every per-task score the same" in out and "DIFFERENT" not in out



def test_portable_kernels_prints_its_table():
    """One batch per setting on tiny synthetic Fashion-MNIST files: the child processes run under the
    setting's capability and the table compares their per-task scores."""
    out = run_script("benchmarks/portable_kernels.py", "--batches", "2", "--rounds", "1", "--only", "none", "--synthetic", "--per-class", "20")
    assert "torch capabilities default: DEFAULT, avx2: " in out and "on synthetic Fashion-MNIST files (20 images" in out
    assert re.search(r"^\| none \| [0-9.]+ \| [0-9.]+ \| (yes|no) \| (none|[12]) \| yes \| [0-9,]+ \| [0-9,]+ \| 1.00x, 1.00x \|$", out, re.M), out

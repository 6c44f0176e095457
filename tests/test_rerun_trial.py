"""docs/rerun_trial.py: bit for bit on the CPU kind on record; on another CPU kind it says so and
judges the re-run against the seed spread of its suite row; --epochs compares the first N epochs."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from routing_rl.cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--agent", "wpl", "--env", "synthetic-groups", "-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30",
         "--threads", "1", "--quiet"]  # fmt: skip
OTHER_CPU = {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "cpu_capability": "AVX512",
             "cpu_flags": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"], "threads": 1}  # fmt: skip


def _load_script():
    spec = importlib.util.spec_from_file_location("rerun_trial", ROOT / "docs" / "rerun_trial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rerun_trial = _load_script()


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A 2-epoch run in a suite-like folder, named as a suite trial: ``row-s0-<hash>``."""
    run = tmp_path_factory.mktemp("suite") / "row-s0-0123456789"
    result = CliRunner().invoke(main, ["run", *SMALL, "--epochs", "2", "--logdir", str(run)])
    assert result.exit_code == 0, result.output
    return run


def rerun(run: Path, out: Path, *args: str):
    return CliRunner().invoke(rerun_trial.main, [str(run), "--out", str(out), *args])


def copy_trial(trial: Path, folder: Path, name: str = "row-s0-0123456789", edit=None) -> Path:
    run = folder / name
    shutil.copytree(trial, run)
    if edit is not None:
        results = json.loads((run / "results.json").read_text())
        edit(results)
        (run / "results.json").write_text(json.dumps(results))
    return run


def on_other_cpu(results: dict) -> None:
    """What a record of another CPU kind looks like: its machine, and scores a prediction apart."""
    results["provenance"]["machine"] = OTHER_CPU
    for record in results["epochs"]:
        record["test"]["per_task"][0] += 1 / 30
        record["test"]["mean"] += 1 / 90


def sibling(trial: Path, folder: Path, seed: int, test_mean: float, **config) -> None:
    """Another seed of the row beside the trial, with test mean ``test_mean`` at both epochs."""

    def edit(results):
        results["config"].update(seed=seed, **config)
        for record in results["epochs"]:
            record["test"]["mean"] = test_mean

    copy_trial(trial, folder, f"row-s{seed}-{seed:010d}", edit)


def test_same_cpu_kind_compares_bit_for_bit(trial, tmp_path):
    result = rerun(trial, tmp_path / "again")
    assert result.exit_code == 0, result.output
    assert "every per-task score the same" in result.output and "DIFFERENT" not in result.output
    assert "not expected to match" not in result.output and result.output.count("epoch ") == 4


def test_one_ulp_apart_on_the_same_cpu_kind_fails(trial, tmp_path):
    def nudge(results):
        score = results["epochs"][1]["val"]["per_task"]
        score[2] = float(np.nextafter(np.float32(score[2]), np.float32(2)))

    run = copy_trial(trial, tmp_path, edit=nudge)
    result = rerun(run, tmp_path / "again")
    assert result.exit_code == 1, result.output
    assert "epoch 2 val" in result.output and "DIFFERENT" in result.output
    assert "scores differ on the CPU kind on record" in result.output


def test_epochs_retrains_and_compares_the_first_epochs(trial, tmp_path):
    result = rerun(trial, tmp_path / "again", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "epoch 1 test" in result.output and "epoch 2" not in result.output
    assert json.loads((tmp_path / "again" / "results.json").read_text())["config"]["epochs"] == 1
    too_many = rerun(trial, tmp_path / "again", "--epochs", "3")
    assert too_many.exit_code != 0 and "records 2 epoch(s)" in too_many.output


def test_another_cpu_kind_within_the_seed_spread(trial, tmp_path):
    run = copy_trial(trial, tmp_path, edit=on_other_cpu)
    mean = json.loads((trial / "results.json").read_text())["epochs"][0]["test"]["mean"]
    for seed, value in ((1, mean - 0.03), (2, mean + 0.01), (3, mean + 0.04)):
        sibling(trial, tmp_path, seed, value)
    result = rerun(run, tmp_path / "again", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "this is not the CPU kind (or torch version) on record" in result.output
    assert "Intel(R) Xeon(R) Platinum 8480+ (torch kernels AVX512" in result.output
    assert "DIFFERENT" in result.output and "the other 3 seeds of the row" in result.output
    assert "the re-run is within the row's seed spread" in result.output


def test_another_cpu_kind_outside_the_seed_spread(trial, tmp_path):
    run = copy_trial(trial, tmp_path, edit=on_other_cpu)
    mean = json.loads((trial / "results.json").read_text())["epochs"][1]["test"]["mean"]
    for seed, value in ((1, mean + 0.30), (2, mean + 0.31), (3, mean + 0.29)):
        sibling(trial, tmp_path, seed, value)
    result = rerun(run, tmp_path / "again")
    assert result.exit_code == 1, result.output
    assert "at epoch 2" in result.output and "OUTSIDE the row's seed spread" in result.output


def test_only_seeds_of_the_same_row_count(trial, tmp_path):
    run = copy_trial(trial, tmp_path, edit=on_other_cpu)
    sibling(trial, tmp_path, 1, 0.5)
    sibling(trial, tmp_path, 2, 0.5, lr=0.5)  # another row's options under the same name: not a seed of it
    copy_trial(trial, tmp_path, "other-s3-0000000003", lambda r: r["config"].update(seed=3))  # another row
    assert [name for name, _ in rerun_trial.siblings(run, json.loads((run / "results.json").read_text()))] == ["row-s1-0000000001"]
    result = rerun(run, tmp_path / "again")
    assert result.exit_code == 1, result.output
    assert "no seed spread to compare with: 1 other seed(s)" in result.output


def test_a_record_without_a_machine_says_so(trial, tmp_path):
    run = copy_trial(trial, tmp_path, edit=lambda r: r["provenance"].pop("machine"))
    result = rerun(run, tmp_path / "again", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "the record does not name the CPU that trained it" in result.output
    assert "every per-task score the same, even so" in result.output


def test_a_resume_on_another_cpu_kind_counts_for_the_epochs_after_it(trial, tmp_path):
    def resumed(results):
        results["provenance"]["resumes"] = [{"epoch": 2, "started": "", "git_commit": None, "machine": OTHER_CPU}]

    run = copy_trial(trial, tmp_path, edit=resumed)
    assert "not the CPU kind" not in rerun(run, tmp_path / "one", "--epochs", "1").output
    result = rerun(run, tmp_path / "two")
    assert "this is not the CPU kind (or torch version) on record" in result.output
    assert "every per-task score the same, even so" in result.output and result.exit_code == 0

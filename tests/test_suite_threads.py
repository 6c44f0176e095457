"""Torch threads of suite and sweep trials: one by default, the file's ``threads`` over that,
``--threads`` over both, and a one-line error for a count the machine cannot use."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites import load_suite_file
from routing_rl.suites import runner
from routing_rl.suites.runner import MAX_THREADS_PER_CORE, plan, threads_problem, trial_threads
from tests.suite_texts import tiny_suite
from tests.test_sweep import SWEEP


@pytest.fixture
def unthreaded(tmp_path):
    """The tiny suite without its ``threads = 1``: the default decides."""
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(epochs=1).replace("threads = 1\n", ""))
    return path


def test_a_trial_gets_one_thread_unless_the_file_or_the_command_line_says_otherwise(unthreaded, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)  # the old default gave 16 // workers threads here
    spec = load_suite_file(unthreaded)
    default = plan(spec, None, tmp_path / "runs")
    assert {t.config.threads for t, _, _ in default} == {1}
    assert {t.config.threads for t, _, _ in plan(spec, None, tmp_path / "runs", threads=3)} == {3}
    in_file = tmp_path / "two.toml"
    in_file.write_text(unthreaded.read_text().replace("epochs = 1\n", "epochs = 1\nthreads = 2\n"))
    two = load_suite_file(in_file)
    assert {t.config.threads for t, _, _ in plan(two, None, tmp_path / "runs")} == {2}  # the file's over the default
    assert {t.config.threads for t, _, _ in plan(two, None, tmp_path / "runs", threads=1)} == {1}  # --threads over the file's
    # threads are not part of a trial's identity: every choice finds the same (kept or finished) trials
    names = {tuple(t.name for t, _, _ in p) for p in (default, plan(two, None, tmp_path / "runs", threads=4))}
    assert len(names) == 1
    assert (trial_threads(None, None), trial_threads(None, 2), trial_threads(5, 2)) == (1, 2, 5)


def test_threads_beyond_the_machine_or_below_one_are_refused():
    assert threads_problem(1, cores=2) is None and threads_problem(MAX_THREADS_PER_CORE * 2, cores=2) is None
    assert "at most 8" in threads_problem(9, cores=2)
    assert "positive" in threads_problem(0, cores=2)


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_THREADS_PER_CORE * (os.cpu_count() or 1) + 1), "two"])
@pytest.mark.parametrize("command", ["suite run", "sweep"])
def test_a_bad_threads_option_is_one_line_naming_it(unthreaded, tmp_path, value, command):
    path = unthreaded
    if command == "sweep":
        path = tmp_path / "sweep.toml"
        path.write_text(SWEEP)
    result = CliRunner().invoke(main, [*command.split(), str(path), "--dry-run" if command == "suite run" else "--trials=1",
                                       "--threads", value, "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--threads" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_suite_run_trains_every_trial_on_the_threads_given(unthreaded, tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["suite", "run", str(unthreaded), "--runs", "shared", "--threads", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    trained = [json.loads((d / "results.json").read_text()) for d in out.glob("shared-s*")]
    assert len(trained) == 2
    assert all(r["config"]["threads"] == 2 and r["provenance"]["torch_threads"] == 2 for r in trained)
    again = CliRunner().invoke(main, ["suite", "run", str(unthreaded), "--runs", "shared", "--out", str(out), "--dry-run"])
    assert "2 complete" in again.output  # trained on 2 threads, found again on the default 1


def test_sweep_trials_take_the_threads_given(tmp_path, monkeypatch):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    seen: list[int | None] = []

    def capture(todo, *args):
        seen.extend(trial.config.threads for trial, _ in todo)
        raise RuntimeError("stop before training")

    monkeypatch.setattr(runner, "run_local", capture)
    CliRunner().invoke(main, ["sweep", str(path), "--trials", "2", "--threads", "2", "--out", str(tmp_path / "out")])
    assert seen and set(seen) == {2}
    seen.clear()
    CliRunner().invoke(main, ["sweep", str(path), "--trials", "2", "--out", str(tmp_path / "out")])
    assert set(seen) == {1}  # the sweep file's threads = 1

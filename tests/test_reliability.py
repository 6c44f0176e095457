"""A careless or hostile user meets one-line errors, never a traceback, and loses nothing.

A table of bad invocations runs through the real command line in-process; the cases that need a
second process (two writers on one run directory, a writer killed with SIGKILL) use subprocesses.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main

SMALL = ["-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *fragments, code=None):
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, result.output


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Plugin modules on sys.path: one that raises on import, one with a syntax error, one whose router's constructor raises."""
    (tmp_path / "raising_plugin.py").write_text("raise RuntimeError('plugin broke on import')\n")
    (tmp_path / "syntax_plugin.py").write_text("def broken(:\n")
    (tmp_path / "ctor_plugin.py").write_text(
        "from routing_rl.agents.fixed_random import FixedRandomRouter\n"
        "class Exploding(FixedRandomRouter):\n"
        "    name = 'test-exploding-router'\n"
        "    def __init__(self, *a, **k):\n"
        "        raise ZeroDivisionError('constructor exploded')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def bad_run_cases(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {
        "empty agent": (["--agent", ""], ["unknown agent ''", "valid choices"]),
        "empty routed": (["--routed", ""], ["--routed '' names no layer"]),
        "negative seed": (["--seed", "-1"], ["--seed"]),
        "empty plugin": (["--plugin", ""], ["--plugin", "empty module name"]),
        "missing plugin": (["--plugin", "no_such_plugin_module"], ["--plugin", "no_such_plugin_module"]),
        "plugin raises": (["--plugin", "raising_plugin"], ["plugin broke on import"]),
        "plugin syntax error": (["--plugin", "syntax_plugin"], ["SyntaxError"]),
        "router constructor raises": (["--plugin", "ctor_plugin", "--agent", "test-exploding-router"], ["constructor exploded"]),
        "logdir is a file": (["--logdir", a_file], ["is a file, not a directory"]),
        "logdir below a file": (["--logdir", a_file / "run"], ["cannot use --logdir", "Not a directory"]),
        "logdir under /proc": (["--logdir", "/proc/routing-rl-test/run"], ["cannot use --logdir"]),
        "unknown env option": (["-e", "bogus=1"], ["synthetic-groups has no option 'bogus'"]),
        "bad reward for regression": (["--env", "mmoe-synthetic", "--agent", "wpl", "--reward", "correct"], ["--reward correct does not apply"]),
        "map-k on single-label": (["--map-k", "3"], ["--map-k only applies"]),
        "model with router option": (["--agent", "mmoe", "--env", "multilabel-synthetic", "--blocks", "3"], ["--blocks only applies to routers"]),
        "negative divergence factor": (["--divergence-factor", "-1"], ["--divergence-factor"]),
        "data too large for memory": (["-e", "num_tasks=99999999999"], ["-e num_tasks=99999999999", "of memory"]),
        "network too large for memory": (["--blocks", "1000000000"], ["parameters", "lower --blocks"]),
        "meta device": (["--device", "meta"], ["invalid --device 'meta'"]),
        "xpu device": (["--device", "xpu"], ["invalid --device 'xpu'"]),
        "routed names no layer": (["--routed", ","], ["--routed ',' names no layer"]),
        "resume and overwrite": (["--resume", "--overwrite"], ["give one of them"]),
        "empty logdir": (["--logdir", ""], ["--logdir", "is empty"]),
        "nan router lr": (["--router-lr", "nan"], ["--router-lr must be a finite number"]),
        "inf collab reward": (["--collab-reward", "inf"], ["--collab-reward must be a finite number"]),
        "divergence factor below one": (["--divergence-factor", "0.5"], ["0 (off) or at least 1"]),
        "infinite agent option": (["--agent", "hard-concrete", "-o", "log_alpha_init=inf"], ["expected a finite number"]),
        "seed too large": (["--seed", str(2**64)], ["--seed"]),
        "too many threads": (["--threads", "1000000"], ["--threads"]),
    }


CASES = [
    "empty agent", "empty routed", "negative seed", "empty plugin", "missing plugin", "plugin raises",
    "plugin syntax error", "router constructor raises", "logdir is a file", "logdir below a file",
    "logdir under /proc", "unknown env option", "bad reward for regression", "map-k on single-label",
    "model with router option", "negative divergence factor", "data too large for memory",
    "network too large for memory", "meta device", "xpu device", "routed names no layer", "resume and overwrite",
    "empty logdir", "nan router lr", "inf collab reward", "divergence factor below one", "infinite agent option",
    "seed too large", "too many threads",
]  # fmt: skip


def test_the_case_table_is_complete(tmp_path):
    assert sorted(bad_run_cases(tmp_path)) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_run_invocations_give_one_line_errors(tmp_path, plugins, case):
    args, fragments = bad_run_cases(tmp_path)[case]
    logdir = [] if "--logdir" in args else ["--logdir", tmp_path / "run"]
    env = [] if "--env" in args or "-e" in args else SMALL[:-1]
    result = invoke("run", "--epochs", "1", "--quiet", *logdir, *env, *args)
    assert_clean_error(result, *fragments)


def test_a_planted_checkpoint_payload_is_refused_and_never_runs(tmp_path):
    run = tmp_path / "run"
    assert invoke("run", "--epochs", "1", "--logdir", run, *SMALL).exit_code == 0
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    state = torch.load(run / "checkpoint.pt", weights_only=True)  # a real checkpoint, then the planted entry
    state["extra"] = Payload()
    torch.save(state, run / "checkpoint.pt")
    result = invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL)
    assert_clean_error(result, "cannot load checkpoint", "checkpoint.pt")
    assert not marker.exists()


def test_a_truncated_checkpoint_is_a_clean_error(tmp_path):
    run = tmp_path / "run"
    assert invoke("run", "--epochs", "1", "--logdir", run, *SMALL).exit_code == 0
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    assert_clean_error(invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL), "cannot load checkpoint", "--overwrite")


def test_a_full_disk_at_a_checkpoint_write_loses_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert invoke("run", "--epochs", "1", "--logdir", run, *SMALL).exit_code == 0
    before = (run / "checkpoint.pt").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("routing_rl.training.io.torch.save", full_disk)
    result = invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL)
    assert_clean_error(result, "No space left on device", "--resume")
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()
    resumed = invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL)
    assert resumed.exit_code == 0 and "resuming at epoch 2" in resumed.output


def test_validation_fraction_zero_trains_and_reports(tmp_path):
    result = invoke("run", "--epochs", "2", "--val-fraction", "0", "--logdir", tmp_path / "run", *SMALL)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["env"]["samples"]["val"] == 0 and results["final"]["best_val"]["epoch"] == 2


@pytest.mark.parametrize(("args", "what"), [(["--lr", "1e6"], "is over 1000 times the first batch"),
                                             (["--lr", "1e6", "--divergence-factor", "0", "--optimizer", "sgd"], "loss became")])  # fmt: skip
def test_divergence_stops_the_run_and_is_recorded(tmp_path, args, what):
    run = tmp_path / "run"
    result = invoke("run", "--epochs", "3", "--logdir", run, *SMALL, *args)
    assert_clean_error(result, what, "try a lower --lr", code=3)
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "diverged" and results["divergence"]["epoch"] >= 1 and results["divergence"]["batch"] >= 1


def _wait_for(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_one_writer_per_run_directory_and_a_killed_writers_lock_is_recovered(tmp_path):
    run = tmp_path / "run"
    args = ["run", "--epochs", "400", "--logdir", str(run), "-e", "num_tasks=3", "-e", "train_per_task=400", "--quiet"]
    writer = subprocess.Popen([sys.executable, "-m", "routing_rl", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        assert _wait_for(lambda: (run / "results.json").exists()), "the first writer never wrote its first epoch"
        for extra in ([], ["--overwrite"], ["--resume"]):
            second = invoke(*args, *extra)
            assert_clean_error(second, "is in use by another routing-rl run", f"PID {writer.pid}")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    resumed = invoke("run", "--epochs", "1", "--logdir", run, "-e", "num_tasks=3", "-e", "train_per_task=400", "--quiet", "--resume")
    assert resumed.exit_code == 0 and "nothing to do" in resumed.output  # the killed writer's lock was free again
    taken = invoke("run", "--epochs", "1", "--logdir", run, *SMALL, "--overwrite")
    assert taken.exit_code == 0, taken.output


def test_a_resumed_run_removes_the_temporary_files_of_a_killed_write(tmp_path):
    run = tmp_path / "run"
    assert invoke("run", "--epochs", "1", "--logdir", run, *SMALL).exit_code == 0
    orphans = [run / ".checkpoint.pt.a1b2.tmp", run / ".results.json.c3d4.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a write")
    assert invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL).exit_code == 0
    assert not any(o.exists() for o in orphans)

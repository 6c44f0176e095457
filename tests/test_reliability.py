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
from pathlib import Path

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
    (tmp_path / "project").mkdir(exist_ok=True)
    (tmp_path / "project" / "notes.txt").write_text("mine")
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
        "data too large for memory": (["-e", "train_per_task=99999999999"], ["-e train_per_task=99999999999", "of memory"]),
        "too many tasks": (["-e", "num_tasks=99999999999"], ["num_tasks is 99999999999, more than the 1000 tasks a run may have"]),
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
        "logdir is the root": (["--logdir", "/"], ["cannot use --logdir /", "root of the file system"]),
        "logdir is home": (["--logdir", Path.home()], ["cannot use --logdir", "your home directory"]),
        "logdir is /etc": (["--logdir", "/etc"], ["cannot use --logdir /etc", "system folder"]),
        "logdir under /usr": (["--logdir", "/usr/share/routing-rl-run"], ["system folder"]),
        "logdir holds other files": (["--logdir", tmp_path / "project"], ["already holds other files (notes.txt)", "not a run"]),
    }


CASES = [
    "empty agent", "empty routed", "negative seed", "empty plugin", "missing plugin", "plugin raises",
    "plugin syntax error", "router constructor raises", "logdir is a file", "logdir below a file",
    "logdir under /proc", "unknown env option", "bad reward for regression", "map-k on single-label",
    "model with router option", "negative divergence factor", "data too large for memory", "too many tasks",
    "network too large for memory", "meta device", "xpu device", "routed names no layer", "resume and overwrite",
    "empty logdir", "nan router lr", "inf collab reward", "divergence factor below one", "infinite agent option",
    "seed too large", "too many threads", "logdir is the root", "logdir is home", "logdir is /etc", "logdir under /usr",
    "logdir holds other files",
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

    monkeypatch.setattr("routing_rl.training.records.io.torch.save", full_disk)
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


def test_a_busy_run_directory_is_refused_before_the_data_is_loaded(tmp_path):
    from routing_rl.training import RunDirectory

    holder = RunDirectory(tmp_path / "run")
    holder.acquire()  # another writer; its data source would fail if it were ever loaded
    try:
        result = invoke("run", "--env", "fmnist-mtl", "--data-dir", tmp_path / "no-data", "--logdir", tmp_path / "run", "--quiet")
        assert_clean_error(result, "is in use by another routing-rl run")
    finally:
        holder.release()


def test_a_failed_set_up_leaves_no_run_directory_behind(tmp_path):
    result = invoke("run", "--logdir", tmp_path / "new" / "run", "-e", "num_tasks=0", "--quiet")
    assert_clean_error(result)
    assert not (tmp_path / "new" / "run").exists()
    assert_clean_error(invoke("run", "--logdir", "/", "--quiet"), "root")
    assert not Path("/results.json").exists() and not Path("/run.lock").exists()


def test_a_resumed_run_removes_the_temporary_files_of_a_killed_write(tmp_path):
    run = tmp_path / "run"
    assert invoke("run", "--epochs", "1", "--logdir", run, *SMALL).exit_code == 0
    orphans = [run / ".checkpoint.pt.a1b2.tmp", run / ".results.json.c3d4.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a write")
    assert invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL).exit_code == 0
    assert not any(o.exists() for o in orphans)


# ---- files a user hands the tool: suite files, suite directories ---------------------------------

SUITE_HEAD = '[suite]\nname = "t"\nseeds = [0]\n'
SUITE_BODY = ('[defaults]\nenv = "synthetic-groups"\nepochs = 1\nenv_options = { num_tasks = 3, train_per_task = 60, test_per_task = 30 }\n'
              '[runs.a]\nagent = "fixed-random"\n')  # fmt: skip

BAD_SUITE_CASES = {
    # names that become paths
    "suite name climbs out": (SUITE_HEAD.replace('"t"', '"../escape"') + SUITE_BODY, ["suite.name = '../escape'", "one directory name"]),
    "suite name is absolute": (SUITE_HEAD.replace('"t"', '"/tmp/escape"') + SUITE_BODY, ["suite.name", "one directory name"]),
    "suite name is dot-dot": (SUITE_HEAD.replace('"t"', '".."') + SUITE_BODY, ["suite.name = '..'"]),
    "run name climbs out": (SUITE_HEAD + SUITE_BODY + '[runs."../../x"]\nagent = "fixed-random"\n', ["run name '../../x'", "one directory name"]),
    "run name is dot-dot": (SUITE_HEAD + SUITE_BODY + '[runs.".."]\nagent = "fixed-random"\n', ["run name '..'"]),
    "scale name with a separator": (SUITE_HEAD + SUITE_BODY + '[scales."a/b"]\nepochs = 1\n', ["scale name 'a/b'"]),
    # tables that are not tables
    "suite is a number": ("suite = 1\n" + SUITE_BODY, ["suite must be a table, not int 1"]),
    "runs is a number": ("runs = 3\n" + SUITE_HEAD, ["runs must be a table, not int 3", "[runs.NAME]"]),
    "a run is a number": (SUITE_HEAD + SUITE_BODY + "[runs]\nb = 3\n", ["runs.b must be a table, not int 3"]),
    "defaults is a string": ('defaults = "x"\n' + SUITE_HEAD + '[runs.a]\nagent = "fixed-random"\n', ["defaults must be a table, not str 'x'"]),
    "scales is a list": ("scales = [1]\n" + SUITE_HEAD + SUITE_BODY, ["scales must be a table, not list"]),
    "a scale is a number": (SUITE_HEAD + SUITE_BODY + "[scales]\nquick = 1\n", ["scales.quick must be a table, not int 1"]),
    # seeds and sizes
    "seed beyond run --seed": (SUITE_HEAD.replace("[0]", "[2147483648]") + SUITE_BODY, ["suite.seeds holds 2147483648", "2147483647"]),
    "true as a seed": (SUITE_HEAD.replace("[0]", "[true]") + SUITE_BODY, ["suite.seeds holds true"]),
    "repeated seed": (SUITE_HEAD.replace("[0]", "[1, 1]") + SUITE_BODY, ["suite.seeds repeats a seed"]),
    "scale seed negative": (SUITE_HEAD + SUITE_BODY + "[scales.quick]\nseeds = [-1]\n", ["scales.quick.seeds holds -1"]),
    "20,000 seeds": (SUITE_HEAD.replace("[0]", "[" + ", ".join(map(str, range(20_000))) + "]") + SUITE_BODY, ["at most 10000 trials"]),
    # keys a suite decides, or that do not exist
    "logdir in a run": (SUITE_HEAD + SUITE_BODY.replace('agent = "fixed-random"', 'agent = "fixed-random"\nlogdir = "/tmp/x"'),
                        ["runs.a.logdir", "SUITE_DIR/<trial>"]),  # fmt: skip
    "seed in defaults": (SUITE_HEAD + SUITE_BODY.replace("epochs = 1", "epochs = 1\nseed = 3"), ["defaults.seed", "suite.seeds"]),
    "logdir in a scale": (SUITE_HEAD + SUITE_BODY + '[scales.quick]\nlogdir = "/"\n', ["scales.quick.logdir"]),
    "unknown suite key": (SUITE_HEAD + "seed = [1]\n" + SUITE_BODY, ["unknown key(s) suite.seed"]),
    "baseline is a list": (SUITE_HEAD + "baseline = [1]\n" + SUITE_BODY, ["suite.baseline [1] is not a run"]),
    # values of the wrong type, named with their key
    "string learning rate": (SUITE_HEAD + SUITE_BODY.replace("epochs = 1", 'epochs = 1\nlr = "fast"'), ["runs.a", "lr = 'fast': must be a number"]),
    "true as epochs": (SUITE_HEAD + SUITE_BODY.replace("epochs = 1", "epochs = true"), ["epochs = true: must be an integer"]),
    "milestones not a list": (SUITE_HEAD + SUITE_BODY.replace("epochs = 1", "epochs = 1\nlr_milestones = 5"), ["lr_milestones = 5: must be a list"]),
    "env option of the wrong type": (SUITE_HEAD + SUITE_BODY.replace("num_tasks = 3", 'num_tasks = "3"'), ["env_options.num_tasks = '3'", "must be an integer"]),
    "agent option of the wrong type": (SUITE_HEAD + SUITE_BODY + '[runs.h]\nagent = "hard-concrete"\nagent_options = { log_alpha_init = "x" }\n',
                                       ["runs.h", "agent_options.log_alpha_init = 'x': must be a number"]),  # fmt: skip
    "env option out of range": (SUITE_HEAD + SUITE_BODY.replace("num_tasks = 3", "num_tasks = 0"), ["runs.a: env_options:", "num_tasks"]),
    "env option too large for memory": (SUITE_HEAD + SUITE_BODY.replace("train_per_task = 60", "train_per_task = 99999999999"), ["env_options:", "of memory"]),
    "scale value of the wrong type": (SUITE_HEAD + SUITE_BODY + '[scales.quick]\nepochs = "one"\n', ["(scale quick)", "epochs = 'one'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITE_CASES))
def test_bad_suite_files_give_one_line_errors_and_write_nothing(tmp_path, monkeypatch, case):
    text, fragments = BAD_SUITE_CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(text)
    start = time.monotonic()
    for command in (["suite", "run", "s.toml"], ["suite", "run", "s.toml", "--out", "out"], ["suite", "table", "s.toml"]):
        assert_clean_error(invoke(*command), "s.toml", *fragments)
    assert time.monotonic() - start < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no suite directory, nothing outside it


def _suite_dir(tmp_path, write_results, manifest):
    directory = tmp_path / "suite-dir"
    directory.mkdir()
    (directory / "suite.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return directory


GOOD_MANIFEST = {"suite": {"name": "t", "baseline": None, "metric": "last"},
                 "trials": [{"run": "a", "seed": 0, "name": "a-s0-x", "config": {}}, {"run": "a", "seed": 1, "name": "a-s1-x", "config": {}}]}  # fmt: skip

BAD_MANIFEST_CASES = {
    "a list": ("[]", ["suite.json", "expected a JSON object, got list"]),
    "a number": ("3", ["suite.json", "expected a JSON object, got int"]),
    "truncated": (json.dumps(GOOD_MANIFEST)[:40], ["suite.json", "not valid JSON"]),
    "no suite": ({"trials": []}, ["suite.json", "field suite is missing"]),
    "trials not a list": ({**GOOD_MANIFEST, "trials": {}}, ["field trials is missing or has the wrong type"]),
    "trial name climbs out": ({**GOOD_MANIFEST, "trials": [{"run": "a", "seed": 0, "name": "../x", "config": {}}]}, ["trials[0].name '../x'"]),
    "seed true": ({**GOOD_MANIFEST, "trials": [{"run": "a", "seed": True, "name": "a", "config": {}}]}, ["trials[0].seed"]),
    "baseline a number": ({**GOOD_MANIFEST, "suite": {"name": "t", "baseline": 3}}, ["suite.baseline"]),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFEST_CASES))
@pytest.mark.parametrize("command", ["suite table", "report"])
def test_damaged_suite_directories_give_one_line_errors(tmp_path, write_results, case, command):
    manifest, fragments = BAD_MANIFEST_CASES[case]
    directory = _suite_dir(tmp_path, write_results, manifest)
    write_results(directory / "a-s0-x")
    assert_clean_error(invoke(*command.split(), directory), *fragments)
    assert sorted(p.name for p in directory.iterdir()) == ["a-s0-x", "suite.json"]  # no figures/, no table


@pytest.mark.parametrize(("name", "fragments"), [("notes.txt", ("is a file", "run directory", "suite file (.toml)")),
                                                  ("suite.toml", ("suite.toml: not valid TOML",))])  # fmt: skip
def test_report_on_a_file_says_what_it_wants(tmp_path, name, fragments):
    (tmp_path / name).write_text("x")
    assert_clean_error(invoke("report", tmp_path / name), *fragments)
    assert not (tmp_path / "figures").exists()


def test_a_damaged_trial_result_is_named_not_silently_unfinished(tmp_path, write_results):
    directory = _suite_dir(tmp_path, write_results, GOOD_MANIFEST)
    write_results(directory / "a-s0-x", 0.8)
    (directory / "a-s1-x").mkdir()
    (directory / "a-s1-x" / "results.json").write_text('{"schema_version": 1, "stat')
    result = CliRunner().invoke(main, ["suite", "table", str(directory)])
    assert result.exit_code == 0, result.output
    assert "a-s1-x/results.json" in result.stderr and "not valid JSON" in result.stderr and "suite run" in result.stderr
    assert "| a (1 unfinished) | 1 | 0.8000 (n = 1) |" in result.stdout  # no empty ± cell


def test_a_suite_option_refused_when_its_trial_is_built_says_to_fix_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE_HEAD + SUITE_BODY.replace("epochs = 1", "epochs = 1\nblocks = 1000000000"))  # refused by the network's memory check
    result = invoke("suite", "run", path, "--out", tmp_path / "out")
    assert_clean_error(result, "trial a-s0-", f"fix the option in {path}")
    assert "run the command again" not in result.output


SWEEP_TEXT = ('[sweep]\nname = "s"\ntrials = 3\n[base]\nenv = "synthetic-groups"\nepochs = 1\n'
              'env_options = { num_tasks = 3, train_per_task = 60, test_per_task = 30 }\n[space]\nlr = { low = 1e-4, high = 1e-2, log = true }\n')  # fmt: skip

BAD_SWEEP_CASES = {
    "top_k left at its default": (SWEEP_TEXT, ["top_k (default 10)", "trials (3)", "set top_k = 3"]),
    "top_k true": (SWEEP_TEXT.replace("trials = 3", "trials = 3\ntop_k = true"), ["top_k = True"]),
    "sweep name climbs out": (SWEEP_TEXT.replace('"s"', '"../s"') + "", ["sweep.name = '../s'", "one directory name"]),
    "sweep is a number": ("sweep = 1\n" + SWEEP_TEXT[SWEEP_TEXT.index("[base]"):], ["sweep must be a table"]),
    "unknown table in a sweep": ('base = "x"\n' + SWEEP_TEXT.replace("[base]\n", "[other]\n"), ["unknown table(s) other"]),
    "seed beyond run --seed": (SWEEP_TEXT.replace("trials = 3", "trials = 3\ntop_k = 1\nseed = 2147483648"), ["sweep.seed = 2147483648"]),
    "logdir in base": (SWEEP_TEXT.replace("trials = 3", "trials = 3\ntop_k = 1").replace("epochs = 1", 'epochs = 1\nlogdir = "/"'), ["base.logdir"]),
    "a string epochs in base": (SWEEP_TEXT.replace("trials = 3", "trials = 3\ntop_k = 1").replace("epochs = 1", 'epochs = "1"'), ["epochs = '1': must be an integer"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SWEEP_CASES))
def test_bad_sweep_files_give_one_line_errors_and_write_nothing(tmp_path, monkeypatch, case):
    text, fragments = BAD_SWEEP_CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.toml").write_text(text)
    assert_clean_error(invoke("sweep", "w.toml"), "w.toml", *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.toml"]


OPTION_CASES = {
    "milestones with an empty item": (["--lr-milestones", "5,,6"], ["--lr-milestones", "'5,,6' has an empty item"]),
    "milestones with a trailing comma": (["--lr-milestones", "5,"], ["has an empty item"]),
    "routed with an empty item": (["--routed", "fc1,,fc2"], ["--routed 'fc1,,fc2' has an empty item"]),
    "routed with a trailing comma": (["--routed", "fc1,"], ["has an empty item"]),
    "routed layer twice": (["--routed", "fc1,fc1"], ["names fc1 twice"]),
    "routed layer twice through a group": (["--routed", "fc,fc2"], ["names fc2 twice"]),
    "plugin as a file path": (["--plugin", "path/x.py"], ["--plugin", "is a file path", "--plugin x", "PYTHONPATH"]),
    "plugin as a file name": (["--plugin", "my_routers.py"], ["is a file path", "--plugin my_routers"]),
    "one training row, no validation row": (["-e", "train_per_task=1"], ["holds out no validation rows", "--val-fraction 0"]),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_option_items_give_one_line_errors(tmp_path, case):
    args, fragments = OPTION_CASES[case]
    env = ["-e", "num_tasks=3", "-e", "test_per_task=30"] + ([] if "-e" in args else ["-e", "train_per_task=60"])
    assert_clean_error(invoke("run", "--epochs", "1", "--quiet", "--logdir", tmp_path / "run", *env, *args), *fragments)
    assert not (tmp_path / "run").exists()


def test_many_fc_layers_are_refused_at_once(tmp_path):
    start = time.monotonic()
    assert_clean_error(invoke("run", "--fc-layers", "100000", "--logdir", tmp_path / "run", *SMALL), "--fc-layers", "1000")
    path = tmp_path / "s.toml"
    path.write_text(SUITE_HEAD + SUITE_BODY.replace("epochs = 1", "epochs = 1\nfc_layers = 100000"))
    assert_clean_error(invoke("suite", "run", path, "--out", tmp_path / "out"), "--fc-layers must be from 0 to 1000")
    assert time.monotonic() - start < 20


# ---- first use: what a new user reads -------------------------------------------------------------

def test_a_max_batches_run_is_labelled_a_smoke_test_and_piped_lines_stay_whole(tmp_path):
    logdir = tmp_path / ("a-long-run-directory-name-" * 3)
    result = invoke("run", "--epochs", "1", "--max-batches", "1", "--logdir", logdir, *SMALL)
    assert result.exit_code == 0, result.output
    assert "complete, smoke test: --max-batches 1" in result.output
    full = invoke("run", "--epochs", "1", "--logdir", tmp_path / "full", *SMALL)
    assert "smoke test" not in full.output and ", complete)" in full.output
    lines = result.output.splitlines()
    assert any(str(logdir) in line and len(line) > 80 for line in lines), result.output  # not wrapped at 80 columns
    assert any(line.startswith("best validation epoch 1:") and "s/epoch" in line for line in lines), result.output


def test_a_slash_in_a_task_name_adds_no_tensorboard_level(tmp_path):
    from routing_rl.training import RunConfig, Trainer
    from routing_rl.training.setup.composition import compose

    class Recorder:
        tags: list[str] = []

        def scalars(self, values, step):
            self.tags.extend(values)

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    config = RunConfig(epochs=1, logdir=str(tmp_path / "run"), threads=1, env_options={"num_tasks": 3, "train_per_task": 60, "test_per_task": 30})
    trainer = Trainer(parts := compose(config), parts.load_data())
    trainer.data.task_names[0] = "t-shirt/top"
    trainer.prepare_run_dir(resume=False)
    trainer.fit(Recorder())
    per_task = [t for t in Recorder.tags if "t-shirt" in t]
    assert per_task and all(t.count("/") == 1 and t.endswith("task00_t-shirt-top") for t in per_task)


def test_long_task_names_fit_inside_the_similarity_heatmap():
    from routing_rl.plots.figures import plt, similarity_figure

    names = ["a very long task name that goes on and on " + str(k) for k in range(3)]
    policy = [[[0.5, 0.5], [0.9, 0.1], [0.1, 0.9]]]
    fig = similarity_figure(policy, names, ["fc1"], "long names")
    fig.canvas.draw()
    box = fig.bbox
    for ax in fig.axes[:1]:
        for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            extent = label.get_window_extent()
            assert extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1 and extent.x1 <= box.x1 + 1, label.get_text()
    plt.close(fig)

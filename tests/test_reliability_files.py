"""Hostile files: links, FIFOs and devices where the project's files should be, and kept results
altered after they were kept. Each case ends in a one-line error (or a correct run) in bounded
time, with nothing written outside its folder and no file it points at changed.

No case reads /dev/zero or a FIFO without a bound: in-process cases run under an alarm, and the
/dev/zero cases run in a subprocess with a memory limit and a timeout, so a regression fails the
test instead of hanging or exhausting the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites.kept import KEPT_MANIFEST
from tests.suite_texts import tiny_suite

SMALL = ["-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30", "--quiet", "--threads", "1"]
SECONDS = 60
"""Each in-process case must end within this; a reader that blocks on a FIFO fails here instead of hanging."""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *fragments):
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, result.output


@pytest.fixture(autouse=True)
def bounded_time():
    def expired(signum, frame):
        raise TimeoutError(f"the case ran past {SECONDS} s (a reader blocked?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run, copied by each case that changes it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    result = invoke("run", "--epochs", "1", "--logdir", run, *SMALL)
    assert result.exit_code == 0, result.output
    return run


# ---- locks and records that follow no link -------------------------------------------------------
@pytest.mark.parametrize("how", ["new run", "resume", "finished run", "overwrite"])
def test_a_symlinked_run_lock_is_refused_and_its_target_survives(tmp_path, finished_run, how):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    if how == "new run":
        run.mkdir()
    else:
        shutil.copytree(finished_run, run)
        (run / "run.lock").unlink()
    (run / "run.lock").symlink_to(victim)
    flags = {"new run": [], "resume": ["--resume"], "finished run": [], "overwrite": ["--overwrite"]}[how]
    result = invoke("run", "--epochs", "1", "--logdir", run, *flags, *SMALL)
    assert_clean_error(result, "run.lock is a symbolic link", "remove the link")
    assert victim.read_text() == "precious\n"


def test_a_hard_linked_run_lock_is_refused_and_its_target_survives(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / "run.lock")
    assert_clean_error(invoke("run", "--epochs", "1", "--logdir", run, *SMALL), "run.lock is a file with 2 hard links")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["results.json", "checkpoint.pt", "tensorboard"])
def test_a_link_where_a_run_writes_is_refused_before_training(tmp_path, finished_run, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    target = run / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(outside / "keep.txt" if name != "tensorboard" else outside)
    result = invoke("run", "--epochs", "1", "--logdir", run, "--overwrite", *SMALL)
    assert_clean_error(result, f"{name} is a symbolic link", "remove the link")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine\n"


# ---- files checked before they are read ----------------------------------------------------------
def reader_commands(run: Path, suite_file: Path, suite_dir: Path, out: Path) -> dict[str, list[str]]:
    return {
        "show": ["show", run],
        "analyze": ["analyze", run],
        "compare": ["compare", "--a", run, "--b", run],
        "report": ["report", run, "--out", out],
        "suite run --dry-run": ["suite", "run", suite_file, "--out", suite_dir, "--dry-run"],
        "suite table": ["suite", "table", suite_file, "--out", suite_dir],
    }


READERS = ["show", "analyze", "compare", "report", "suite run --dry-run", "suite table"]
TINY_SUITE = tiny_suite(epochs=1)


@pytest.fixture(scope="module")
def finished_suite(tmp_path_factory):
    """A finished two-run, two-seed suite (its file and directory), copied by the cases that change it."""
    root = tmp_path_factory.mktemp("suite")
    (root / "tiny.toml").write_text(TINY_SUITE)
    result = invoke("suite", "run", root / "tiny.toml", "--out", root / "runs")
    assert result.exit_code == 0, result.output
    return root


def planted(tmp_path, finished_suite, plant) -> tuple[Path, Path, Path]:
    """The suite copied into ``tmp_path`` with ``plant(path)`` in place of its first trial's results.json;
    returns that trial's folder, the suite file and the suite directory."""
    shutil.copytree(finished_suite, tmp_path / "s")
    suite_dir = tmp_path / "s" / "runs"
    run = sorted(p for p in suite_dir.iterdir() if p.is_dir())[0]
    (run / "results.json").unlink()
    plant(run / "results.json")
    return run, tmp_path / "s" / "tiny.toml", suite_dir


@pytest.mark.parametrize("command", READERS)
def test_a_fifo_results_json_is_refused_at_once(tmp_path, finished_suite, command):
    run, suite_file, suite_dir = planted(tmp_path, finished_suite, os.mkfifo)
    result = invoke(*reader_commands(run, suite_file, suite_dir, tmp_path / "fig")[command])
    if command.startswith("suite"):  # the trial counts as unfinished, with the reason
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
        if command == "suite table":
            assert "is a FIFO (named pipe), not a regular file" in " ".join(result.output.split())
        else:  # its checkpoint is still there: the trial resumes, and its results.json is replaced
            assert f"partial  {run.name}" in result.output
    else:
        assert_clean_error(result, "is a FIFO (named pipe), not a regular file")


def run_limited(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``routing-rl ARGS`` in a subprocess with bounded address space and a timeout: a reader that
    read /dev/zero without a bound would fail here (6 GiB: torch reserves address space), not take the machine down."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    return subprocess.run([sys.executable, "-m", "routing_rl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)  # fmt: skip


def test_a_results_json_linked_to_dev_zero_is_refused_before_it_is_read(tmp_path, finished_suite):
    run, suite_file, suite_dir = planted(tmp_path, finished_suite, lambda p: p.symlink_to("/dev/zero"))
    shown = run_limited(["show", run], tmp_path)
    assert shown.returncode != 0 and "Traceback" not in shown.stderr
    assert "is a character device, not a regular file" in " ".join(shown.stderr.split()), shown.stderr
    table = run_limited(["suite", "table", suite_file, "--out", suite_dir], tmp_path)
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr
    assert "(1 unfinished)" in table.stdout


def test_an_oversized_results_json_is_refused_with_the_limit(tmp_path, finished_run, monkeypatch):
    import routing_rl.training.records.results as results

    monkeypatch.setattr(results, "RESULTS_LIMIT", 1000)
    result = invoke("show", finished_run)
    assert_clean_error(result, "more than the 1000 B a results.json may be")


def test_a_fifo_checkpoint_is_refused_on_resume(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoint.pt").unlink()
    os.mkfifo(run / "checkpoint.pt")
    result = invoke("run", "--epochs", "2", "--logdir", run, "--resume", *SMALL)
    assert_clean_error(result, "cannot load checkpoint", "is a FIFO (named pipe)", "--overwrite")


@pytest.mark.parametrize("command", [["suite", "run", "--dry-run"], ["suite", "table"], ["sweep"]])
def test_a_fifo_settings_file_is_refused_at_once(tmp_path, command):
    fifo = tmp_path / "tiny.toml"
    os.mkfifo(fifo)
    result = invoke(*command[:2], fifo, *command[2:])
    assert_clean_error(result, "is a FIFO (named pipe), not a regular file")


# ---- kept results with integrity -----------------------------------------------------------------
@pytest.fixture
def kept_suite(tmp_path, finished_suite):
    """The finished suite with a kept folder, kept once; the suite directory then removed (a fresh clone)."""
    shutil.copytree(finished_suite, tmp_path / "s")
    suite_file = tmp_path / "s" / "tiny.toml"
    suite_file.write_text(tiny_suite(kept="kept"))
    kept = invoke("suite", "keep", suite_file, "--out", tmp_path / "s" / "runs")
    assert kept.exit_code == 0 and "4 trials copied" in kept.output and "(4 of 4 kept)" in kept.output, kept.output
    shutil.rmtree(tmp_path / "s" / "runs")
    return suite_file, tmp_path / "s" / "kept"


def trial_folders(kept: Path) -> list[Path]:
    return sorted(p for p in kept.iterdir() if p.is_dir())


def edit_metric(path: Path) -> None:
    data = json.loads(path.read_text())
    data["final"]["last"]["test_mean"] = 0.999
    path.write_text(json.dumps(data, indent=2))


def swap(path: Path) -> None:
    other = next(p for p in trial_folders(path.parents[1]) if p != path.parent)
    shutil.copy(other / "results.json", path)


KEPT_CASES = {
    "edited metric": (edit_metric, "is not the file that was kept (its SHA-256 differs"),
    "swapped file": (swap, "holds the results of other options (config hash"),
    "results.json a link": (lambda p: (p.unlink(), p.symlink_to("/etc/hostname")), "is a symbolic link"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "not valid JSON"),
    "trial folder a link": (lambda p: (shutil.move(p.parent, p.parents[1].parent / "moved"), p.parent.symlink_to(p.parents[1].parent / "moved")),
                            "is a symbolic link; a trial's folder must be a plain folder"),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(KEPT_CASES))
@pytest.mark.parametrize("command", [["suite", "table"], ["suite", "run", "--dry-run"], ["report"]])
def test_an_altered_kept_trial_is_named_not_tabulated(kept_suite, tmp_path, case, command):
    suite_file, kept = kept_suite
    alter, fragment = KEPT_CASES[case]
    trial = trial_folders(kept)[0]
    alter(trial / "results.json")
    extra = ["--out", tmp_path / "fig"] if command == ["report"] else []
    result = invoke(*command[:2], suite_file, *command[2:], *extra)
    assert_clean_error(result, f"kept trial {trial.name}", fragment, "--retrain-altered")


def test_a_kept_trial_missing_from_the_manifest_is_refused(kept_suite):
    suite_file, kept = kept_suite
    manifest = json.loads((kept / KEPT_MANIFEST).read_text())
    name = sorted(manifest["trials"])[0]
    del manifest["trials"][name]
    (kept / KEPT_MANIFEST).write_text(json.dumps(manifest))
    assert_clean_error(invoke("suite", "table", suite_file), f"kept trial {name}", f"not recorded in {kept / KEPT_MANIFEST}")


def test_retrain_altered_trains_the_altered_trial_again_and_keep_records_it(kept_suite, tmp_path):
    suite_file, kept = kept_suite
    trial = trial_folders(kept)[0]
    edit_metric(trial / "results.json")
    out = tmp_path / "s" / "runs"
    planned = invoke("suite", "run", suite_file, "--out", out, "--dry-run", "--retrain-altered")
    assert planned.exit_code == 0, planned.output
    assert f"new      {trial.name}" in planned.output and "3 kept" in planned.output
    trained = invoke("suite", "run", suite_file, "--out", out, "--retrain-altered")
    assert trained.exit_code == 0 and "1 trials trained" in trained.output, trained.output
    kept_again = invoke("suite", "keep", suite_file, "--out", out)
    assert kept_again.exit_code == 0 and "1 trials copied" in kept_again.output and "(4 of 4 kept)" in kept_again.output
    assert json.loads((trial / "results.json").read_text())["final"]["last"]["test_mean"] != 0.999
    shutil.rmtree(out)
    assert invoke("suite", "table", suite_file).exit_code == 0


def test_keep_reports_a_damaged_trial_and_still_keeps_the_others(tmp_path, finished_suite):
    shutil.copytree(finished_suite, tmp_path / "s")
    suite_file, runs = tmp_path / "s" / "tiny.toml", tmp_path / "s" / "runs"
    suite_file.write_text(tiny_suite(kept="kept"))
    trials = sorted(p for p in runs.iterdir() if p.is_dir())
    shutil.copy(trials[1] / "results.json", trials[0] / "results.json")  # another trial's results: finished, not its own
    result = invoke("suite", "keep", suite_file, "--out", runs)
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "3 trials copied" in result.output
    assert f"not kept: trial {trials[0].name}" in " ".join(result.output.split()) and "config hash" in result.output
    assert sorted(p.name for p in (tmp_path / "s" / "kept").iterdir()) == sorted([KEPT_MANIFEST, *(t.name for t in trials[1:])])


def test_keep_never_writes_through_a_linked_trial_folder(tmp_path, finished_suite):
    shutil.copytree(finished_suite, tmp_path / "s")
    suite_file, runs = tmp_path / "s" / "tiny.toml", tmp_path / "s" / "runs"
    suite_file.write_text(tiny_suite(kept="kept"))
    outside = tmp_path / "outside"
    outside.mkdir()
    name = sorted(p.name for p in runs.iterdir() if p.is_dir())[0]
    (tmp_path / "s" / "kept").mkdir()
    (tmp_path / "s" / "kept" / name).symlink_to(outside)
    result = invoke("suite", "keep", suite_file, "--out", runs)
    assert "Traceback" not in result.output and result.exit_code == 1
    assert "is a symbolic link" in " ".join(result.output.split())
    assert list(outside.iterdir()) == []


def test_a_kept_folder_from_before_manifests_is_recorded_by_keep(kept_suite):
    suite_file, kept = kept_suite
    (kept / KEPT_MANIFEST).unlink()
    refused = invoke("suite", "table", suite_file)
    assert_clean_error(refused, f"has no {KEPT_MANIFEST}", "suite keep")
    adopted = invoke("suite", "keep", suite_file)
    assert adopted.exit_code == 0 and "recorded 4 trials kept before" in adopted.output, adopted.output
    assert invoke("suite", "table", suite_file).exit_code == 0


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_a_non_finite_score_in_a_finished_trial_is_named_and_not_tabulated(tmp_path, finished_suite, value):
    shutil.copytree(finished_suite, tmp_path / "s")
    runs = tmp_path / "s" / "runs"
    trial = sorted(p for p in runs.iterdir() if p.is_dir())[0]
    data = json.loads((trial / "results.json").read_text())
    data["final"]["last"]["test_mean"] = float(value.replace("Infinity", "inf"))
    (trial / "results.json").write_text(json.dumps(data))
    result = invoke("suite", "table", tmp_path / "s" / "tiny.toml", "--out", runs)
    assert result.exit_code == 0 and result.exception is None, result.output
    assert f"final.last.test_mean is {float(value.replace('Infinity', 'inf'))}" in result.output and "(1 unfinished)" in result.output
    drawn = invoke("report", runs, "--out", tmp_path / "fig")
    assert drawn.exit_code == 0 and drawn.exception is None, drawn.output


def test_dry_run_and_table_agree_on_an_invalid_complete_trial(tmp_path, finished_suite):
    shutil.copytree(finished_suite, tmp_path / "s")
    runs = tmp_path / "s" / "runs"
    trial = sorted(p for p in runs.iterdir() if p.is_dir())[0]
    data = json.loads((trial / "results.json").read_text())
    del data["final"]  # status still "complete"
    (trial / "results.json").write_text(json.dumps(data))
    planned = invoke("suite", "run", tmp_path / "s" / "tiny.toml", "--out", runs, "--dry-run")
    assert planned.exit_code == 0 and f"partial  {trial.name}" in planned.output, planned.output


# ---- suite init checks, then writes --------------------------------------------------------------
INIT = ["suite", "init", "--env", "synthetic-groups", "-e", "num_tasks=3", "-e", "train_per_task=60", "-e", "test_per_task=30"]
INIT_CASES = {
    "name leaves the folder": (["--force", "--name", "../x"], "must be one directory name"),
    "empty name": (["--force", "--name", ""], "must be a non-empty string"),
    "seeds beyond the trial bound": (["--force", "--seeds", "1099511627776"], "--seeds"),
    "unknown env option": (["--force", "-e", "bogus=1"], "no option 'bogus'"),
}


@pytest.mark.parametrize("case", sorted(INIT_CASES))
def test_a_refused_suite_init_leaves_the_existing_file_as_it_was(tmp_path, case):
    args, fragment = INIT_CASES[case]
    good = tmp_path / "good.toml"
    good.write_text("# a good suite\n")
    assert_clean_error(invoke(*INIT, "--out", good, *args), fragment)
    assert good.read_text() == "# a good suite\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.toml"]


def test_suite_init_never_writes_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "suite.toml").symlink_to(victim)
    assert_clean_error(invoke(*INIT, "--out", tmp_path / "suite.toml", "--force"), "is a symbolic link")
    assert victim.read_text() == "precious\n"


def test_suite_init_that_would_not_parse_leaves_no_file(tmp_path, monkeypatch):
    import routing_rl.cli.suite as cli_suite
    from routing_rl.suites import SuiteError

    def refuse(path):
        raise SuiteError(f"{path}: refused for the test")

    monkeypatch.setattr(cli_suite, "load_suite_file", refuse)
    assert_clean_error(invoke(*INIT, "--out", tmp_path / "new.toml"), "refused for the test")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_suite_manifest_is_refused_at_once(tmp_path, finished_suite):
    """A suite directory is read through its suite.json (a suite file's commands rewrite it instead)."""
    shutil.copytree(finished_suite, tmp_path / "s")
    manifest = tmp_path / "s" / "runs" / "suite.json"
    manifest.unlink()
    os.mkfifo(manifest)
    result = invoke("report", manifest.parent, "--out", tmp_path / "fig")
    assert_clean_error(result, "suite.json: is a FIFO (named pipe), not a regular file")


@pytest.mark.parametrize(("env", "folder", "names"), [
    ("cifar100-superclass", "cifar-100-python", ["train", "test", "meta"]),
    ("fmnist-mtl", "", ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
])  # fmt: skip
def test_data_files_that_are_fifos_are_named_not_opened(tmp_path, env, folder, names):
    data = tmp_path / "data" / folder
    data.mkdir(parents=True)
    for name in names:
        os.mkfifo(data / name)
    result = invoke("run", "--env", env, "--data-dir", tmp_path / "data", "--logdir", tmp_path / "run", "--epochs", "1", "--quiet")
    assert_clean_error(result, f"{data / names[0]} is a FIFO (named pipe), not a regular file")
    assert not (tmp_path / "run").exists()

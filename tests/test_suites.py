"""Suites: trial identity, skip and resume, the local and Ray backends, the table's t-tests, figures."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from routing_rl.cli import main
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.runner import epochs_done, plan, run_local, trial_status
from routing_rl.suites.spec import IDENTITY_EXCLUDES, Trial
from routing_rl.suites.table import build_rows
from routing_rl.training.setup.config import RunConfig
from tests.suite_texts import tiny_suite

TINY = tiny_suite(epochs=2) + "[scales.quick]\nepochs = 1\n"


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_trials_are_identified_by_their_configuration(suite_file, tmp_path):
    suite = load_suite_file(suite_file)
    trials = suite.trials()
    assert [(t.run, t.seed) for t in trials] == [("random", 0), ("shared", 0), ("random", 1), ("shared", 1)]  # seed-major
    assert len({t.key for t in trials}) == 4
    assert [t.key for t in suite.trials()] == [t.key for t in trials]  # stable
    quick = suite.trials("quick")
    assert quick[0].config.epochs == 1 and quick[0].key != trials[0].key
    changed = tmp_path / "changed.toml"
    changed.write_text(TINY.replace("batch_size = 64", "batch_size = 32"))
    assert load_suite_file(changed).trials()[0].key != trials[0].key
    threads = tmp_path / "threads.toml"
    threads.write_text(TINY.replace("threads = 1", "threads = 2"))
    assert load_suite_file(threads).trials()[0].key == trials[0].key  # threads do not change the numbers



def test_an_option_added_later_at_its_default_keeps_the_trials(suite_file):
    """A release that adds an option must not orphan the finished trials of a suite that spans releases."""

    @dataclasses.dataclass
    class LaterConfig(RunConfig):
        new_option: int = 0

    trial = load_suite_file(suite_file).trials()[0]
    later = Trial(trial.run, trial.seed, LaterConfig(**trial.config.to_dict()))
    assert later.key == trial.key
    changed = Trial(trial.run, trial.seed, LaterConfig(**trial.config.to_dict(), new_option=1))
    assert changed.key != trial.key


def test_a_suite_naming_an_options_old_default_keeps_its_trials(suite_file):
    """channels_last became the default: a suite that names the old layout (as the published Table 2
    suite does) finds the trials it ran before, whose keys did not mention the option; a suite that
    takes the new default gets new trials, since its numbers change."""
    import hashlib

    trial = load_suite_file(suite_file).trials()[0]
    old = dataclasses.replace(trial, config=dataclasses.replace(trial.config, channels_last=False))
    new = dataclasses.replace(trial, config=dataclasses.replace(trial.config, channels_last=True))
    before = {k: v for k, v in old.config.to_dict().items() if k not in IDENTITY_EXCLUDES and k != "channels_last"}
    before = {k: v for k, v in before.items() if v != RunConfig().to_dict()[k]}
    previous_key = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:10]
    assert old.key == previous_key and new.key != previous_key


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('baseline = "shared"', 'baseline = "nope"'), "suite.baseline 'nope' is not a run"),
        (lambda t: t.replace("batch_size = 64", "batch_sise = 64"), "unknown option(s) batch_sise"),
        (lambda t: t.replace('agent = "fixed-random"', 'agent = "nope"'), "unknown agent 'nope'"),
        (lambda t: t.replace("num_tasks = 3", "num_taks = 3"), "env_options: synthetic-groups has no option 'num_taks'"),
        (lambda t: t.replace("[suite]", "[suite"), "not valid TOML"),
        (lambda t: t.replace("epochs = 2", "epochs = 0"), "--epochs must be from 1 to 100000"),
    ],
)
def test_bad_suite_files_name_file_and_key(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(edit(TINY))
    with pytest.raises(SuiteError, match="bad.toml"):
        load_suite_file(path)
    result = CliRunner().invoke(main, ["suite", "run", str(path)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_finished_trials_are_skipped_and_the_table_is_written(suite_file, tmp_path):
    out = tmp_path / "suite"
    first = CliRunner().invoke(main, ["suite", "run", str(suite_file), "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "4 trials trained" in first.output
    again = CliRunner().invoke(main, ["suite", "run", str(suite_file), "--out", str(out)])
    assert "4 complete" in again.output and "0 trials trained" in again.output
    table = CliRunner().invoke(main, ["suite", "table", str(out)])
    assert table.exit_code == 0, table.output
    assert "| random | 2 |" in table.output and "| shared | 2 |" in table.output and "baseline" in table.output
    assert (out / "table.md").exists() and (out / "table.csv").read_text().startswith("method,n,mean")
    same = CliRunner().invoke(main, ["suite", "table", str(suite_file), "--out", str(out)])
    assert same.output == table.output


def test_parallel_workers_give_the_numbers_of_one_worker(suite_file, tmp_path):
    suite = load_suite_file(suite_file)
    summaries = {}
    for workers in (1, 2):
        directory = tmp_path / f"w{workers}"
        todo = [(t, p) for t, p, _ in plan(suite, "quick", directory)]
        run_local(todo, workers, lambda s: None)
        summaries[workers] = {p.name.rsplit("-", 1)[0]: json.loads((p / "results.json").read_text())["epochs"][-1]["test"]
                              for _, p in todo}  # fmt: skip
    assert summaries[1] == summaries[2]


def test_ray_backend_runs_the_same_trials_on_a_local_instance(suite_file, tmp_path):
    """Two Ray trials: the fixed-random run's seeds as one population, the shared bottom's as another."""
    ray = pytest.importorskip("ray")
    from routing_rl.suites.runner import run_ray

    suite = load_suite_file(suite_file)
    todo = [(t, p) for t, p, _ in plan(suite, "quick", tmp_path / "ray")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        reported = []
        run_ray(todo, None, reported.append, population=2)
    finally:
        ray.shutdown()
    assert sorted((r["status"], r["population"]) for r in reported) == [("complete", 2)] * 4
    local = tmp_path / "local"
    run_local([(t, local / p.name) for t, p in todo], 1, lambda s: None, population=2)
    for _, path in todo:
        a = json.loads((path / "results.json").read_text())["epochs"][-1]["test"]
        b = json.loads((local / path.name / "results.json").read_text())["epochs"][-1]["test"]
        assert a == b


def test_a_killed_suite_resumes_without_redoing_finished_trials(tmp_path):
    path = tmp_path / "slow.toml"
    path.write_text(TINY.replace("epochs = 2", "epochs = 3").replace("train_per_task = 60", "train_per_task = 400"))
    out = tmp_path / "suite"
    args = [sys.executable, "-m", "routing_rl", "suite", "run", str(path), "--out", str(out)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(trial_status(d) == "complete" for d in out.glob("*-s*")):
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finished = {d.name: (d / "results.json").stat().st_mtime_ns for d in out.glob("*-s*") if trial_status(d) == "complete"}
    assert finished, "no trial finished before the kill"
    resumed = CliRunner().invoke(main, ["suite", "run", str(path), "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(finished)} complete" in resumed.output
    for name, mtime in finished.items():
        assert (out / name / "results.json").stat().st_mtime_ns == mtime  # not trained again
    assert all(trial_status(d) == "complete" for d in out.glob("*-s*")) and len(list(out.glob("*-s*"))) == 4


def test_a_partial_trials_progress_is_the_epochs_its_results_record(tmp_path, write_results):
    """`suite run --dry-run` prints "(k of N epochs)" for a partial trial from its results.json; a
    trial without a readable one (killed before its first epoch, a truncated file) shows none."""
    assert epochs_done(write_results(tmp_path / "running", status="running")) == 1
    assert epochs_done(tmp_path / "never-started") is None
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "results.json").write_text('{"status": "runn')
    assert epochs_done(tmp_path / "cut") is None


def test_suite_run_prints_what_is_left_and_times_it_once_epochs_are_recorded(tmp_path):
    """The line `suite run` prints first (its arithmetic: tests/test_suite_progress.py): no time
    before any epoch is recorded, the selected runs' trials only, nothing left at the end."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "runs"

    def last_line(*args: str) -> str:
        result = CliRunner().invoke(main, ["suite", "run", str(path), "--out", str(out), "--dry-run", *args])
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[-1]

    assert last_line("--workers", "2") == "left: 4 trials, 8 epochs; no epoch of this suite is timed yet, so no estimate of the time"
    shared = CliRunner().invoke(main, ["suite", "run", str(path), "--out", str(out), "--runs", "shared"])
    assert shared.exit_code == 0 and shared.output.splitlines()[1] == (
        "left: 2 trials, 4 epochs; no epoch of this suite is timed yet, so no estimate of the time")
    assert last_line().startswith("left: 2 trials, 4 epochs; about ") and last_line().endswith("with 1 worker at the pace recorded so far")
    assert last_line("--runs", "shared") == "left: nothing, every trial is finished"


def test_table_paper_a2_t_test_matches_a_hand_computation(tmp_path, write_results):
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.89, 0.91, 0.90]
    trials = []
    for method, values in (("a", a), ("b", b)):
        for seed, value in enumerate(values):
            name = f"{method}-s{seed}-x"
            write_results(tmp_path / name, value)
            trials.append({"run": method, "seed": seed, "name": name})
    rows, metric, higher = build_rows(trials, tmp_path, baseline="b", test="paper-a2")
    row = rows[0]
    xa, xb = np.array(a), np.array(b)
    pooled = ((len(a) - 1) * xa.var(ddof=1) + (len(b) - 1) * xb.var(ddof=1)) / (len(a) + len(b) - 2)
    t = (xa.mean() - xb.mean()) / math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    assert row.t == pytest.approx(t) and row.df == 6 and row.p == pytest.approx(stats.t.sf(t, 6))
    assert row.mean == pytest.approx(xa.mean()) and row.std == pytest.approx(xa.std(ddof=1)) and row.best == 0.95
    assert rows[1].p is None and metric == "accuracy" and higher


def test_table_time_is_the_train_and_eval_time_not_the_span_of_a_resumed_trial(tmp_path, write_results):
    """A trial stopped after one epoch and resumed five hours later cost its epochs' training and
    evaluation seconds, not the five hours between its start and its end."""
    import json

    path = write_results(tmp_path / "a-s0-x") / "results.json"
    results = json.loads(path.read_text())
    results["provenance"] = {"started": "2026-01-01T00:00:00+00:00", "ended": "2026-01-01T05:02:00+00:00"}
    results["epochs"] = [{**results["epochs"][0], "epoch": e, "train_seconds": 50.0, "eval_seconds": 10.0} for e in (1, 2)]
    path.write_text(json.dumps(results))
    write_results(tmp_path / "a-s1-x")  # one epoch: 1.0 s of training, 0.25 s of evaluation
    rows, _, _ = build_rows([{"run": "a", "seed": s, "name": f"a-s{s}-x"} for s in (0, 1)], tmp_path, baseline=None)
    assert rows[0].epoch_seconds == pytest.approx(121.25)
    from routing_rl.suites.table_text import markdown

    text = markdown(rows, "accuracy", True, None, "last")
    assert "| train+eval time (all seeds) |" in text.splitlines()[0] and text.splitlines()[2].endswith("| 121.2 s |")
    rows[0].epoch_seconds = 3600.0  # a long method puts the whole column in minutes
    assert markdown(rows, "accuracy", True, None, "last").splitlines()[2].endswith("| 60.0 min |")


def _not_blank(path: Path) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    return pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20


def test_report_writes_every_figure_and_none_is_blank(tmp_path):
    suite = tmp_path / "blocks.toml"
    suite.write_text(TINY.replace('[runs.random]\nagent = "fixed-random"', '[runs.random]\nagent = "wpl"\nblocks = 2')
                     .replace('[runs.shared]\nagent = "shared-bottom"', '[runs.shared]\nagent = "wpl"\nblocks = 3')
                     + '\n[runs.four]\nagent = "wpl"\nblocks = 4\n[runs.five]\nagent = "wpl"\nblocks = 5\n')  # fmt: skip
    out = tmp_path / "suite"
    assert CliRunner().invoke(main, ["suite", "run", str(suite), "--out", str(out), "--scale", "quick"]).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    names = {Path(line).name for line in result.output.split()}
    assert {"methods.png", "blocks.png", "random-perplexity.png", "random-similarity.png", "random-seeds.png"} <= names
    assert not names & {"size-train.png", "size-serving.png"}  # size plots are for suites of multi-task models
    for line in result.output.split():
        assert _not_blank(Path(line)), line
    run = next(out.glob("random-s0-*"))
    single = CliRunner().invoke(main, ["report", str(run)])
    assert single.exit_code == 0 and all(_not_blank(Path(p)) for p in single.output.split())


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parent.parent.joinpath("suites").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_suite_parses_at_every_scale(path):
    suite = load_suite_file(path)
    for scale in [None, *suite.scales]:
        trials = suite.trials(scale)
        assert trials and len({t.name for t in trials}) == len(trials)


def test_reference_numbers_of_a_paper_appear_next_to_ours(tmp_path):
    from routing_rl.suites.table import Row
    from routing_rl.suites.table_text import markdown

    path = tmp_path / "ref.toml"
    path.write_text(TINY + '[reference]\nsource = "paper (Table 9)"\nrandom = { mean = 0.9, std = 0.01 }\n')
    suite = load_suite_file(path)
    assert suite.reference == {"random": {"mean": 0.9, "std": 0.01}} and suite.reference_source == "paper (Table 9)"
    rows = [Row("random", 2, 0.8, 0.02, 0.82, 0.8, 0.02, 1.0, 2, 0.2, 60.0, 0, 0.9, 0.01),
            Row("shared", 2, 0.7, 0.02, 0.72, 0.7, 0.02, None, None, None, 60.0, 0)]  # fmt: skip
    text = markdown(rows, "accuracy", True, "shared", "last", suite.reference_source)
    assert "| method | n | paper (Table 9) mean ± std | test accuracy" in text
    assert "| random | 2 | 0.9000 ± 0.0100 | 0.8000 ± 0.0200 |" in text and "| shared | 2 | not in the paper | 0.7000" in text
    for bad, message in (('nope = { mean = 1.0 }', "reference.nope is not a run"), ('random = { std = 1.0 }', "reference.random must be")):
        path.write_text(TINY + f"[reference]\n{bad}\n")
        with pytest.raises(SuiteError, match=message):
            load_suite_file(path)


def test_report_of_a_suite_with_a_network_without_routed_layers(tmp_path):
    """Table 2's shared-bottom row routes no layer (--routed none): no per-seed policy figure, no error."""
    suite = tmp_path / "plain.toml"
    suite.write_text(TINY.replace('[runs.shared]\nagent = "shared-bottom"', '[runs.shared]\nagent = "shared-bottom"\nrouted = "none"')
                     .replace('[runs.random]\nagent = "fixed-random"', '[runs.random]\nagent = "wpl"'))
    out = tmp_path / "suite"
    assert CliRunner().invoke(main, ["suite", "run", str(suite), "--out", str(out), "--scale", "quick"]).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    names = {Path(line).name for line in result.output.split()}
    assert "random-seeds.png" in names and "shared-seeds.png" not in names


def test_report_draws_no_policy_figures_for_fixed_routes(tmp_path, suite_file):
    """Shared bottom and fixed random routes are set before training: their "policy" is the route
    table, so no perplexity, similarity or seeds figure is drawn, and one line says why for both."""
    out = tmp_path / "suite"
    assert CliRunner().invoke(main, ["suite", "run", str(suite_file), "--out", str(out), "--scale", "quick"]).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    names = {Path(line).name for line in result.stdout.split()}
    assert names == {"methods.png"}
    notes = [line for line in result.stderr.splitlines() if "fixed routes" in line]
    assert notes == ["no perplexity, similarity or seeds figures of random, shared: fixed routes, no learned policy: "
                     "its perplexity and task similarity would only redraw the route table"]  # fmt: skip
    single = CliRunner().invoke(main, ["report", str(next(out.glob("shared-s0-*")))])
    assert single.exit_code != 0 and "no figure to draw: a run gets routing figures when its router learns" in single.output and "shared-bottom has fixed routes" in single.stderr

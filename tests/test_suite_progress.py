"""What is left of a suite: epochs, and the time at the pace its own results recorded."""

from __future__ import annotations

import json

import pytest

from routing_rl.suites.progress import Remaining, remaining, set_up_seconds
from routing_rl.suites.spec import Trial
from routing_rl.training import RunConfig


def _trial(tmp_path, run, seed, status, costs=(), write_results=None):
    """A planned trial of four epochs whose results.json records epochs of the given seconds each
    (training plus 10 s of evaluation); a new trial has no directory."""
    trial = Trial(run, seed, RunConfig(epochs=4, seed=seed))
    path = tmp_path / trial.name
    if costs:
        file = write_results(path, status="complete" if status in ("complete", "kept") else "running") / "results.json"
        document = json.loads(file.read_text())
        document["epochs"] = [{**document["epochs"][0], "epoch": e + 1, "train_seconds": c - 10.0, "eval_seconds": 10.0}
                              for e, c in enumerate(costs)]  # fmt: skip
        file.write_text(json.dumps(document))
    return trial, path, status


@pytest.fixture
def planned(tmp_path, write_results):
    """Run a: one finished trial (4 epochs of 60 s), one partial (1 epoch of 90 s), one new; run b: new
    only (no epoch of its own); run c: one kept trial (4 epochs of 30 s), one new."""
    return [
        _trial(tmp_path, "a", 0, "complete", [60, 60, 60, 60], write_results),
        _trial(tmp_path, "a", 1, "partial", [90], write_results),
        _trial(tmp_path, "a", 2, "new"),
        _trial(tmp_path, "b", 0, "new"),
        _trial(tmp_path, "c", 0, "kept", [30, 30, 30, 30], write_results),
        _trial(tmp_path, "c", 1, "new"),
    ]


def test_time_left_is_each_runs_median_pace_and_the_median_runs_pace_for_an_untimed_run(planned):
    # trial paces (medians of their epochs): a0 60, a1 90, c0 30; run a: median(60, 90) = 75, c: 30
    # b has none, so the median run's: median(75, 30) = 52.5; a1 has one timed epoch, too few for its own pace
    # left: a1 3 x 75 = 225, a2 4 x 75 = 300, b0 4 x 52.5 = 210, c1 4 x 30 = 120
    left = remaining(planned, workers=1)
    assert (left.trials, left.epochs) == (4, 15)
    assert left.trial_seconds == pytest.approx(855.0) and left.wall_seconds == pytest.approx(855.0)


def test_wall_time_deals_trials_in_order_to_the_first_free_worker(planned):
    # two workers: a1 (225) and a2 (300) start; b0 (210) follows a1 until 435; c1 (120) follows a2 until 420
    assert remaining(planned, workers=2).wall_seconds == pytest.approx(435.0)
    assert remaining(planned, workers=8).wall_seconds == pytest.approx(300.0)  # the longest trial alone
    two = remaining(planned, workers=2).summary()
    assert two == "left: 4 trials, 15 epochs; about 7 min with 2 workers (14 min of trial time at the pace recorded so far)"


def test_an_unreadable_partial_results_file_leaves_every_epoch_to_train(planned):
    trial, path, _ = planned[1]
    (path / "results.json").write_text('{"status": "runn')  # cut while it was written
    left = remaining(planned, workers=1)
    assert left.epochs == 16  # a1's epoch is not counted as done
    # pace of a: 60 s from a0 alone; a1 and a2 4 x 60 each, b0 4 x median(60, 30) = 45, c1 4 x 30
    assert left.trial_seconds == pytest.approx(240 + 240 + 180 + 120)


def test_no_estimate_without_a_timed_epoch_and_nothing_left_when_all_finished(tmp_path, planned):
    fresh = [_trial(tmp_path, "x", s, "new") for s in (0, 1)]
    left = remaining(fresh, workers=2)
    assert left.trial_seconds is None and left.wall_seconds is None
    assert left.summary() == "left: 2 trials, 8 epochs; no epoch of this suite is timed yet, so no estimate of the time"
    done = [p for p in planned if p[2] in ("complete", "kept")]
    assert remaining(done, workers=2).summary() == "left: nothing, every trial is finished"
    hours = Remaining(trials=1, epochs=4, trial_seconds=7 * 3600.0, wall_seconds=7 * 3600.0, workers=1)
    assert hours.summary() == "left: 1 trial, 4 epochs; about 7.0 h with 1 worker at the pace recorded so far"
    seconds = Remaining(trials=1, epochs=1, trial_seconds=95.4, wall_seconds=95.4, workers=1)
    assert seconds.summary() == "left: 1 trial, 1 epoch; about 95 s with 1 worker at the pace recorded so far"


def _suite(tmp_path, write_results, trials):
    """Planned trials from ``(run, seed, status, epoch costs)``, four epochs each."""
    return [_trial(tmp_path, run, seed, status, costs, write_results) for run, seed, status, costs in trials]


def test_a_warm_up_epoch_and_a_trial_recorded_on_a_busy_machine_do_not_set_the_pace(tmp_path, write_results):
    """The battery that was estimated at 1.8 h and took 26 min: the mean of every epoch let the slow
    ones decide. Here a run's true epoch costs 10 s; one trial's first epoch took 30 s, and one trial
    ran at 50 s an epoch on a busy machine. The mean would say 4 x 25 s; the medians say 4 x 10 s."""
    planned = _suite(tmp_path, write_results, [
        ("a", 0, "complete", [30, 10, 10, 10]),
        ("a", 1, "complete", [50, 50, 50, 50]),
        ("a", 2, "complete", [10, 10, 10, 10]),
        ("a", 3, "new", []),
    ])  # fmt: skip
    assert remaining(planned, workers=1).trial_seconds == pytest.approx(40.0)


def test_an_untimed_run_takes_the_median_run_and_a_partial_trial_its_own_pace(tmp_path, write_results):
    """Run x is the expensive one (40 s an epoch) with the most recorded epochs; the mean of every
    epoch would charge the untimed run w 4 x (4 x 40 + 2 x 20 + 4 x 10 + 4 x 12) / 14 = 4 x 20.6 s.
    The median of the runs' paces (x: median(40, 20) = 30, y 10, z 12) charges 4 x 12 s. x1, partial
    with two epochs of 20 s (today's machine), finishes at its own pace: 2 x 20 s."""
    planned = _suite(tmp_path, write_results, [
        ("x", 0, "complete", [40, 40, 40, 40]),
        ("x", 1, "partial", [20, 20]),
        ("y", 0, "complete", [10, 10, 10, 10]),
        ("z", 0, "complete", [12, 12, 12, 12]),
        ("w", 0, "new", []),
    ])  # fmt: skip
    left = remaining(planned, workers=1)
    assert (left.trials, left.epochs) == (2, 6)
    assert left.trial_seconds == pytest.approx(2 * 20 + 4 * 12)
    assert remaining(planned, workers=2).wall_seconds == pytest.approx(48.0)


def test_set_up_seconds_seen_this_session_are_added_to_every_trial_left(planned):
    # 855 s of epochs (as above) and 5 s of set-up for each of the 4 trials left
    assert remaining(planned, workers=1, overhead=5.0).trial_seconds == pytest.approx(875.0)
    trial, path, _ = planned[0]  # a0: four epochs of 60 s
    assert set_up_seconds({"directory": str(path), "seconds": 250.0, "epochs": 4}) == pytest.approx(10.0)
    assert set_up_seconds({"directory": str(path), "seconds": 250.0, "epochs": 2}) == pytest.approx(130.0)  # resumed at epoch 3
    assert set_up_seconds({"directory": str(path), "seconds": 0.0, "epochs": 0}) is None  # finished before: nothing trained


def test_finished_trials_are_read_once_across_estimates(planned):
    cache: dict = {}
    first = remaining(planned, workers=1, finished_epochs=cache)
    assert set(cache) == {planned[0][0].name, planned[4][0].name}  # the complete and the kept trial, not the partial
    (planned[0][1] / "results.json").unlink()
    assert remaining(planned, workers=1, finished_epochs=cache).trial_seconds == first.trial_seconds


def test_suite_run_estimates_again_after_each_trial(tmp_path):
    from click.testing import CliRunner

    from routing_rl.cli import main
    from tests.suite_texts import tiny_suite

    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(epochs=2))
    result = CliRunner().invoke(main, ["suite", "run", str(path), "--runs", "shared", "--out", str(tmp_path / "runs"), "--population", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("[1/2] shared-s0-"))
    assert lines[first + 1].startswith("left: 1 trial, 2 epochs; about ")  # timed from shared-s0 and its set-up
    assert lines[first + 2].startswith("[2/2] shared-s1-") and "left:" not in lines[first + 3]

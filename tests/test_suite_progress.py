"""What is left of a suite: epochs, and the time at the pace its own results recorded."""

from __future__ import annotations

import json

import pytest

from routing_rl.suites.progress import Remaining, remaining
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


def test_time_left_is_each_runs_own_pace_and_the_suites_pace_for_an_untimed_run(planned):
    # pace of a: (4 x 60 + 90) / 5 = 66 s; of c: 30 s; b has none, so the suite's: (330 + 120) / 9 = 50 s
    # left: a1 3 x 66 = 198, a2 4 x 66 = 264, b0 4 x 50 = 200, c1 4 x 30 = 120
    left = remaining(planned, workers=1)
    assert (left.trials, left.epochs) == (4, 15)
    assert left.trial_seconds == pytest.approx(782.0) and left.wall_seconds == pytest.approx(782.0)


def test_wall_time_deals_trials_in_order_to_the_first_free_worker(planned):
    # two workers: a1 (198) and a2 (264) start; b0 (200) follows a1 until 398; c1 (120) follows a2 until 384
    assert remaining(planned, workers=2).wall_seconds == pytest.approx(398.0)
    assert remaining(planned, workers=8).wall_seconds == pytest.approx(264.0)  # the longest trial alone
    two = remaining(planned, workers=2).summary()
    assert two == "left: 4 trials, 15 epochs; about 7 min with 2 workers (13 min of trial time at the pace recorded so far)"


def test_an_unreadable_partial_results_file_leaves_every_epoch_to_train(planned):
    trial, path, _ = planned[1]
    (path / "results.json").write_text('{"status": "runn')  # cut while it was written
    left = remaining(planned, workers=1)
    assert left.epochs == 16  # a1's epoch is not counted as done
    # pace of a: 60 s from a0 alone; a1 and a2 4 x 60 each, b0 4 x (360 / 8 = 45), c1 4 x 30
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

"""How much of a suite is left: trials, epochs, and hours at the pace its own epochs were recorded at.

A suite at a paper's protocol (Table 2 of the Re-examining paper is 2,500 trial-epochs) outlives a
session, so whoever resumes it needs to know how far it has to go before deciding how to spend the
machine. The estimate uses nothing but what is known: each recorded epoch's training and evaluation
seconds, the epochs each unfinished trial has left, the seconds a trial spends outside its epochs
where this session has seen some, and the number of workers.

A battery estimated at 1.8 h took 26 minutes. The estimate then averaged every recorded epoch of a
run, so a few slow epochs set the pace of all the rest: a first epoch's warm-up, and whole trials
recorded while the machine was busy or oversubscribed (two threads beside a busy core ran a trial
57x slower than a quiet machine, and suite trials had two threads on a 2-core machine); a run with no
timed epoch took the mean of every epoch of the suite, which the run with the most recorded epochs
decides. Every figure is now a median, at each level, so that one slow vote cannot swing it: a
trial's pace is the median of its epochs, a run's the median of its trials' paces, and a run with no
timed epoch takes the median of the runs' paces. A partial trial with :data:`OWN_PACE_EPOCHS` timed
epochs or more goes at its own pace (the machine it runs on today). ``suite run`` estimates again
after every trial, adding the median set-up seconds of the trials it has trained
(:func:`set_up_seconds`), which on small data are a large share of a trial. The wall-clock figure
deals the trials out as ``suite run`` does: in plan order, each to the worker that frees first.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing_rl.suites.runner import recorded_epochs
from routing_rl.suites.spec import Trial

UNFINISHED = ("new", "partial")


def epoch_cost(epoch: dict[str, Any]) -> float:
    """Seconds one recorded epoch took: training plus evaluation (results written before evaluation
    was timed count their training only)."""
    return float(epoch["train_seconds"]) + float(epoch.get("eval_seconds", 0.0))


@dataclass(frozen=True)
class Remaining:
    """What is left of a suite; the seconds are None when no epoch of the suite has been timed."""

    trials: int
    epochs: int
    trial_seconds: float | None
    wall_seconds: float | None
    workers: int

    def summary(self) -> str:
        """One line for ``suite run``: what is left and, when timed epochs exist, about how long it takes."""
        if self.trials == 0:
            return "left: nothing, every trial is finished"
        head = f"left: {self.trials} trial{'s' if self.trials != 1 else ''}, {self.epochs:,} epoch{'s' if self.epochs != 1 else ''}"
        if self.trial_seconds is None or self.wall_seconds is None:
            return f"{head}; no epoch of this suite is timed yet, so no estimate of the time"
        if self.workers == 1:
            return f"{head}; about {_hours(self.wall_seconds)} with 1 worker at the pace recorded so far"
        return (f"{head}; about {_hours(self.wall_seconds)} with {self.workers} workers "
                f"({_hours(self.trial_seconds)} of trial time at the pace recorded so far)")  # fmt: skip


def _hours(seconds: float) -> str:
    """Hours from one hour, minutes from two minutes, seconds below (the end of a suite says "0 min" no more)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _wall_seconds(costs: list[float], workers: int) -> float:
    """When the last trial ends if trials start in order, each on the first worker to be free."""
    free = [0.0] * max(1, workers)
    for cost in costs:
        heapq.heappush(free, heapq.heappop(free) + cost)
    return max(free)


def set_up_seconds(summary: dict[str, Any]) -> float | None:
    """The seconds a trial that ``suite run`` just trained spent outside the epochs it trained (its
    process, data, network, checkpoints): its summary's seconds less those epochs' recorded costs.
    None for a trial that trained no epoch or whose results cannot be read."""
    trained = int(summary.get("epochs") or 0)
    epochs = recorded_epochs(Path(summary["directory"])) if trained else None
    if not epochs or len(epochs) < trained:
        return None
    try:
        return max(0.0, float(summary["seconds"]) - sum(epoch_cost(e) for e in epochs[-trained:]))
    except (KeyError, TypeError, ValueError):
        return None


OWN_PACE_EPOCHS = 2
"""Timed epochs from which a partial trial's remaining epochs go at its own pace rather than its run's."""


def trial_pace(epochs: list[dict[str, Any]]) -> float | None:
    """The median seconds of a trial's timed epochs (None without one): a warm-up epoch or a moment
    of a busy machine among them does not move it."""
    costs = []
    for epoch in epochs:
        try:
            costs.append(epoch_cost(epoch))
        except (KeyError, TypeError, ValueError):
            continue
    return statistics.median(costs) if costs else None


def remaining(planned: list[tuple[Trial, Path, str]], workers: int, overhead: float = 0.0,
              finished_epochs: dict[str, list[dict[str, Any]]] | None = None) -> Remaining:  # fmt: skip
    """What is left of ``planned`` (from :func:`routing_rl.suites.runner.plan`) with ``workers``
    workers; each unfinished trial costs ``overhead`` seconds beyond its epochs (its set-up, as seen
    by the caller; 0 when unknown). ``finished_epochs`` caches the epochs of finished trials between
    calls (they do not change), so that re-estimating after every trial reads only the unfinished."""
    cache = {} if finished_epochs is None else finished_epochs
    recorded: dict[str, list[dict[str, Any]]] = {}
    for trial, path, status in planned:
        if status == "new":
            continue
        if trial.name in cache:
            recorded[trial.name] = cache[trial.name]
            continue
        recorded[trial.name] = recorded_epochs(path) or []
        if status not in UNFINISHED:
            cache[trial.name] = recorded[trial.name]
    own: dict[str, float] = {}
    paces_by_run: dict[str, list[float]] = {}
    for trial, _, _ in planned:
        pace = trial_pace(recorded.get(trial.name, []))
        if pace is not None:
            own[trial.name] = pace
            paces_by_run.setdefault(trial.run, []).append(pace)
    unfinished = [trial for trial, _, status in planned if status in UNFINISHED]
    left = [max(0, trial.config.epochs - len(recorded.get(trial.name, []))) for trial in unfinished]
    if not paces_by_run:
        return Remaining(len(unfinished), sum(left), None, None, workers)
    run_pace = {run: statistics.median(paces) for run, paces in paces_by_run.items()}
    typical = statistics.median(run_pace.values())

    def pace(trial: Trial) -> float:
        if trial.name in own and len(recorded[trial.name]) >= OWN_PACE_EPOCHS:
            return own[trial.name]
        return run_pace.get(trial.run, typical)

    costs = [n * pace(trial) + (overhead if n else 0.0) for trial, n in zip(unfinished, left)]
    return Remaining(len(unfinished), sum(left), sum(costs), _wall_seconds(costs, workers), workers)

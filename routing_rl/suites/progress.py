"""How much of a suite is left: trials, epochs, and hours at the pace its own epochs were recorded at.

A suite at a paper's protocol (Table 2 of the Re-examining paper is 2,500 trial-epochs) outlives a
session, so whoever resumes it needs to know how far it has to go before deciding how to spend the
machine. The estimate uses nothing but what the suite's results already record: each epoch's
training and evaluation seconds, averaged run by run (methods differ in cost: no sharing trains ten
networks' worth of blocks), over finished, kept and partial trials alike. A run with no timed epoch
yet takes the mean over every timed epoch of the suite. The wall-clock figure deals the trials out
as ``suite run`` does: in plan order, each to the worker that frees first.
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
        head = f"left: {self.trials} trial{'s' if self.trials != 1 else ''}, {self.epochs:,} epochs"
        if self.trial_seconds is None or self.wall_seconds is None:
            return f"{head}; no epoch of this suite is timed yet, so no estimate of the time"
        if self.workers == 1:
            return f"{head}; about {_hours(self.wall_seconds)} with 1 worker at the pace recorded so far"
        return (f"{head}; about {_hours(self.wall_seconds)} with {self.workers} workers "
                f"({_hours(self.trial_seconds)} of trial time at the pace recorded so far)")  # fmt: skip


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _wall_seconds(costs: list[float], workers: int) -> float:
    """When the last trial ends if trials start in order, each on the first worker to be free."""
    free = [0.0] * max(1, workers)
    for cost in costs:
        heapq.heappush(free, heapq.heappop(free) + cost)
    return max(free)


def remaining(planned: list[tuple[Trial, Path, str]], workers: int) -> Remaining:
    """What is left of ``planned`` (from :func:`routing_rl.suites.runner.plan`) with ``workers`` workers."""
    recorded = {trial.name: recorded_epochs(path) or [] for trial, path, status in planned if status != "new"}
    pace_by_run: dict[str, list[float]] = {}
    for trial, _, _ in planned:
        for epoch in recorded.get(trial.name, []):
            try:
                cost = epoch_cost(epoch)
            except (KeyError, TypeError, ValueError):
                continue
            pace_by_run.setdefault(trial.run, []).append(cost)
    every_epoch = [s for costs in pace_by_run.values() for s in costs]
    overall = statistics.fmean(every_epoch) if every_epoch else None
    unfinished = [trial for trial, _, status in planned if status in UNFINISHED]
    left = [max(0, trial.config.epochs - len(recorded.get(trial.name, []))) for trial in unfinished]
    if overall is None:
        return Remaining(len(unfinished), sum(left), None, None, workers)
    pace = {run: statistics.fmean(run_costs) for run, run_costs in pace_by_run.items()}
    costs = [n * pace.get(trial.run, overall) for trial, n in zip(unfinished, left)]
    return Remaining(len(unfinished), sum(left), sum(costs), _wall_seconds(costs, workers), workers)

"""Delta-m: one number for how much a multi-task method improves on a baseline over tasks of different metrics.

A suite whose tasks are scored by different metrics (accuracy on one task, MSE on another) has no
meaningful mean over tasks. The standard summary (Maninis et al. 2019, "Attentive single-tasking
of multiple tasks"; LibMTL's ``count_improvement``) is the mean relative improvement per task,
each in its own metric's direction:

    delta-m = (100 / T) * sum_t s_t (M_method,t - M_base,t) / M_base,t,  s_t = +1 if higher is better else -1

in percent, positive when the method is better on balance.
"""

from __future__ import annotations

from collections.abc import Sequence


class ZeroBaselineError(ValueError):
    """A task on which the baseline scores 0: its relative change, so delta-m, is undefined."""

    def __init__(self, task: int) -> None:
        super().__init__(f"task {task}: the baseline's score is 0, so its relative change is undefined")
        self.task = task


def delta_m(method: Sequence[float], baseline: Sequence[float], higher_is_better: Sequence[bool]) -> float:
    """Delta-m (percent) of ``method``'s per-task scores over ``baseline``'s (same tasks, same order).

    A baseline score of 0 has no relative change: it is refused (:class:`ZeroBaselineError`, with
    the task's index) rather than divided by, so the caller can leave that seed out and say why.
    """
    if not len(method) == len(baseline) == len(higher_is_better) or not method:
        raise ValueError("delta-m needs one method score, one baseline score and one direction per task")
    total = 0.0
    for task, (mine, base, higher) in enumerate(zip(method, baseline, higher_is_better)):
        if base == 0:
            raise ZeroBaselineError(task)
        total += (1.0 if higher else -1.0) * (mine - base) / base
    return 100.0 * total / len(method)

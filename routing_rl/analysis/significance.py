"""``routing-rl compare``: is method A better than method B over independent runs?

The Re-examining paper (appendix A.2) backs "fixed random routing beats no sharing" with a
two-sample one-tailed t-test over five seeds per method. This module does the same from run
directories of any task family: it reads each run's mean test metric at the last epoch (or at the
best validation epoch) and tests H0: A is no better than B against H1: A is better, with
``scipy.stats`` (better is higher for accuracy and MAP@K, lower for MSE). Runs of different
suites, metrics or epoch counts are refused unless ``--force``: such a test answers nothing.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from routing_rl.training.records.results import ResultsError, load_results, results_path

METRICS = {"last": "last", "best-val": "best_val"}
"""``--metric`` choice -> the block of ``final`` whose ``test_mean`` is compared."""


@dataclass(frozen=True)
class Comparison:
    """Result of the one-tailed test of A > B (Student's pooled t-test, or Welch's if asked)."""

    mean_a: float
    std_a: float
    n_a: int
    mean_b: float
    std_b: float
    n_b: int
    t: float
    df: float
    p_value: float


@dataclass(frozen=True)
class RunValue:
    """One finished run's compared value and what makes runs comparable."""

    path: str
    value: float
    env: str
    env_options: str
    metric: str
    higher_is_better: bool
    epochs: int


def run_value(path: str | Path, metric: str = "last") -> RunValue:
    """The mean test metric of one finished run (a run directory or its results.json)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid choices: {', '.join(METRICS)}")
    results = load_results(path)
    file = results_path(path)
    if results["status"] != "complete" or not results["epochs"]:
        raise ResultsError(f"{file} is not a finished run (status {results['status']}, {len(results['epochs'])} epochs)")
    value = results["final"][METRICS[metric]]["test_mean"]
    if value is None or not math.isfinite(value):
        raise ResultsError(f"{file}: its test mean is {value}, not a number to compare")
    config = results["config"]
    return RunValue(
        str(file), float(value), results["env"]["name"], json.dumps(config.get("env_options", {}), sort_keys=True),
        results["metric"]["name"], results["metric"]["higher_is_better"], int(config["epochs"]),
    )  # fmt: skip


def mismatches(runs: Sequence[RunValue]) -> list[str]:
    """What differs between runs that a fair comparison needs equal: suite (and its options), metric, epochs."""
    out = []
    for label, key in (("envs", "env"), ("env options", "env_options"), ("metrics", "metric"), ("epoch counts", "epochs")):
        values = sorted({str(getattr(r, key)) for r in runs})
        if len(values) > 1:
            out.append(f"{label} differ ({', '.join(values)})")
    return out


def one_tailed_ttest(a: Sequence[float], b: Sequence[float], equal_var: bool = True) -> Comparison:
    """Test mean(a) > mean(b); needs at least two runs on each side."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.size < 2 or xb.size < 2:
        raise ValueError("a t-test needs at least two runs per method")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # identical runs: the NaN p is explained to the user
        res = stats.ttest_ind(xa, xb, equal_var=equal_var, alternative="greater")
    df = float(getattr(res, "df", xa.size + xb.size - 2))
    return Comparison(
        float(xa.mean()), float(xa.std(ddof=1)), int(xa.size),
        float(xb.mean()), float(xb.std(ddof=1)), int(xb.size),
        float(res.statistic), df, float(res.pvalue),
    )


@dataclass(frozen=True)
class Difference:
    """A one-tailed test that a method is ahead of its baseline, with the two-sided interval of the difference.

    ``t`` is signed so that t > 0 means the method is ahead in the metric's direction; ``difference``
    and its interval (``low``, ``high``) are in the metric's own units, method minus baseline.
    """

    t: float
    df: float
    p_value: float
    difference: float
    low: float
    high: float
    n: int


CONFIDENCE = 0.95
"""The level of a difference's interval: a two-sided 95% t interval."""


def _quiet_ttest(test, *args, **kwargs):  # type: ignore[no-untyped-def]
    """A scipy t-test with its warnings silenced: identical runs give a NaN p, which the caller explains."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def paired_ttest(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True) -> Difference:
    """Test that ``a`` is ahead of ``b`` pair by pair (``a[i]`` and ``b[i]`` share a seed, so its data
    split and data order): one-tailed ``scipy.stats.ttest_rel``, alternative by the metric's direction,
    and the 95% t interval of the mean paired difference. Needs two pairs at least."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.size != xb.size:
        raise ValueError("a paired t-test needs one value of each side per seed")
    if xa.size < 2:
        raise ValueError("a paired t-test needs at least two seeds that both methods have finished")
    one_tailed = _quiet_ttest(stats.ttest_rel, xa, xb, alternative="greater" if higher_is_better else "less")
    interval = _quiet_ttest(stats.ttest_rel, xa, xb).confidence_interval(CONFIDENCE)
    sign = 1.0 if higher_is_better else -1.0
    return Difference(sign * float(one_tailed.statistic), float(one_tailed.df), float(one_tailed.pvalue),
                      float((xa - xb).mean()), float(interval.low), float(interval.high), int(xa.size))  # fmt: skip


def two_sample_difference(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True) -> Difference:
    """The Re-examining paper's appendix A.2 test (:func:`one_tailed_ttest`, pooled variance) in the
    metric's direction, with the pooled-variance 95% t interval of the difference of the means, so
    that the interval and the p come from the same test."""
    sign = 1.0 if higher_is_better else -1.0
    test = one_tailed_ttest([sign * v for v in a], [sign * v for v in b])
    interval = _quiet_ttest(stats.ttest_ind, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                            equal_var=True).confidence_interval(CONFIDENCE)  # fmt: skip
    return Difference(test.t, test.df, test.p_value, sign * (test.mean_a - test.mean_b), float(interval.low), float(interval.high),
                      test.n_a)  # fmt: skip


def greater_than_zero(values: Sequence[float]) -> Difference:
    """One-sample one-tailed t-test that the mean of ``values`` is above 0 (``scipy.stats.ttest_1samp``),
    with the 95% t interval of the mean: the test of a per-seed summary such as delta-m."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        raise ValueError("a one-sample t-test needs at least two values")
    one_tailed = _quiet_ttest(stats.ttest_1samp, x, 0.0, alternative="greater")
    interval = _quiet_ttest(stats.ttest_1samp, x, 0.0).confidence_interval(CONFIDENCE)
    return Difference(float(one_tailed.statistic), float(one_tailed.df), float(one_tailed.pvalue), float(x.mean()),
                      float(interval.low), float(interval.high), int(x.size))  # fmt: skip


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given.

    A table tests every method against one baseline; at 0.05 per comparison, seven comparisons
    find a "winner" by chance far more often than one time in twenty. Holm's correction keeps the
    chance of any false "yes" in the table at 0.05 and is never less powerful than Bonferroni's.
    scipy has no Holm (``scipy.stats.false_discovery_control`` is Benjamini-Hochberg, which bounds
    the false discovery rate instead), so this is the step-down itself: with the m p-values sorted,
    p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted

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

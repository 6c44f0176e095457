"""``routing-rl compare``: is method A better than method B over independent runs?

The Re-examining paper (appendix A.2) backs "fixed random routing beats no sharing" with a
two-sample one-tailed t-test over five seeds per method. This module does the same from run
directories: it reads each run's final mean test accuracy (or the one at the best validation
epoch) and tests H0: mean_A - mean_B <= 0 against H1: mean_A - mean_B > 0 with ``scipy.stats``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
from scipy import stats

from routing_rl.analysis.similarity import results_path

METRICS = {
    "last": ("final", "test_accuracy_mean"),
    "best-val": ("final", "test_accuracy_mean_at_best_val"),
}


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


def run_metric(path: str | Path, metric: str = "last") -> float:
    """The chosen accuracy of one finished run (a run directory or its results.json)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid choices: {', '.join(METRICS)}")
    file = results_path(path)
    results = json.loads(file.read_text())
    section, key = METRICS[metric]
    if results.get("status") != "complete" or key not in results.get(section, {}):
        raise ValueError(f"{file} is not a finished run")
    return float(results[section][key])


def one_tailed_ttest(a: Sequence[float], b: Sequence[float], equal_var: bool = True) -> Comparison:
    """Test mean(a) > mean(b); needs at least two runs on each side."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.size < 2 or xb.size < 2:
        raise ValueError("a t-test needs at least two runs per method")
    res = stats.ttest_ind(xa, xb, equal_var=equal_var, alternative="greater")
    df = float(getattr(res, "df", xa.size + xb.size - 2))
    return Comparison(
        float(xa.mean()), float(xa.std(ddof=1)), int(xa.size),
        float(xb.mean()), float(xb.std(ddof=1)), int(xb.size),
        float(res.statistic), df, float(res.pvalue),
    )


@click.command("compare")
@click.option("--a", "runs_a", multiple=True, required=True, type=click.Path(exists=True, path_type=Path), help="A run of method A (repeat; one per seed).")
@click.option("--b", "runs_b", multiple=True, required=True, type=click.Path(exists=True, path_type=Path), help="A run of method B (repeat; one per seed).")
@click.option("--metric", type=click.Choice(list(METRICS)), default="last", show_default=True, help="Test accuracy of the last epoch or of the best-validation epoch.")
@click.option("--welch", is_flag=True, help="Welch's t-test (unequal variances) instead of Student's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compare(runs_a: tuple[Path, ...], runs_b: tuple[Path, ...], metric: str, welch: bool, as_json: bool) -> None:
    """One-tailed two-sample t-test that method A's mean test accuracy exceeds method B's."""
    try:
        result = one_tailed_ttest([run_metric(p, metric) for p in runs_a], [run_metric(p, metric) for p in runs_b], not welch)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
        return
    p = result.p_value
    click.echo(f"A: {result.mean_a:.4f} +- {result.std_a:.4f} (n={result.n_a})")
    click.echo(f"B: {result.mean_b:.4f} +- {result.std_b:.4f} (n={result.n_b})")
    verdict = "reject H0 at 0.05: A is better" if p < 0.05 else "cannot reject H0 (A <= B) at 0.05"
    click.echo(f"H1: mean A > mean B; t = {result.t:.4f}, df = {result.df:.1f}, p = {p:.4g}: {verdict}")
    if math.isnan(p):
        click.echo("(p is NaN: both methods gave identical, constant results)")

"""``routing-rl compare``: a one-tailed t-test that method A beats method B over independent runs
(:mod:`routing_rl.analysis.significance`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import click

from routing_rl.cli.common import CheckedPath
from routing_rl.analysis.significance import METRICS, Comparison, mismatches, one_tailed_ttest, run_value


@click.command("compare")
@click.option("--a", "runs_a", multiple=True, required=True, type=CheckedPath(path_type=Path), help="A run of method A (repeat; one per seed).")
@click.option("--b", "runs_b", multiple=True, required=True, type=CheckedPath(path_type=Path), help="A run of method B (repeat; one per seed).")
@click.option("--metric", type=click.Choice(list(METRICS)), default="last", show_default=True, help="Mean test metric of the last epoch or of the best-validation epoch.")
@click.option("--welch", is_flag=True, help="Welch's t-test (unequal variances) instead of Student's.")
@click.option("--force", is_flag=True, help="Compare even runs of different suites, metrics or epoch counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compare(runs_a: tuple[Path, ...], runs_b: tuple[Path, ...], metric: str, welch: bool, force: bool, as_json: bool) -> None:
    """One-tailed two-sample t-test that method A's mean test metric is better than method B's."""
    try:
        a = [run_value(p, metric) for p in runs_a]
        b = [run_value(p, metric) for p in runs_b]
        problems = mismatches(a + b)
        if problems and not force:
            raise ValueError(f"these runs are not comparable: {'; '.join(problems)} (pass --force to compare anyway)")
        higher = a[0].higher_is_better
        sign = 1.0 if higher else -1.0
        result = one_tailed_ttest([sign * r.value for r in a], [sign * r.value for r in b], not welch)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not higher:  # the test ran on -MSE; report the means of the metric itself
        result = Comparison(-result.mean_a, result.std_a, result.n_a, -result.mean_b, result.std_b, result.n_b,
                            result.t, result.df, result.p_value)  # fmt: skip
    name = a[0].metric
    if as_json:
        click.echo(json.dumps({**asdict(result), "metric": name, "higher_is_better": higher}, indent=2))
        return
    p = result.p_value
    click.echo(f"A: {name} {result.mean_a:.4f} +- {result.std_a:.4f} (n={result.n_a})")
    click.echo(f"B: {name} {result.mean_b:.4f} +- {result.std_b:.4f} (n={result.n_b})")
    direction = ">" if higher else "<"
    verdict = "reject H0 at 0.05: A is better" if p < 0.05 else "cannot reject H0 (A no better than B) at 0.05"
    click.echo(f"H1: mean A {direction} mean B; t = {result.t:.4f}, df = {result.df:.1f}, p = {p:.4g}: {verdict}")
    if math.isnan(p):
        click.echo("(p is NaN: both methods gave identical, constant results)")

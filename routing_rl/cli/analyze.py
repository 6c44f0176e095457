"""``routing-rl analyze``: task similarity, grouping recovery and cross-seed agreement of finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from routing_rl.cli.common import CheckedPath
from routing_rl.analysis.report import analyze_runs, format_report, json_safe


def parse_groups(value: str | None) -> list[int] | None:
    """``"0,1,0,1"`` -> ``[0, 1, 0, 1]``; None stays None."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint="--groups") from None


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True, type=CheckedPath(path_type=Path))
@click.option("--groups", default=None, metavar="G0,G1,...", help="True group of every task (default: from task names ending in group<k>).")
@click.option("--samples", default=1000, show_default=True, type=click.IntRange(min=1), help="Permutations and random routes for the p-values.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the permutations and random routes.")
@click.option("--precision", default=2, show_default=True, type=click.IntRange(0, 6), help="Decimals printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze(paths: tuple[Path, ...], groups: str | None, samples: int, seed: int, precision: int, as_json: bool) -> None:
    """Task similarity per routed layer, grouping recovery and cross-seed agreement of finished runs.

    PATHS are run directories or results.json files. Pass several runs of one configuration with
    different seeds to see whether they route the tasks alike (the Re-examining paper, Figure 4).
    """
    try:
        report = analyze_runs(paths, parse_groups(groups), samples, seed)
    except ValueError as exc:  # ResultsError is a ValueError; so are mismatched runs and groups
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(json_safe(report), indent=2))
    else:
        click.echo(format_report(report, precision), nl=False)

"""Where does learned routing pay? The verdicts of the relatedness sweep; prints Markdown.

    python docs/where_routing_pays.py [--scale quick] [--out DIR]

Reads the finished trials of ``suites/where-routing-pays.toml`` (the suite directory, else its kept
folder ``results/where-routing-pays``; kept trials are verified against ``kept.json``) and prints:

1. each method's test accuracy minus the shared bottom's, per setting (mean of the per-seed
   differences with the 95% t interval), as ``suite table`` computes it;
2. for each learned router (WPL, REINFORCE, hard-concrete, WPL after warm-up) in each setting: its
   difference to fixed random routes and to no sharing, each with a one-tailed paired t-test by
   seed (a method and its reference of one seed share data, split and data order) and the p after
   Holm's correction over *every* such comparison printed (routers x settings x the three
   references shared bottom, fixed random, no sharing); how far it stays below the oracle's routes
   (the known groups); whether its routes recover the groups (adjusted Rand index of the tasks'
   partition per routed layer against the true groups, mean over layers and seeds, and the seeds
   in which every layer's ARI is 1); and whether its policy had settled (last-epoch policy
   perplexity, mean over tasks and layers, the share of task routes that changed over the last
   five epochs, and the first epoch at which the mean perplexity fell below 1.1,
   after warm-up where there is one);
3. one verdict line per learned router: in which settings it beats fixed random routes and no
   sharing (Holm-corrected p < 0.05), if any.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from routing_rl.analysis.grouping import adjusted_rand_index
from routing_rl.analysis.significance import Difference, holm, paired_ttest
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.table import collect_by_seed

SUITE = Path(__file__).resolve().parent.parent / "suites" / "where-routing-pays.toml"
ALPHA = 0.05
BASELINE = "shared-bottom"
REFERENCES = ("shared-bottom", "fixed-random", "no-sharing")
"""What a learned router is tested against: simple sharing, the same network on random routes, no sharing."""
LEARNED = ("wpl", "reinforce", "hard-concrete", "wpl-warmup")
ORACLE = "oracle"
SETTLED_WINDOW = 5
"""Epochs over which a settled policy's routes should not move."""
COLLAPSED = 1.1
"""Mean policy perplexity under which a policy has (almost) one block per task and layer."""

Trials = dict[str, dict[str, dict[int, dict[str, Any]]]]
"""setting -> method -> seed -> results."""


@dataclass
class Test:
    """One learned router against one reference in one setting."""

    setting: str
    method: str
    reference: str
    difference: Difference | None
    p_holm: float = math.nan


def trials_by_setting(scale: str | None, directory: Path | None, suite_file: Path = SUITE) -> tuple[Trials, list[str]]:
    """The finished trials by setting, method and seed, and the scale's settings in file order."""
    spec = load_suite_file(suite_file)
    trials = [{"run": t.run, "seed": t.seed, "name": t.name} for t in spec.trials(scale)]
    damaged: list[str] = []
    by_row, _, _, _ = collect_by_seed(trials, directory or spec.directory(scale), spec.kept, damaged)
    for problem in damaged:
        click.echo(f"warning: {problem}; counted as unfinished", err=True)
    out: Trials = {}
    for row, seeds in by_row.items():
        setting, method = spec.split_row(row)
        out.setdefault(str(setting), {})[method] = seeds
    names = list(spec.scale_settings((spec.scales.get(scale) or {}).get("settings") if scale else None, scale))
    return out, names


def last_mean(results: dict[str, Any]) -> float:
    return float(results["final"]["last"]["test_mean"])


def compare(mine: dict[int, dict[str, Any]], other: dict[int, dict[str, Any]]) -> Difference | None:
    """Paired by seed: ``mine`` ahead of ``other``; None with fewer than two shared seeds."""
    seeds = sorted(mine.keys() & other.keys())
    if len(seeds) < 2:
        return None
    return paired_ttest([last_mean(mine[s]) for s in seeds], [last_mean(other[s]) for s in seeds])


def tests(trials: Trials, settings: list[str]) -> list[Test]:
    """Every learned router against every reference in every setting, Holm-corrected together."""
    out = [Test(setting, method, reference, compare(trials.get(setting, {}).get(method, {}), trials.get(setting, {}).get(reference, {})))
           for setting in settings for method in LEARNED for reference in REFERENCES]  # fmt: skip
    tested = [t for t in out if t.difference is not None]
    for test, p in zip(tested, holm([1.0 if math.isnan(t.difference.p_value) else t.difference.p_value for t in tested])):  # type: ignore[union-attr]
        test.p_holm = p
    return out


def route_recovery(results: dict[str, Any]) -> float:
    """Mean over routed layers of the ARI between the tasks' last-epoch blocks and the true groups."""
    groups = results["env"]["info"]["groups"]
    routes = np.asarray(results["final"]["routes"])
    return float(np.mean([adjusted_rand_index(routes[:, layer], groups) for layer in range(routes.shape[1])]))


def settled(results: dict[str, Any]) -> tuple[float, float, float]:
    """Last-epoch policy perplexity (mean over tasks and layers), the share of (task, layer) routes
    that differ between the last epoch and :data:`SETTLED_WINDOW` epochs before it, and the first
    epoch after warm-up whose mean perplexity is below :data:`COLLAPSED` (NaN if none is)."""
    epochs = results["epochs"]
    last = epochs[-1]["routing"]
    before = epochs[max(0, len(epochs) - 1 - SETTLED_WINDOW)]["routing"]
    moved = float(np.mean(np.asarray(last["routes"]) != np.asarray(before["routes"])))
    warmup = int(results.get("config", {}).get("warmup_epochs") or 0)  # the shared routes of warm-up are no learned policy
    first = next((i + 1 for i, e in enumerate(epochs) if i >= warmup and float(np.mean(e["routing"]["perplexity"])) < COLLAPSED), math.nan)
    return float(np.mean(last["perplexity"])), moved, float(first)


def _ci(d: Difference | None) -> str:
    if d is None:
        return "-"
    return f"{d.difference:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def differences_table(trials: Trials, settings: list[str]) -> str:
    """Each method minus the shared bottom, per setting (rows) and method (columns)."""
    methods = [m for m in dict.fromkeys(m for s in settings for m in trials.get(s, {})) if m != BASELINE]
    lines = ["| setting | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for setting in settings:
        base = trials.get(setting, {}).get(BASELINE, {})
        cells = [_ci(compare(trials.get(setting, {}).get(m, {}), base)) for m in methods]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def routers_table(trials: Trials, settings: list[str], results: list[Test]) -> str:
    """Per learned router and setting: against fixed random and no sharing, below the oracle, route recovery, settling."""
    found = {(t.setting, t.method, t.reference): t for t in results}
    lines = ["| setting | router | minus fixed-random [95% CI] | p Holm | minus no-sharing [95% CI] | p Holm | "
             "oracle minus router [95% CI] | ARI with the groups (seeds with ARI 1) | last perplexity | routes moved in last 5 epochs | "
             f"first epoch of perplexity < {COLLAPSED} (median) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for setting in settings:
        for method in LEARNED:
            seeds = trials.get(setting, {}).get(method, {})
            if not seeds:
                continue
            vs_random, vs_none = found[(setting, method, "fixed-random")], found[(setting, method, "no-sharing")]
            below = compare(trials.get(setting, {}).get(ORACLE, {}), seeds)
            aris = [route_recovery(r) for r in seeds.values()]
            perplexity, moved, collapsed = zip(*(settled(r) for r in seeds.values()))
            reached = [c for c in collapsed if not math.isnan(c)]
            when = f"{statistics.median(reached):g} ({len(reached)} of {len(collapsed)} seeds)" if reached else "never"
            exact = sum(1 for a in aris if a > 1 - 1e-9)
            lines.append(f"| {setting} | {method} | {_ci(vs_random.difference)} | {_p(vs_random.p_holm)} | {_ci(vs_none.difference)} "
                         f"| {_p(vs_none.p_holm)} | {_ci(below)} | {_mean(aris):.2f} ({exact} of {len(aris)}) "
                         f"| {_mean(list(perplexity)):.2f} | {_mean(list(moved)):.0%} | {when} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


def verdicts(results: list[Test], settings: list[str]) -> list[str]:
    """Per learned router: the settings where it beats fixed random routes and where it beats no sharing."""
    count = sum(1 for t in results if t.difference is not None)
    lines = []
    for method in LEARNED:
        parts = []
        for reference in ("fixed-random", "no-sharing", "shared-bottom"):
            wins = [t.setting for t in results if t.method == method and t.reference == reference and t.p_holm < ALPHA]
            parts.append(f"beats {reference} in {', '.join(wins) if wins else 'no setting'}")
        lines.append(f"- {method}: " + "; ".join(parts) + f" (one-tailed paired t-test by seed, Holm over {count} comparisons, p < {ALPHA})")
    return lines


@click.command()
@click.option("--scale", default=None, help="The scale the suite was run at.")
@click.option("--out", "directory", default=None, type=click.Path(path_type=Path), help="Suite directory (default: runs/suite-<name>[-<scale>]).")
def main(scale: str | None, directory: Path | None) -> None:
    try:
        trials, settings = trials_by_setting(scale, directory)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    if not any(trials.values()):
        sys.exit("no finished trial: run `routing-rl suite run suites/where-routing-pays.toml` first")
    results = tests(trials, settings)
    seeds = sorted({s for methods in trials.values() for runs in methods.values() for s in runs})
    click.echo(f"Test accuracy (last epoch, mean over the tasks) minus {BASELINE}'s, mean of the per-seed differences with the 95% t "
               f"interval; seeds {', '.join(map(str, seeds))}:\n")  # fmt: skip
    click.echo(differences_table(trials, settings))
    click.echo("Learned routers against fixed random routes, no sharing and the oracle:\n")
    click.echo(routers_table(trials, settings, results))
    click.echo("\n".join(verdicts(results, settings)))


if __name__ == "__main__":
    main()

"""The numbers docs/table2.md's prose quotes beyond the table and the verdicts; prints them as text.

    python docs/table2_facts.py

``routing-rl suite table`` gives each row's accuracy and ``docs/table2_verdicts.py`` the claims'
t-tests; what docs/table2.md says about *how* the rows learn comes from here, read off the finished
trials of ``suites/reexamining-table2-fmnist.toml`` (the suite directory, else the kept folder):

* the SGD rows of the shipped script (public code, corrected): test accuracy after epoch 1, how
  much it moves over epochs 11-50 (the script steps in epochs 1, 6 and 11 only), and the range of
  each routed layer's policy perplexity, mean over tasks, over epochs 1-50;
* every learned row: the first epoch at which every task's policy is below perplexity 1.1 in every
  routed layer (the paper's Figure 1 "collapse"), counted from the first routed epoch (epoch 21 for
  warm-up), and from the sixth routed epoch on the largest mean over tasks and the largest single
  task's perplexity;
* the other direction of claim (d)'s tests: shared bottom better than conv routing;
* agreement of seeds (the paper's Figure 4): every pair of finished seeds of a learned row at every
  routed layer, Mantel-tested as ``routing-rl analyze`` does (1,000 relabellings, seed 0); how many
  fall below 0.05, against the 5% chance alone gives.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from routing_rl.analysis import compare_runs, load_run
from routing_rl.analysis.significance import one_tailed_ttest
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.runner import locate
from routing_rl.training.records.results import ResultsError, load_results

SUITE = Path(__file__).resolve().parent.parent / "suites" / "reexamining-table2-fmnist.toml"
SHIPPED_ROWS = ("public-code", "corrected")
LEARNED_ROWS = ("public-code", "corrected", "separate-optimizers", "routing-conv1", "routing-conv123", "warm-up")
COLLAPSED = 1.1
"""A policy below this perplexity puts nearly all its mass on one block."""
SETTLED_AFTER = 6
"""Routed epochs after which the collapse is examined (epoch 6 without warm-up)."""
ALPHA = 0.05

Trials = dict[str, list[tuple[int, Path, dict[str, Any]]]]
"""Per row, its finished trials in seed order: (seed, directory, results)."""


def finished_trials(suite_file: Path) -> Trials:
    """The suite's finished trials, from its directory or else its kept folder."""
    suite = load_suite_file(suite_file)
    out: Trials = {}
    for trial in suite.trials(None):
        path, _ = locate(trial.name, suite.directory(None), suite.kept)
        try:
            results = load_results(path)
        except ResultsError:
            continue
        if results["status"] == "complete":
            out.setdefault(trial.run, []).append((trial.seed, path, results))
    return {row: sorted(trials, key=lambda t: t[0]) for row, trials in out.items()}


def each_trial(trials: Trials, rows: Sequence[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(row, seed, results) of every finished trial of ``rows``, rows in the order given."""
    for row in rows:
        for seed, _, results in trials.get(row, []):
            yield row, seed, results


def perplexities(results: dict[str, Any]) -> list[tuple[int, np.ndarray]]:
    """(epoch, ``[layers, tasks]`` policy perplexities) of every routed epoch."""
    return [
        (e["epoch"], np.asarray(e["routing"]["perplexity"], dtype=np.float64))
        for e in results["epochs"]
        if e.get("routing") and e["routing"].get("active", True)
    ]


def shipped_loop_lines(trials: Trials) -> list[str]:
    lines = ["== SGD rows of the shipped script: test accuracy and policy perplexity (mean over tasks, per routed layer)"]
    for row, seed, results in each_trial(trials, SHIPPED_ROWS):
        acc = {e["epoch"]: e["test"]["mean"] for e in results["epochs"]}
        late = [acc[k] for k in acc if k >= 11]
        means = np.array([p.mean(axis=1) for _, p in perplexities(results)])
        lines.append(
            f"{row:>12} s{seed}: accuracy after epoch 1 {acc[1]:.4f}, over epochs 11-{max(acc)} "
            f"{min(late):.4f}-{max(late):.4f} (moves {max(late) - min(late):.4f}); "
            f"perplexity over epochs 1-{max(acc)} {means.min():.2f}-{means.max():.2f}"
        )
    return lines


def collapse_lines(trials: Trials) -> list[str]:
    lines = [
        f"== policy collapse: the first epoch with every task below perplexity {COLLAPSED} in every routed layer;"
        f" from routed epoch {SETTLED_AFTER} on, the largest mean over tasks and the largest single task"
    ]
    for row, seed, results in each_trial(trials, LEARNED_ROWS):
        routed = perplexities(results)
        if not routed:
            continue
        first = routed[0][0]
        collapsed = next((epoch for epoch, p in routed if p.max() < COLLAPSED), None)
        settled = [p for epoch, p in routed if epoch >= first + SETTLED_AFTER - 1]
        at = "never" if collapsed is None else f"first at epoch {collapsed} (routed epoch {collapsed - first + 1})"
        lines.append(
            f"{row:>20} s{seed}: routed from epoch {first}; every task below {COLLAPSED}: {at}; "
            f"from epoch {first + SETTLED_AFTER - 1}: mean over tasks at most {max(p.mean(axis=1).max() for p in settled):.3f}, "
            f"single task at most {max(p.max() for p in settled):.2f}"
        )
    return lines


def reverse_d_lines(trials: Trials) -> list[str]:
    lines = ["== claim (d) the other way: shared bottom better than conv routing (one-tailed t-test, pooled variance)"]
    shared = [r["final"]["last"]["test_mean"] for _, _, r in trials.get("shared-bottom", [])]
    for row in ("routing-conv1", "routing-conv123"):
        routed = [r["final"]["last"]["test_mean"] for _, _, r in trials.get(row, [])]
        if len(shared) < 2 or len(routed) < 2:
            lines.append(f"   shared-bottom > {row}: fewer than two seeds")
            continue
        test = one_tailed_ttest(shared, routed)
        lines.append(f"   shared-bottom > {row}: t = {test.t:.2f}, p = {test.p_value:.3g} ({len(shared)} and {len(routed)} seeds)")
    return lines


def agreement_lines(trials: Trials, samples: int) -> list[str]:
    lines = [f"== agreement of seeds (Figure 4): Mantel test of every pair of seeds at every routed layer, {samples} relabellings"]
    below: list[str] = []
    correlations: list[float] = []
    for row in LEARNED_ROWS:
        runs = [load_run(path) for _, path, _ in trials.get(row, [])]
        if len(runs) < 2:
            continue
        seed_of = {run.name: seed for run, (seed, _, _) in zip(runs, trials[row])}
        for pair in compare_runs(runs, samples=samples, seed=0):
            if pair.layer is None:
                continue
            correlations.append(pair.correlation)
            if pair.p_mantel < ALPHA:
                a, b = seed_of[pair.run_a], seed_of[pair.run_b]
                below.append(f"   {row} s{a} vs s{b} at {runs[0].layer_names[pair.layer]}: r {pair.correlation:.2f}, Mantel p {pair.p_mantel:.3g}")
    lines.append(
        f"   {len(below)} of {len(correlations)} comparisons below {ALPHA} (chance alone: about {ALPHA * len(correlations):.1f}); "
        f"r from {min(correlations, default=float('nan')):.2f} to {max(correlations, default=float('nan')):.2f}"
    )
    return lines + below


def facts(trials: Trials, samples: int = 1000) -> str:
    sections: Sequence[list[str]] = (
        shipped_loop_lines(trials), collapse_lines(trials), reverse_d_lines(trials), agreement_lines(trials, samples),
    )  # fmt: skip
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


@click.command()
@click.option("--samples", default=1000, show_default=True, type=click.IntRange(min=1), help="Relabellings of each Mantel test.")
def main(samples: int) -> None:
    try:
        trials = finished_trials(SUITE)
        if not trials:
            sys.exit("no finished trial: run `routing-rl suite run suites/reexamining-table2-fmnist.toml` first")
        click.echo(facts(trials, samples), nl=False)
    except (SuiteError, ResultsError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()

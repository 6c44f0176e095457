"""A suite's table: per method n, mean ± std and best of the metric, its difference to the baseline, tests.

As the Re-examining paper's Tables 1-2 (mean ± std and best over five seeds), for the test metric
at the last epoch and at the best-validation epoch, plus each method's trainable parameters, its
training and evaluation time and its per-task means, and one line per method that answers the
question the table is for: does it beat the baseline?

How each method is tested against the baseline is the suite's ``test``: by default a one-tailed
paired t-test by seed (a method and the baseline of one seed share its data split and data order,
so the seed-to-seed spread they share cancels), or the paper's appendix A.2 unpaired two-sample
test (``test = "paper-a2"``, which the reproduction suites keep). The verdicts are corrected with
Holm's step-down over the table's comparisons: seven methods tested at 0.05 each would find a
"winner" by chance in about one table in three. Suites whose tasks have different metrics are
summarised by delta-m (``routing_rl.analysis.delta_m``), tested seed by seed as well.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing_rl.analysis.routing_flags import routing_flags
from routing_rl.analysis.delta_m import ZeroBaselineError, delta_m
from routing_rl.analysis.significance import Difference, greater_than_zero, holm, paired_ttest, two_sample_difference
from routing_rl.suites.progress import epoch_cost
from routing_rl.suites.settings import split_setting_row
from routing_rl.training.records.results import ResultsError, load_results, results_path

DELTA_M = "delta-m"
"""The metric name of a table summarised by delta-m (tasks of different metrics)."""


@dataclass
class Row:
    """One method of a suite: its numbers, and its test against the baseline (None where untested)."""

    method: str
    n: int
    mean: float
    std: float
    best: float
    best_val_mean: float
    best_val_std: float
    t: float | None
    df: float | None
    p: float | None
    epoch_seconds: float
    missing: int
    reference_mean: float | None = None
    reference_std: float | None = None
    p_holm: float | None = None
    """``p`` after Holm's correction over the table's ``comparisons``: what the verdict reads."""
    comparisons: int = 0
    test: str = ""
    """Which test gave ``p``: ``paired``, ``paper-a2`` or ``delta-m`` ("" for the baseline or an untested row)."""
    pairs: int = 0
    """Seeds the test used: pairs of seeds both finished (paired, delta-m), the method's seeds (paper-a2)."""
    difference: float | None = None
    """Method minus baseline in the metric's units (delta-m itself in a delta-m table), and its 95% interval."""
    ci_low: float | None = None
    ci_high: float | None = None
    parameters_min: int | None = None
    parameters_max: int | None = None
    per_task: dict[str, float] = field(default_factory=dict)
    """Each task's test metric, mean over the method's finished seeds (at the table's epoch)."""
    reference: bool = False
    """A reference row (majority guess, linear model): shown for scale, never tested or flagged."""
    flags: dict[str, int] = field(default_factory=dict)
    """Seeds in which the router did not route, by flag (:func:`routing_rl.analysis.routing_flags.routing_flags`):
    a verdict on such a method compares a shared network or a frozen route, not learned routing."""


@dataclass(frozen=True)
class TaskMetric:
    """One task's name, metric and direction, as its results record them."""

    name: str
    metric: str
    higher_is_better: bool


@dataclass
class Table:
    """Everything a suite table shows: rows, what is measured and how it is tested."""

    rows: list[Row]
    metric: str
    higher: bool
    tasks: list[TaskMetric]
    test: str
    notes: list[str] = field(default_factory=list)
    """Seeds left out of delta-m, and why (a baseline score of 0)."""


def _spread(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def _epoch_seconds(results: dict[str, Any]) -> float:
    """Seconds a trial spent in its epochs (training plus evaluation), the cost a method adds.

    Not the span from the trial's start to its end: a trial stopped and resumed hours later (a
    suite that outlives a session) would count the pause. Results written before evaluation was
    timed count their training only.
    """
    try:
        return sum(epoch_cost(e) for e in results["epochs"])
    except (KeyError, TypeError, ValueError):
        return math.nan


def collect_by_seed(
    trials: list[dict[str, Any]], directory: Path, kept: str | Path | None = None, damaged: list[str] | None = None,
) -> tuple[dict[str, dict[int, dict[str, Any]]], dict[str, int], str, bool]:
    """Finished trials' results by method and seed (from the suite directory, else the suite's kept
    folder), unfinished counts, and the metric's name and direction. A results.json that exists but
    cannot be read is not merely unfinished: its error (naming the file) is appended to ``damaged``."""
    from routing_rl.suites.runner import locate

    by_method: dict[str, dict[int, dict[str, Any]]] = {}
    missing: dict[str, int] = {}
    metric, higher = "", True
    for trial in trials:
        by_method.setdefault(trial["run"], {})
        path = locate(trial["name"], directory, kept)[0]
        try:
            results = load_results(path)
        except ResultsError as exc:
            results = None
            if results_path(path).exists() and damaged is not None:
                damaged.append(str(exc))
        if results is not None and results["status"] == "complete" and (bad := _non_finite_score(results)):
            results = None
            if damaged is not None:
                damaged.append(f"{results_path(path)}: {bad}; a complete run records finite scores")
        if results is None or results["status"] != "complete":
            missing[trial["run"]] = missing.get(trial["run"], 0) + 1
            continue
        by_method[trial["run"]][int(trial["seed"])] = results
        metric, higher = results["metric"]["name"], results["metric"]["higher_is_better"]
    return by_method, missing, metric, higher


def collect(
    trials: list[dict[str, Any]], directory: Path, kept: str | Path | None = None, damaged: list[str] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int], str, bool]:
    """As :func:`collect_by_seed`, with each method's results as a list (in trial order)."""
    by_seed, missing, metric, higher = collect_by_seed(trials, directory, kept, damaged)
    return {m: list(rs.values()) for m, rs in by_seed.items()}, missing, metric, higher


def _non_finite_score(results: dict[str, Any]) -> str | None:
    """Which final test score of a complete run is NaN or infinite (None when all are finite): the
    trainer stops a diverging run as ``diverged``, so such a "complete" record was altered."""
    for block in ("last", "best_val"):
        value = results["final"][block]["test_mean"]
        if value is not None and not math.isfinite(value):
            return f"final.{block}.test_mean is {value}"
    return None


def task_metrics(results: dict[str, Any]) -> list[TaskMetric]:
    """Each task's metric and direction: ``metric.tasks`` (one ``{metric, higher_is_better}`` per
    task, written by suites that mix task kinds) where the record has a well-formed one, else the
    run's metric for every task."""
    names = [str(n) for n in results["env"]["task_names"]]
    listed = results["metric"].get("tasks")
    if isinstance(listed, list) and len(listed) == len(names) and all(
        isinstance(x, dict) and isinstance(x.get("metric"), str) and isinstance(x.get("higher_is_better"), bool) for x in listed
    ):
        return [TaskMetric(n, x["metric"], x["higher_is_better"]) for n, x in zip(names, listed)]
    return [TaskMetric(n, results["metric"]["name"], results["metric"]["higher_is_better"]) for n in names]


def _trainable(results: dict[str, Any]) -> int | None:
    """Trainable parameters of a run at its last epoch (None where the record has no count)."""
    try:
        return int(results["epochs"][-1]["parameters"]["train"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _delta_m_by_seed(
    by_method: dict[str, dict[int, dict[str, Any]]], baseline: str, block: str, tasks: list[TaskMetric], notes: list[str],
) -> dict[str, dict[int, float]]:
    """Each method's delta-m per seed against the same seed's baseline, at ``block`` of ``final``;
    a seed whose baseline scores 0 on a task is left out, with a note saying so."""
    base = by_method.get(baseline, {})
    directions = [t.higher_is_better for t in tasks]
    out: dict[str, dict[int, float]] = {}
    for method, seeds in by_method.items():
        out[method] = {}
        for seed, results in seeds.items():
            if seed not in base:
                continue
            try:
                out[method][seed] = delta_m(results["final"][block]["test_per_task"], base[seed]["final"][block]["test_per_task"], directions)
            except ZeroBaselineError as exc:
                note = f"seed {seed} is left out of delta-m: {baseline} scores 0 on task {tasks[exc.task].name}, whose relative change is undefined"
                if note not in notes:
                    notes.append(note)
    return out


def _compare(mine: dict[int, float], base: dict[int, float], test: str, higher: bool) -> Difference | None:
    """The method's test against the baseline; None when there are too few seeds to test."""
    if test == DELTA_M:
        return greater_than_zero(list(mine.values())) if len(mine) >= 2 else None
    if test == "paired":
        seeds = sorted(mine.keys() & base.keys())
        return paired_ttest([mine[s] for s in seeds], [base[s] for s in seeds], higher) if len(seeds) >= 2 else None
    if len(mine) >= 2 and len(base) >= 2:
        return two_sample_difference(list(mine.values()), list(base.values()), higher)
    return None


def _correct(rows: list[Row]) -> None:
    """Holm's correction over every tested row. A NaN p (no spread at all to test against) counts
    as a comparison with no evidence (p = 1), so that it still widens the correction of the others."""
    tested = [r for r in rows if r.p is not None]
    adjusted = holm([1.0 if math.isnan(r.p) else r.p for r in tested])  # type: ignore[arg-type]
    for row, p in zip(tested, adjusted):
        row.p_holm = math.nan if math.isnan(row.p) else p  # type: ignore[arg-type]
        row.comparisons = len(tested)


def _method_row(
    method: str, seeds: dict[int, dict[str, Any]], values: dict[int, float], at_best_val: dict[int, float], higher: bool,
    missing: int, reference: dict[str, float], block: str, is_reference: bool = False,
) -> Row:
    """A method's row before its test: spread of its values, parameters, time and per-task means.
    A reference row (majority guess, linear model) has no training time, parameters or routes."""
    mine = list(values.values())
    mean, std = _spread(mine)
    best_val_mean, best_val_std = _spread(list(at_best_val.values()))
    row = Row(method, len(seeds), mean, std, (max if higher else min)(mine) if mine else math.nan, best_val_mean, best_val_std,
              None, None, None, math.nan if is_reference else sum(_epoch_seconds(r) for r in seeds.values()), missing,
              reference.get("mean"), reference.get("std"), reference=is_reference)  # fmt: skip
    counts = [c for c in (_trainable(r) for r in seeds.values()) if c is not None]
    row.parameters_min, row.parameters_max = (min(counts), max(counts)) if counts else (None, None)
    names = [str(n) for n in next(iter(seeds.values()))["env"]["task_names"]] if seeds else []
    for results in seeds.values():
        for flag in routing_flags(results) if not is_reference else []:
            row.flags[flag.name] = row.flags.get(flag.name, 0) + 1
    row.per_task = {name: statistics.fmean(r["final"][block]["test_per_task"][t] for r in seeds.values()) for t, name in enumerate(names)}
    return row


def build_table(
    trials: list[dict[str, Any]], directory: Path, baseline: str | None, selection: str = "last",
    reference: dict[str, dict[str, float]] | None = None, kept: str | Path | None = None, damaged: list[str] | None = None,
    test: str = "paired", references: Callable[[dict[int, dict[str, Any]]], dict[str, dict[int, dict[str, Any]]]] | None = None,
) -> Table:
    """The table: rows in file order of the methods, the metric (``delta-m`` where tasks have
    different metrics and there is a baseline), its direction, the tasks and the test used.

    ``reference`` holds a paper's numbers per method (``mean``, optional ``std``), shown next to ours.
    ``references`` makes the reference rows (majority guess, linear model: results by seed, as
    :func:`routing_rl.suites.references.suite_references` gives them) from the baseline's finished
    results by seed; they are shown after the methods, untested and outside the correction.
    """
    reference = reference or {}
    by_method, missing, metric, higher = collect_by_seed(trials, directory, kept, damaged)
    untested: set[str] = set()
    if references is not None and baseline and by_method.get(baseline):
        extra = {name: seeds for name, seeds in references(by_method[baseline]).items() if seeds}
        untested = set(extra)
        by_method.update(extra)
    block = "last" if selection == "last" else "best_val"
    first = next((r for rs in by_method.values() for r in rs.values()), None)
    tasks = task_metrics(first) if first is not None else []
    notes: list[str] = []
    mixed = len({t.metric for t in tasks}) > 1 and baseline is not None and bool(by_method.get(baseline))
    if mixed:
        values = _delta_m_by_seed(by_method, baseline, block, tasks, notes)  # type: ignore[arg-type]
        at_best_val = _delta_m_by_seed(by_method, baseline, "best_val", tasks, notes)  # type: ignore[arg-type]
        metric, higher, test = DELTA_M, True, DELTA_M
    else:
        values = {m: {s: r["final"][block]["test_mean"] for s, r in rs.items()} for m, rs in by_method.items()}
        at_best_val = {m: {s: r["final"]["best_val"]["test_mean"] for s, r in rs.items()} for m, rs in by_method.items()}
    rows = []
    for method, seeds in by_method.items():
        row = _method_row(method, seeds, values[method], at_best_val[method], higher, missing.get(method, 0), reference.get(method, {}), block,
                          is_reference=method in untested)  # fmt: skip
        if baseline and method != baseline and not row.reference:
            row.test = test
            if result := _compare(values[method], values.get(baseline, {}), test, higher):
                row.t, row.df, row.p, row.pairs = result.t, result.df, result.p_value, result.n
                row.difference, row.ci_low, row.ci_high = result.difference, result.low, result.high
        rows.append(row)
    _correct(rows)
    return Table(rows, metric, higher, tasks, test if baseline else "", notes)


def build_rows(
    trials: list[dict[str, Any]], directory: Path, baseline: str | None, selection: str = "last",
    reference: dict[str, dict[str, float]] | None = None, kept: str | Path | None = None, damaged: list[str] | None = None,
    test: str = "paired",
) -> tuple[list[Row], str, bool]:
    """The table's rows (file order of the methods), the metric's name and whether higher is better (:func:`build_table`)."""
    table = build_table(trials, directory, baseline, selection, reference, kept, damaged, test)
    return table.rows, table.metric, table.higher


@dataclass
class SettingTable:
    """One setting's table in a suite with settings: its rows tested against its own baseline, the
    p values corrected over every setting's comparisons."""

    setting: str
    table: Table


def build_setting_tables(
    trials: list[dict[str, Any]], directory: Path, baseline: str | None, settings: list[str] | dict[str, Any], selection: str = "last",
    kept: str | Path | None = None, damaged: list[str] | None = None, test: str = "paired",
) -> list[SettingTable]:
    """A table per setting that has trials (in the suite's order), each method against the same setting's baseline,
    and Holm's correction over all of them: a sweep of 8 settings x 7 methods asks 56 questions,
    and reading one setting's 7 as if they were the only ones would find a winner by chance."""
    tables: list[SettingTable] = []
    for setting in settings:
        mine = []
        for trial in trials:
            where, run = split_setting_row(trial["run"], bool(settings))
            if where == setting:
                mine.append({**trial, "run": run})
        if mine:  # a scale may train some of the settings only
            tables.append(SettingTable(setting, build_table(mine, directory, baseline, selection, kept=kept, damaged=damaged, test=test)))
    _correct([row for t in tables for row in t.table.rows])
    return tables

"""A suite's table: per method n, mean ± std and best of the metric, t-tests against the baseline.

As the Re-examining paper's Tables 1-2 (mean ± std and best over five seeds) with its appendix A.2
test (one-tailed two-sample t-test that a method beats the baseline, scipy.stats), for the test
metric at the last epoch and at the best-validation epoch, plus each method's training time, and one
line per method that answers the question the table is for: does it beat the baseline, at p < 0.05?
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from routing_rl.analysis.significance import one_tailed_ttest
from routing_rl.core.contracts import metric_label
from routing_rl.suites.progress import epoch_cost
from routing_rl.training.records.results import ResultsError, load_results, results_path


@dataclass
class Row:
    """One method of a suite."""

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


def collect(
    trials: list[dict[str, Any]], directory: Path, kept: str | Path | None = None, damaged: list[str] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int], str, bool]:
    """Finished trials' results by method (from the suite directory, else the suite's kept folder),
    unfinished counts, and the metric's name and direction. A results.json that exists but cannot be
    read is not merely unfinished: its error (naming the file) is appended to ``damaged``."""
    from routing_rl.suites.runner import locate

    by_method: dict[str, list[dict[str, Any]]] = {}
    missing: dict[str, int] = {}
    metric, higher = "", True
    for trial in trials:
        by_method.setdefault(trial["run"], [])
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
        by_method[trial["run"]].append(results)
        metric, higher = results["metric"]["name"], results["metric"]["higher_is_better"]
    return by_method, missing, metric, higher


def _non_finite_score(results: dict[str, Any]) -> str | None:
    """Which final test score of a complete run is NaN or infinite (None when all are finite): the
    trainer stops a diverging run as ``diverged``, so such a "complete" record was altered."""
    for block in ("last", "best_val"):
        value = results["final"][block]["test_mean"]
        if value is not None and not math.isfinite(value):
            return f"final.{block}.test_mean is {value}"
    return None


def build_rows(
    trials: list[dict[str, Any]], directory: Path, baseline: str | None, selection: str = "last",
    reference: dict[str, dict[str, float]] | None = None, kept: str | Path | None = None, damaged: list[str] | None = None,
) -> tuple[list[Row], str, bool]:
    """The table's rows (file order of the methods), the metric's name and whether higher is better.

    ``reference`` holds a paper's numbers per method (``mean``, optional ``std``), shown next to ours.
    """
    reference = reference or {}
    by_method, missing, metric, higher = collect(trials, directory, kept, damaged)
    block = "last" if selection == "last" else "best_val"
    values = {m: [r["final"][block]["test_mean"] for r in rs] for m, rs in by_method.items()}
    sign = 1.0 if higher else -1.0
    rows = []
    for method, results in by_method.items():
        mine = values[method]
        mean, std = _spread(mine)
        best_val_mean, best_val_std = _spread([r["final"]["best_val"]["test_mean"] for r in results])
        t = df = p = None
        base = values.get(baseline or "", [])
        if baseline and method != baseline and len(mine) >= 2 and len(base) >= 2:
            test = one_tailed_ttest([sign * v for v in mine], [sign * v for v in base])
            t, df, p = test.t, test.df, test.p_value
        best = (max if higher else min)(mine) if mine else math.nan
        ref = reference.get(method, {})
        rows.append(Row(method, len(mine), mean, std, best, best_val_mean, best_val_std, t, df, p,
                        sum(_epoch_seconds(r) for r in results), missing.get(method, 0), ref.get("mean"), ref.get("std")))  # fmt: skip
    return rows, metric, higher


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _duration(seconds: float, in_seconds: bool) -> str:
    """A time cell in one unit for the whole column: seconds when every method took under ten
    minutes (a small battery's methods would all read 0.0 min), else minutes."""
    if math.isnan(seconds):
        return "-"
    return f"{seconds:.1f} s" if in_seconds else f"{seconds / 60:.1f} min"


def _spread_cell(mean: float, std: float) -> str:
    """``mean ± std``; one finished seed has no spread (``mean (n = 1)``), none has no mean (``-``)."""
    if math.isnan(mean):
        return "-"
    return f"{_num(mean)} (n = 1)" if math.isnan(std) else f"{_num(mean)} ± {_num(std)}"


def markdown(rows: list[Row], metric: str, higher: bool, baseline: str | None, selection: str, reference_source: str = "") -> str:
    """The table as Markdown, with the test's direction spelled out (and a paper's column if given)."""
    label = metric_label(metric)
    where = "last epoch" if selection == "last" else "best-validation epoch"
    better = "higher" if higher else "lower"
    paper = any(r.reference_mean is not None for r in rows)
    lines = [
        "| method | n | " + (f"{reference_source or 'paper'} mean ± std | " if paper else "")
        + f"test {label} ({where}) mean ± std | best | test {label} at best val. | "
        f"t (> 0: ahead of {baseline or '-'}) | df | p (better than {baseline or '-'}) | time in epochs |",
        "|---|---:|" + ("---:|" if paper else "") + "---:|---:|---:|---:|---:|---:|---:|",
    ]
    in_seconds = all(math.isnan(r.epoch_seconds) or r.epoch_seconds < 600 for r in rows)
    for r in rows:
        p = "baseline" if r.method == baseline else _num(r.p, 4)
        note = f" ({r.missing} unfinished)" if r.missing else ""
        ref = "" if not paper else "not in the paper | " if r.reference_mean is None else (
            f"{_num(r.reference_mean)} ± {_num(r.reference_std)} | " if r.reference_std is not None else f"{_num(r.reference_mean)} | "
        )
        lines.append(
            f"| {r.method}{note} | {r.n} | {ref}{_spread_cell(r.mean, r.std)} | {_num(r.best) or '-'} | {_spread_cell(r.best_val_mean, r.best_val_std)} "
            f"| {_num(r.t, 2)} | {_num(r.df, 0)} | {p} | {_duration(r.epoch_seconds, in_seconds)} |"
        )
    lines.append(f"\n{better} is better; one-tailed two-sample t-test (pooled variance) of each method against {baseline or 'no baseline'}: "
                 "t > 0 when the method is ahead (the Re-examining paper's appendix A.2 reports t with the opposite sign: "
                 "its t = -2.03 is a method ahead of its baseline).")
    if baseline:
        lines.append("")
        lines.extend(verdict(r, baseline) for r in rows if r.method != baseline)
    return "\n".join(lines) + "\n"


SIGNIFICANCE = 0.05
"""The level of a verdict's one-tailed test (the Re-examining paper's appendix A.2)."""


def verdict(row: Row, baseline: str) -> str:
    """One line answering whether ``row``'s method beats the baseline: ``yes`` when the one-tailed
    test rejects "no better" at :data:`SIGNIFICANCE`, ``no`` otherwise, with its p-value."""
    if row.p is None or math.isnan(row.p):
        return f"- {row.method} beats {baseline}: not testable (needs 2 finished seeds of each; has {row.n})"
    answer = "yes" if row.p < SIGNIFICANCE else "no"
    return f"- {row.method} beats {baseline}: {answer}, p = {row.p:.3g}"


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(asdict(rows[0]).keys()) if rows else ["method"])
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return out.getvalue()

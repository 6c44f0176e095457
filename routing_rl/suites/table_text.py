"""A suite table as text: the Markdown table, its note on the test, the verdict lines and the CSV.

:mod:`routing_rl.suites.table` computes the rows (numbers, tests, corrections); this module only
writes them, so that the wording of a verdict and the layout of a column live apart from the
statistics they print.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from typing import Any

from routing_rl.core.contracts import metric_label
from routing_rl.suites.table import DELTA_M, Row, SettingTable, TaskMetric


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _duration(seconds: float, in_seconds: bool) -> str:
    """A time cell in one unit for the whole column: seconds when every method took under ten
    minutes (a small battery's methods would all read 0.0 min), else minutes."""
    if math.isnan(seconds):
        return "-"
    return f"{seconds:.1f} s" if in_seconds else f"{seconds / 60:.1f} min"


def _spread_cell(mean: float, std: float, digits: int = 4) -> str:
    """``mean ± std``; one finished seed has no spread (``mean (n = 1)``), none has no mean (``-``)."""
    if math.isnan(mean):
        return "-"
    return f"{_num(mean, digits)} (n = 1)" if math.isnan(std) else f"{_num(mean, digits)} ± {_num(std, digits)}"


def _difference_cell(row: Row, digits: int) -> str:
    """``+0.0123 [+0.0050, +0.0196]``: the difference to the baseline and its 95% interval."""
    if row.difference is None or math.isnan(row.difference):
        return ""
    low = "" if row.ci_low is None or math.isnan(row.ci_low) else f"{row.ci_low:+.{digits}f}"
    high = "" if row.ci_high is None or math.isnan(row.ci_high) else f"{row.ci_high:+.{digits}f}"
    return f"{row.difference:+.{digits}f} [{low}, {high}]" if low and high else f"{row.difference:+.{digits}f}"


def _parameters_cell(row: Row) -> str:
    """Trainable parameters: one count, or the range over seeds where they differ (sizes drawn per seed)."""
    if row.parameters_min is None or row.parameters_max is None:
        return "-"
    if row.parameters_min == row.parameters_max:
        return f"{row.parameters_min:,}"
    return f"{row.parameters_min:,}-{row.parameters_max:,}"


TIME_LABEL = "train+eval time (all seeds)"
"""The time column: seconds of the method's trials' epochs, training and evaluation, summed over its seeds."""


def _comparisons(count: int) -> str:
    return f"{count} comparison{'' if count == 1 else 's'}"


def _test_note(rows: list[Row], baseline: str, higher: bool, settings: int = 0) -> str:
    """Which test the p column is, over how many seeds, and what t, the interval and Holm mean."""
    tested = [r for r in rows if r.test]
    kind = tested[0].test if tested else ""
    pairs = sorted({r.pairs for r in tested if r.p is not None})
    span = f"{pairs[0]}" if len(pairs) == 1 else f"{pairs[0]}-{pairs[-1]}" if pairs else "no"
    sign = ("t > 0 when the method is ahead (the Re-examining paper's appendix A.2 reports t with the opposite sign: "
            "its t = -2.03 is a method ahead of its baseline)")  # fmt: skip
    if kind == DELTA_M:
        test = (f"p: one-sample one-tailed t-test (scipy.stats.ttest_1samp) that delta-m > 0, over the seeds both the method and "
                f"{baseline} have finished ({span} per method; df = seeds - 1). delta-m = (100/T) sum_t s_t (M_t - M_{baseline},t) "
                f"/ M_{baseline},t over the T tasks (Maninis et al. 2019), s_t = +1 where higher is better, else -1, each seed against the "
                f"same seed's {baseline}, in percent: the tasks have different metrics, so their mean is no summary")  # fmt: skip
        interval = "difference: mean delta-m with its 95% t interval"
    elif kind == "paper-a2":
        test = (f"p: one-tailed two-sample t-test (pooled variance, unpaired; the Re-examining paper's appendix A.2 test) of each "
                f"method against {baseline}; {sign}")  # fmt: skip
        interval = "difference: the method's mean minus the baseline's, with the pooled-variance 95% t interval"
    else:
        test = (f"p: one-tailed paired t-test by seed (scipy.stats.ttest_rel) of each method against {baseline}, over the seeds both "
                f"have finished ({span} pairs per method; df = pairs - 1): a method and {baseline} of one seed share its data "
                f"split and data order; {sign}")  # fmt: skip
        interval = "difference: mean of the per-seed differences (method minus baseline) with its 95% t interval"
    count = max((r.comparisons for r in rows), default=0)
    scope = (f"the suite's {_comparisons(count)} (every method against the {baseline} of its own setting, in all {settings} settings)"
             if settings else f"the table's {_comparisons(count)} (every method against {baseline})")
    holm_note = f"p Holm: p after Holm's step-down correction over {scope}; the verdicts below read it, at p < {SIGNIFICANCE}"
    return f"{'higher' if higher else 'lower'} is better; {test}. {holm_note}. {interval}."


def markdown(
    rows: list[Row], metric: str, higher: bool, baseline: str | None, selection: str, reference_source: str = "",
    tasks: list[TaskMetric] | None = None, notes: list[str] | None = None, settings: int = 0,
) -> str:
    """The table as Markdown, with its tests named under it (and a paper's column if given), the
    verdicts, and a second table of each task's mean (methods as rows, tasks as columns).
    ``settings``: the number of settings of a suite with settings, whose correction spans them all."""
    where = "last epoch" if selection == "last" else "best-validation epoch"
    delta = metric == DELTA_M
    digits = 2 if delta else 4
    label = metric_label(metric)
    main = f"delta-m vs {baseline} (%, {where}) mean ± std" if delta else f"test {label} ({where}) mean ± std"
    at_best = "delta-m at best val." if delta else f"test {label} at best val."
    comparisons = max((r.comparisons for r in rows), default=0)
    paper = any(r.reference_mean is not None for r in rows)
    lines = [
        "| method | n | " + (f"{reference_source or 'paper'} mean ± std | " if paper else "")
        + f"{main} | best | {at_best} | difference to {baseline or '-'} [95% CI] | "
        f"t (> 0: ahead of {baseline or '-'}) | df | p (better than {baseline or '-'}) | p Holm ({_comparisons(comparisons)}) | "
        f"trainable parameters | {TIME_LABEL} |",
        "|---|---:|" + ("---:|" if paper else "") + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    in_seconds = all(math.isnan(r.epoch_seconds) or r.epoch_seconds < 600 for r in rows)
    for r in rows:
        p = "baseline" if r.method == baseline else _num(r.p, 4)
        p_holm = "" if r.method == baseline else _num(r.p_holm, 4)
        note = f" ({r.missing} unfinished)" if r.missing else ""
        ref = "" if not paper else "not in the paper | " if r.reference_mean is None else (
            f"{_num(r.reference_mean)} ± {_num(r.reference_std)} | " if r.reference_std is not None else f"{_num(r.reference_mean)} | "
        )
        lines.append(
            f"| {r.method}{note} | {r.n} | {ref}{_spread_cell(r.mean, r.std, digits)} | {_num(r.best, digits) or '-'} "
            f"| {_spread_cell(r.best_val_mean, r.best_val_std, digits)} | {_difference_cell(r, digits)} "
            f"| {_num(r.t, 2)} | {_num(r.df, 0)} | {p} | {p_holm} | {_parameters_cell(r)} | {_duration(r.epoch_seconds, in_seconds)} |"
        )
    lines.append("")
    if baseline:
        lines.append(_test_note(rows, baseline, higher, settings) + f" {TIME_LABEL}: the seconds of the method's epochs (training and "
                     "evaluation), summed over its finished seeds; a pause between a stop and a resume is not counted.")  # fmt: skip
        lines.extend(f"Note: {n}." for n in notes or [])
        lines.append("")
        lines.extend(verdict(r, baseline) for r in rows if r.method != baseline and not r.reference)
    else:
        lines.append(f"{'higher' if higher else 'lower'} is better; the suite names no baseline, so no method is tested. "
                     f"{TIME_LABEL}: the seconds of the method's epochs (training and evaluation), summed over its finished seeds.")  # fmt: skip
    per_task = per_task_markdown(rows, tasks or [], where)
    return "\n".join(lines) + "\n" + (f"\n{per_task}" if per_task else "")


def per_task_markdown(rows: list[Row], tasks: list[TaskMetric], where: str) -> str:
    """Each task's test metric, mean over the finished seeds: methods as rows, tasks as columns (a
    table that stays readable with 20 tasks, where 20 more columns of the main table would not).
    Where tasks have different metrics each column names its own, with its direction."""
    names = [n for n in next((r.per_task for r in rows if r.per_task), {})]
    if not names:
        return ""
    known = {t.name: t for t in tasks}
    mixed = len({t.metric for t in tasks}) > 1
    if mixed:
        heads = [f"{n} ({metric_label(known[n].metric)}, {'↑' if known[n].higher_is_better else '↓'})" if n in known else n for n in names]
        caption = f"Test metric per task ({where}), mean over the finished seeds (↑: higher is better, ↓: lower is better):"
    else:
        heads = names
        metric = tasks[0] if tasks else None
        caption = (f"Test {metric_label(metric.metric)} per task ({where}), mean over the finished seeds"
                   f" ({'higher' if metric.higher_is_better else 'lower'} is better):") if metric else f"Test metric per task ({where}):"  # fmt: skip
    lines = [caption, "", "| method | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for r in rows:
        lines.append(f"| {r.method} | " + " | ".join(_num(r.per_task.get(n)) or "-" for n in names) + " |")
    return "\n".join(lines) + "\n"


SIGNIFICANCE = 0.05
"""The level of a verdict's one-tailed test, after Holm's correction over the table's comparisons."""


def verdict(row: Row, baseline: str) -> str:
    """:func:`answer` with the seeds in which the method did not route, which the answer is then about."""
    flags = "; ".join(f"{name} in {count} of {row.n} seeds" for name, count in row.flags.items())
    return answer(row, baseline) + (f"; warning: {flags}" if flags else "")


def answer(row: Row, baseline: str) -> str:
    """One line answering whether ``row``'s method beats the baseline: ``yes`` when the one-tailed
    test, corrected over the table's comparisons (Holm), rejects "no better" at :data:`SIGNIFICANCE`,
    ``no`` otherwise, with the corrected and the uncorrected p."""
    what = " by delta-m" if row.test == DELTA_M else ""
    if row.p is None:
        needs = "2 finished seeds of each" if row.test == "paper-a2" else f"2 seeds finished by both it and {baseline}"
        return f"- {row.method} beats {baseline}{what}: not testable (needs {needs}; has {row.n})"
    if math.isnan(row.p):
        return f"- {row.method} beats {baseline}{what}: not testable (the values do not vary, so there is no spread to test against)"
    corrected = row.p_holm if row.p_holm is not None and not math.isnan(row.p_holm) else row.p
    answer = "yes" if corrected < SIGNIFICANCE else "no"
    if row.comparisons > 1:
        return (f"- {row.method} beats {baseline}{what}: {answer}, p = {corrected:.3g} "
                f"(Holm-corrected over {row.comparisons} comparisons; uncorrected {row.p:.3g})")  # fmt: skip
    return f"- {row.method} beats {baseline}{what}: {answer}, p = {row.p:.3g}" + (" (one comparison: nothing to correct)" if row.comparisons else "")


def to_csv(rows: list[Row]) -> str:
    """The rows as CSV: every field of :class:`Row`, each task's mean as a ``test <task>`` column."""
    tasks = list(next((r.per_task for r in rows if r.per_task), {}))
    out = io.StringIO()
    base = [k for k in asdict(rows[0]) if k != "per_task"] if rows else ["method"]
    writer = csv.DictWriter(out, fieldnames=base + [f"test {t}" for t in tasks])
    writer.writeheader()
    for r in rows:
        record = {k: v for k, v in asdict(r).items() if k != "per_task"}
        record.update({f"test {t}": r.per_task.get(t, "") for t in tasks})
        writer.writerow(record)
    return out.getvalue()


def settings_markdown(tables: list[SettingTable], options: dict[str, dict[str, Any]], baseline: str | None, selection: str) -> str:
    """A suite with settings as Markdown: one section per setting, its options under the heading,
    then its table (:func:`markdown`) with the correction's span named."""
    parts = []
    for entry in tables:
        table = entry.table
        given = ", ".join(f"{k} = {v}" for k, v in _flat(options.get(entry.setting, {})).items())
        parts.append(f"## setting {entry.setting}" + (f" ({given})" if given else "") + "\n\n"
                     + markdown(table.rows, table.metric, table.higher, baseline, selection, "", table.tasks, table.notes, len(tables)))
    return "\n".join(parts)


def _flat(options: dict[str, Any]) -> dict[str, Any]:
    """A setting's options with its ``env_options`` / ``agent_options`` spelled out key by key."""
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def settings_csv(tables: list[SettingTable]) -> str:
    """Every setting's rows as one CSV (:func:`to_csv`'s columns), a ``setting`` column first; a task
    column that one setting lacks stays empty in its rows."""
    records = [{"setting": entry.setting, **record} for entry in tables for record in csv.DictReader(io.StringIO(to_csv(entry.table.rows)))]
    fields = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields or ["setting"])
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()

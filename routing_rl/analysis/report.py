"""``routing-rl analyze RUNS...``: task similarity, grouping recovery and cross-seed agreement of runs.

One command answers the three questions of the Re-examining paper's analysis for finished runs:
which tasks each run's router treats alike (Figure 2), whether the induced grouping matches the
true task groups better than chance (for suites that know them), and whether runs with different
seeds agree (Figure 4). :func:`analyze_runs` builds a JSON-able report; the command prints it as
text (or as JSON with ``--json``). Attach it to the main group with ``main.add_command(analyze)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routing_rl.analysis.gate_routes import format_open
from routing_rl.analysis.grouping import grouping_test
from routing_rl.analysis.similarity import (
    RunSummary,
    compare_runs,
    cosine_similarity_matrix,
    load_run,
    mean_by_layer,
    route_partition,
)


def grouping_report(run: RunSummary, groups: Sequence[int], samples: int, seed: int) -> list[dict[str, Any]]:
    """ARI of each routed layer's (and the whole route's) task partition against ``groups``."""
    if len(groups) != run.num_tasks:
        raise ValueError(f"{run.name}: {len(groups)} groups given for {run.num_tasks} tasks")
    rows: list[dict[str, Any]] = []
    for layer, name in [*enumerate(run.layer_names), (None, "route")]:
        labels = route_partition(run.routes, layer)
        blocks = run.policies[layer].shape[1] if layer is not None else None
        test = grouping_test(labels, groups, num_blocks=blocks, samples=samples, seed=seed)
        rows.append({"layer": name, "partition": labels.tolist(), **test.to_dict()})
    return rows


def blocks_in_use(run: RunSummary) -> list[dict[str, Any]]:
    """Per routed layer, how many of its blocks the tasks' greedy routes reach, of how many.

    The short answer to the Re-examining paper's Figure 2 question (did the router learn to share,
    or "no sharing"?): ten tasks on ten blocks of every layer share nothing; fewer blocks mean
    tasks grouped onto shared ones.
    """
    return [{"layer": name, "used": len(set(run.routes[:, d].tolist())), "blocks": int(run.policies[d].shape[1])}
            for d, name in enumerate(run.layer_names)]  # fmt: skip


def run_report(run: RunSummary, groups: Sequence[int] | None, samples: int, seed: int) -> dict[str, Any]:
    """Similarity matrices per layer, routes, and (if groups are known) the grouping tests of one run."""
    groups = groups if groups is not None else run.groups_from_task_names()
    return {
        "name": run.name,
        "task_names": run.task_names,
        "layers": run.layer_names,
        "routes": run.routes.tolist(),
        "open_gates": run.open_gates,
        "blocks_in_use": blocks_in_use(run),
        # a network with no routed layer (shared bottom) sends every task down its one path
        "distinct_routes": len(np.unique(run.routes, axis=0)) if run.routes.size else min(run.num_tasks, 1),
        "similarity": [cosine_similarity_matrix(p).tolist() for p in run.policies],
        "groups": list(groups) if groups is not None else None,
        "grouping": grouping_report(run, groups, samples, seed) if groups is not None else None,
    }


def analyze_runs(
    paths: Sequence[str | Path], groups: Sequence[int] | None = None, samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The whole report for a set of runs (directories or results.json files)."""
    runs = [load_run(p) for p in paths]
    pairs = compare_runs(runs, samples, seed) if len(runs) > 1 else []
    layer_names = runs[0].layer_names if runs else []
    means = mean_by_layer(pairs)
    return {
        "runs": [run_report(r, groups, samples, seed) for r in runs],
        "pairs": [{**p.to_dict(), "layer_name": _layer_name(layer_names, p.layer)} for p in pairs],
        "pair_means": [{"layer": _layer_name(layer_names, k), **v} for k, v in means.items()],
    }


def _layer_name(layer_names: Sequence[str], layer: int | None) -> str:
    """A routed layer's name, or ``route`` for the whole route (``layer`` None)."""
    return "route" if layer is None else layer_names[layer]


def _agreement(row: dict[str, Any], precision: int) -> str:
    """``r .., |diff| .., ARI ..`` for a layer; ARI only for whole routes (they have no policy matrix)."""
    ari = f"ARI {_fmt(row['route_ari'], precision)}"
    if row.get("trivial"):
        ari += f" (trivially: {row['trivial']})"
    elif row.get("trivial_pairs"):
        ari += f" ({row['trivial_pairs']} of {row['pairs']} pairs trivially 1)"
    if row.get("layer_name", row.get("layer")) == "route":
        return ari
    mantel = f" (Mantel p {row['p_mantel']:.3g})" if "p_mantel" in row and not _missing(row["p_mantel"]) else ""
    return f"r {_fmt(row['correlation'], precision)}{mantel}, |diff| {_fmt(row['mean_abs_difference'], precision)}, {ari}"


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(x: float | None, precision: int) -> str:
    return "nan" if _missing(x) else f"{x:.{precision}f}"


def task_label(index: int, task_names: Sequence[str]) -> str:
    """What the text report calls a task: its name, or ``task <index>`` where the run records none."""
    name = task_names[index] if index < len(task_names) else ""
    return name or f"task {index}"


def _matrix_lines(matrix: Sequence[Sequence[float]], precision: int, task_names: Sequence[str]) -> list[str]:
    """A similarity matrix with a row per task, headed by its index and name; the columns go by the
    rows' index, since names as wide as a column of numbers would not be read."""
    width = precision + 3
    labels = [f"{i:>3} {task_label(i, task_names)}" for i in range(len(matrix))]
    margin = max((len(label) for label in labels), default=0) + 1
    header = " " * margin + " ".join(f"{j:>{width}}" for j in range(len(matrix)))
    rows = [f"{label:<{margin}}" + " ".join(f"{v:>{width}.{precision}f}" for v in row) for label, row in zip(labels, matrix)]
    return [header, *rows]


def format_run(run: dict[str, Any], precision: int) -> list[str]:
    """Text for one run: its routes (a gated router's open gates), its similarity matrices, and its grouping tests, tasks by name."""
    names = run["task_names"]
    lines = [f"== {run['name']}  ({len(names)} tasks, routed layers: {', '.join(run['layers'])})"]
    if run.get("open_gates") is not None:  # a gated router reads every open block, not its greedy one
        lines.append("open gates (task: blocks per layer): " + "; ".join(f"{task_label(t, names)}: {format_open(g)}" for t, g in enumerate(run["open_gates"])))
    else:
        lines.append("routes (task: blocks): " + "; ".join(f"{task_label(t, names)}: {r}" for t, r in enumerate(run["routes"])))
    if run["blocks_in_use"]:
        used = ", ".join(f"{b['layer']} {b['used']} of {b['blocks']}" for b in run["blocks_in_use"])
        lines.append(f"blocks in use: {used}; distinct routes: {run['distinct_routes']} for {len(run['task_names'])} tasks")
    for name, matrix in zip(run["layers"], run["similarity"]):
        lines.append(f"-- cosine similarity of the task policies at {name} (columns: the rows' task numbers)")
        lines.extend(_matrix_lines(matrix, precision, names))
    if run["grouping"] is not None:
        lines.append(f"-- grouping vs. true groups {run['groups']} (in task order: {', '.join(task_label(t, names) for t in range(len(names)))})")
        for g in run["grouping"]:
            lines.append(
                f"   {g['layer']:>8}: ARI {_fmt(g['ari'], precision)}"
                f" | permuted mean {_fmt(g['expected_permutation'], precision)} p={g['p_permutation']:.3g}"
                f" | random routes mean {_fmt(g['expected_random'], precision)} p={g['p_random']:.3g}"
            )
    return lines


def format_report(report: dict[str, Any], precision: int = 2) -> str:
    """The report as plain text."""
    lines: list[str] = []
    for run in report["runs"]:
        lines.extend(format_run(run, precision))
        lines.append("")
    if report["pairs"]:
        lines.append("== agreement between runs (similarity matrices: Pearson r with its one-tailed Mantel p, mean |diff|; routes: ARI)")
        for p in report["pairs"]:
            lines.append(f"   {p['run_a']} vs {p['run_b']} {p['layer_name']:>8}: {_agreement(p, precision)}")
        lines.append("   mean over pairs:")
        for m in report["pair_means"]:
            lines.append(f"   {m['layer']:>8}: {_agreement(m, precision)}")
    return "\n".join(lines).rstrip() + "\n"


def json_safe(obj: Any) -> Any:
    """NaN becomes null so that the JSON output is standard."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


__all__ = ["analyze_runs", "format_report", "json_safe"]

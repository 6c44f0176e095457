"""Which tasks does a router treat alike, and do runs with different seeds agree on it?

The Re-examining paper reads learned routing through the cosine similarity of the tasks' policy
rows (Figure 2: one ``[T, T]`` matrix per routed layer) and asks whether retraining with another
seed groups the same tasks together (Figure 4, section 4.3): if the router discovers which tasks
ought to share, the similarity structure should be reproducible. This module computes the
matrices from the ``results.json`` a run writes (``epochs[-1].routing.policy``: per routed layer a
``[T][M]`` list; ``routing.routes``: ``[T][L]``) and compares runs pairwise: the Pearson correlation
and the mean absolute difference of their task-similarity matrices (over task pairs, diagonal
excluded), with a Mantel permutation test of that correlation (is the agreement more than two
unrelated groupings of the same sizes would show?), and the adjusted Rand index of the task
partitions their routes induce.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routing_rl.analysis.grouping import adjusted_rand_index, trivial_agreement
from routing_rl.core.seeding import numpy_rng
from routing_rl.metrics.routing import cosine_similarity_matrix
from routing_rl.training.records.results import RESULTS_NAME

GROUP_IN_TASK_NAME = re.compile(r"group(\d+)$")
"""Task names of ``synthetic-groups`` end in ``-group<k>``; the true groups are read from them."""


def policy_similarities(policies: Sequence[Sequence[Sequence[float]]] | Sequence[np.ndarray]) -> np.ndarray:
    """One cosine-similarity matrix per routed layer: ``[L, T, T]``."""
    return np.stack([cosine_similarity_matrix(p) for p in policies]) if len(policies) else np.zeros((0, 0, 0))


def route_partition(routes: Sequence[Sequence[int]] | np.ndarray, layer: int | None = None) -> np.ndarray:
    """Cluster label per task: its block at ``layer``, or (``layer=None``) its whole route.

    With ``layer=None`` two tasks are in one cluster only if they share every routed block.
    """
    table = np.asarray(routes, dtype=np.int64)
    if table.ndim != 2:
        raise ValueError(f"routes are a [tasks, layers] table, got shape {table.shape}")
    if layer is not None:
        return table[:, layer].copy()
    _, labels = np.unique(table, axis=0, return_inverse=True)
    return labels.reshape(-1)


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square matrix (each task pair once)."""
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return matrix[rows, cols]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (e.g. every task on one block)."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class RunSummary:
    """What the analyses need from one run's ``results.json``."""

    name: str
    policies: list[np.ndarray]
    routes: np.ndarray
    task_names: list[str]
    layer_names: list[str]
    open_gates: list[list[list[int]]] | None = None
    """A gated router's open blocks per task and layer (its greedy ``routes`` hide them); None for a hard router."""

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def groups_from_task_names(self) -> list[int] | None:
        """True groups parsed from task names ending in ``group<k>`` (synthetic-groups), else None."""
        matches = [GROUP_IN_TASK_NAME.search(n) for n in self.task_names]
        if not matches or any(m is None for m in matches):
            return None
        return [int(m.group(1)) for m in matches if m is not None]


ANALYZE_MAX_TASKS = 100
"""The most tasks of a run that ``analyze`` reads: it prints a task-by-task similarity matrix per
routed layer and permutes it for the Mantel tests. The built-in suites have at most 20 tasks."""

ANALYZE_MAX_LAYERS = 32
"""The most routed layers of a run that ``analyze`` reads: each layer costs a grouping test per run
and a Mantel test per pair of runs (about a second each). The papers' networks route at most a
handful of layers."""


def load_run(path: str | Path) -> RunSummary:
    """Read the last epoch's policies and the final routes of a router run (directory or results.json)."""
    from routing_rl.analysis.gate_routes import open_gates
    from routing_rl.training.records.results import ResultsError, load_results, results_path

    file = results_path(path)
    results = load_results(file)
    if not results["epochs"]:
        raise ResultsError(f"{file} holds no finished epoch")
    routing = results["epochs"][-1].get("routing")
    if not isinstance(routing, dict) or "policy" not in routing or "routes" not in routing:
        raise ResultsError(f"{file}: no routing policies in its epochs; analyze reads runs of routers, not of multi-task models")
    task_names = list(results["env"]["task_names"])
    layers = list(results["learner"].get("routed_layers") or [f"layer{d}" for d in range(len(routing["policy"]))])
    if len(task_names) > ANALYZE_MAX_TASKS:
        raise ResultsError(f"{file}: {len(task_names)} tasks, more than the {ANALYZE_MAX_TASKS} that analyze compares")
    if len(layers) > ANALYZE_MAX_LAYERS:
        raise ResultsError(f"{file}: {len(layers)} routed layers, more than the {ANALYZE_MAX_LAYERS} that analyze compares")
    name = file.parent.name if file.name == RESULTS_NAME else file.stem
    try:
        return RunSummary(
            name=name,
            policies=[np.asarray(p, dtype=np.float64) for p in routing["policy"]],
            routes=np.asarray(routing["routes"], dtype=np.int64).reshape(len(task_names), len(layers)),
            task_names=task_names,
            layer_names=layers,
            open_gates=open_gates(results["learner"], routing),
        )
    except (ValueError, TypeError) as exc:
        raise ResultsError(f"{file}: field epochs[-1].routing does not fit {len(task_names)} tasks and {len(layers)} layers ({exc})") from None


@dataclass(frozen=True)
class PairComparison:
    """Agreement of two runs at one routed layer (``layer`` None: whole routes, ARI only)."""

    run_a: str
    run_b: str
    layer: int | None
    correlation: float
    mean_abs_difference: float
    route_ari: float
    p_mantel: float = float("nan")
    trivial: str = ""
    """Set when the two route partitions agree only trivially (see ``trivial_agreement``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mantel_p_value(a: np.ndarray, b: np.ndarray, samples: int, seed: int) -> float:
    """One-tailed Mantel test of two task-similarity matrices: the share of task relabellings of
    ``b`` (rows and columns permuted together) whose correlation with ``a`` is at least the observed
    one. Two seeds that group tasks alike by chance alone come out near 0.5; NaN when the observed
    correlation is undefined (a constant matrix)."""
    pairs_a = upper_triangle(a)
    observed = pearson(pairs_a, upper_triangle(b))
    if np.isnan(observed):
        return float("nan")
    rng = numpy_rng(seed)
    null = []
    for _ in range(samples):
        order = rng.permutation(b.shape[0])
        null.append(pearson(pairs_a, upper_triangle(b[np.ix_(order, order)])))
    values = np.nan_to_num(np.asarray(null), nan=-np.inf)
    return float((1 + np.count_nonzero(values >= observed - 1e-12)) / (1 + samples))


def compare_layer(a: RunSummary, b: RunSummary, layer: int, samples: int = 1000, seed: int = 0) -> PairComparison:
    """Correlation and mean absolute difference of the similarity matrices (with the Mantel test's
    p-value over ``samples`` task relabellings), and the ARI of the routes, at ``layer``."""
    ma = cosine_similarity_matrix(a.policies[layer])
    mb = cosine_similarity_matrix(b.policies[layer])
    sa, sb = upper_triangle(ma), upper_triangle(mb)
    la, lb = route_partition(a.routes, layer), route_partition(b.routes, layer)
    return PairComparison(
        a.name, b.name, layer,
        correlation=pearson(sa, sb),
        mean_abs_difference=float(np.abs(sa - sb).mean()) if sa.size else 0.0,
        route_ari=adjusted_rand_index(la, lb),
        p_mantel=mantel_p_value(ma, mb, samples, seed),
        trivial=trivial_agreement(la, lb),
    )  # fmt: skip


def compare_runs(runs: Sequence[RunSummary], samples: int = 1000, seed: int = 0) -> list[PairComparison]:
    """Every pair of runs at every routed layer, plus their whole-route ARI (``layer=None``)."""
    out: list[PairComparison] = []
    for a, b in itertools.combinations(runs, 2):
        if a.num_tasks != b.num_tasks or len(a.policies) != len(b.policies):
            raise ValueError(f"runs {a.name} and {b.name} differ in tasks or routed layers; they cannot be compared")
        out.extend(compare_layer(a, b, d, samples, seed) for d in range(len(a.policies)))
        la, lb = route_partition(a.routes), route_partition(b.routes)
        whole = adjusted_rand_index(la, lb)
        out.append(PairComparison(a.name, b.name, None, float("nan"), float("nan"), whole, trivial=trivial_agreement(la, lb)))
    return out


def mean_by_layer(pairs: Sequence[PairComparison]) -> dict[int | None, dict[str, float]]:
    """Average of each agreement measure over run pairs, per layer (NaNs ignored), with how many of
    the pairs agree only trivially (``trivial_pairs``): their ARI of 1 lifts the mean ARI without
    saying that the runs group tasks alike."""
    out: dict[int | None, dict[str, float]] = {}
    for layer in dict.fromkeys(p.layer for p in pairs):
        chosen = [p for p in pairs if p.layer == layer]
        out[layer] = {
            key: _nanmean([getattr(p, key) for p in chosen])
            for key in ("correlation", "mean_abs_difference", "route_ari")
        }
        out[layer]["pairs"] = len(chosen)
        out[layer]["trivial_pairs"] = sum(1 for p in chosen if p.trivial)
    return out


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


__all__ = [
    "PairComparison",
    "RunSummary",
    "compare_layer",
    "compare_runs",
    "cosine_similarity_matrix",
    "load_run",
    "mantel_p_value",
    "mean_by_layer",
    "pearson",
    "policy_similarities",
    "route_partition",
    "upper_triangle",
]

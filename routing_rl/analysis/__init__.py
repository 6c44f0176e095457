"""Analyses of trained routers: task similarity, grouping recovery, agreement across seeds.

These read the ``results.json`` files the trainer writes, so they work on finished runs without
loading any model. The ``analyze`` command that prints them lives in :mod:`routing_rl.cli.analyze`.
"""

from __future__ import annotations

from routing_rl.analysis.grouping import (
    GroupingTest,
    adjusted_rand_index,
    contingency_table,
    grouping_test,
    trivial_agreement,
)
from routing_rl.analysis.similarity import (
    PairComparison,
    RunSummary,
    compare_runs,
    cosine_similarity_matrix,
    load_run,
    mantel_p_value,
    mean_by_layer,
    policy_similarities,
    route_partition,
)

__all__ = [
    "GroupingTest",
    "PairComparison",
    "RunSummary",
    "adjusted_rand_index",
    "compare_runs",
    "contingency_table",
    "cosine_similarity_matrix",
    "grouping_test",
    "load_run",
    "mantel_p_value",
    "mean_by_layer",
    "policy_similarities",
    "route_partition",
    "trivial_agreement",
]

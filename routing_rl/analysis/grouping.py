"""Does a router group the tasks the way the data are grouped? Adjusted Rand index plus a null model.

On ``synthetic-groups`` the tasks of a group share a teacher, so a router that "discovers which
tasks should share" (the Re-examining paper, section 4.3) should send tasks of one group to the
same block and tasks of different groups apart. Each routed layer induces a partition of the
tasks (tasks on the same block form a cluster); we compare it with the true groups by the adjusted
Rand index (ARI, Hubert & Arabie 1985), 1 for identical partitions and 0 in expectation for
unrelated ones, and calibrate "better than chance" two ways: a permutation test (shuffle which
task got which cluster, keeping the cluster sizes) and uniformly random routes (what fixed random
routing would give). No scikit-learn: the ARI is computed from the contingency table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from routing_rl.core.seeding import numpy_rng

Labels = Sequence[int] | np.ndarray


def _pairs(counts: np.ndarray) -> float:
    """Sum of ``C(n, 2)`` over an array of counts."""
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1.0) / 2.0).sum())


def contingency_table(labels_a: Labels, labels_b: Labels) -> np.ndarray:
    """``n_ij``: how many items are in cluster ``i`` of ``labels_a`` and cluster ``j`` of ``labels_b``."""
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two label vectors of the same length, got shapes {a.shape} and {b.shape}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max(initial=-1) + 1, ib.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def adjusted_rand_index(labels_a: Labels, labels_b: Labels) -> float:
    """ARI = (Index - E[Index]) / (max Index - E[Index]) with Index = sum_ij C(n_ij, 2) (Hubert & Arabie 1985).

    ``E[Index] = sum_i C(a_i, 2) * sum_j C(b_j, 2) / C(n, 2)`` and ``max Index = (sum_i C(a_i, 2) +
    sum_j C(b_j, 2)) / 2``. When the denominator vanishes (both partitions put everything in one
    cluster, or both make every item its own cluster) the partitions agree and the ARI is 1.
    """
    table = contingency_table(labels_a, labels_b)
    n = int(table.sum())
    if n < 2:
        return 1.0
    index = _pairs(table)
    sum_a = _pairs(table.sum(axis=1))
    sum_b = _pairs(table.sum(axis=0))
    expected = sum_a * sum_b / (n * (n - 1) / 2.0)
    maximum = (sum_a + sum_b) / 2.0
    if np.isclose(maximum, expected):
        return 1.0
    return float((index - expected) / (maximum - expected))


def trivial_agreement(labels_a: Labels, labels_b: Labels) -> str:
    """Why two partitions agree trivially, or ``""``: both put every item apart, or both put all
    items together. Their ARI is then 1 by definition, which says only that neither run shares (or
    that both share everything), not that they group alike; reports say so next to the number."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.size < 2 or a.shape != b.shape:
        return ""
    sizes_a, sizes_b = np.unique(a).size, np.unique(b).size
    if sizes_a == sizes_b == a.size:
        return "both put every task apart"
    if sizes_a == sizes_b == 1:
        return "both put all tasks together"
    return ""


@dataclass(frozen=True)
class GroupingTest:
    """How well a task partition matches the true groups, and how often chance does as well.

    ``p_permutation``: share of label permutations (cluster sizes kept) with an ARI at least the
    observed one; ``expected_random`` and ``p_random``: mean ARI of, and share at least as good
    among, uniformly random routes over ``num_blocks`` blocks. p-values use the ``(1 + k) / (1 + n)``
    estimate, so they are never 0.
    """

    ari: float
    expected_permutation: float
    p_permutation: float
    expected_random: float
    p_random: float
    samples: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _p_value(null: np.ndarray, observed: float) -> float:
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + null.size))


def grouping_test(
    labels: Labels, groups: Labels, num_blocks: int | None = None, samples: int = 1000, seed: int = 0
) -> GroupingTest:
    """ARI of ``labels`` against ``groups`` with a permutation test and a random-routes baseline.

    ``num_blocks`` (default: the number of distinct labels, at least 2) is the number of blocks
    a random route picks from.
    """
    labels_arr = np.asarray(labels)
    groups_arr = np.asarray(groups)
    if samples < 1:
        raise ValueError(f"samples must be positive, got {samples}")
    observed = adjusted_rand_index(labels_arr, groups_arr)
    rng = numpy_rng(seed)
    permuted = np.array([adjusted_rand_index(rng.permutation(labels_arr), groups_arr) for _ in range(samples)])
    blocks = num_blocks if num_blocks is not None else max(len(np.unique(labels_arr)), 2)
    routes = rng.integers(0, blocks, size=(samples, labels_arr.shape[0]))
    random = np.array([adjusted_rand_index(route, groups_arr) for route in routes])
    return GroupingTest(
        ari=observed,
        expected_permutation=float(permuted.mean()),
        p_permutation=_p_value(permuted, observed),
        expected_random=float(random.mean()),
        p_random=_p_value(random, observed),
        samples=samples,
    )


__all__ = ["GroupingTest", "adjusted_rand_index", "contingency_table", "grouping_test", "trivial_agreement"]

"""Routing statistics: the perplexity of routing policies (the Re-examining paper's Figure 1) and the
cosine similarity of the tasks' policy rows (its Figures 2 and 4), recorded every epoch while training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row of a probability matrix: M for a uniform policy over M blocks, 1 for a fixed route."""
    p = probs.clamp_min(0)
    p = p / p.sum(dim=-1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)
    return torch.exp(entropy)


def cosine_similarity_matrix(policy: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``S[i, j] = <p_i, p_j> / (|p_i| |p_j|)`` for the rows of a ``[T, M]`` policy: ``[T, T]``.

    Probability rows are non-negative, so the values lie in [0, 1]: 1 for identical routing
    distributions, 0 for tasks that never pick a common block. A zero row is similar to nothing.
    """
    p = np.asarray(policy, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"a policy is a [tasks, blocks] matrix, got shape {p.shape}")
    norms = np.linalg.norm(p, axis=1)
    unit = np.divide(p, norms[:, None], out=np.zeros_like(p), where=norms[:, None] > 0)
    return np.clip(unit @ unit.T, -1.0, 1.0)

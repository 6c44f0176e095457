"""Ranking metrics for multi-label tasks: AP@K per example, MAP@K per task, macro/micro averages.

SNR paper, section "Evaluation Metrics": each YouTube8M task is multi-label, so accuracy is the
mean average precision at 10 (most examples have fewer than 10 positives per task). The overall
score averages the tasks' MAP@10 either uniformly (Macro Average-MAP@10) or weighted by each
task's number of examples (Micro Average-MAP@10).

Definitions used here, for one example with scores over C labels ranked in decreasing order::

    AP@K = 1 / min(K, #positives) * sum_{k=1..K} precision@k * rel_k

where ``rel_k`` is 1 if the label at rank ``k`` is positive and ``precision@k`` is the fraction of
positives among the top ``k``. AP@K is undefined for an example without positives in a task: such
examples are excluded from that task's MAP, and a task's "number of examples" (the micro weight)
counts only the examples that have a positive in it. Equal scores are ranked by label index
(stable sort), so results are deterministic. Everything is vectorised (one sort, no Python loop
over examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def _as_tensor(a: ArrayLike) -> Tensor:
    """A tensor on the device it is already on (numpy input: on the CPU)."""
    return a.detach() if isinstance(a, Tensor) else torch.from_numpy(np.asarray(a))


def average_precision_at_k(
    scores: ArrayLike, labels: ArrayLike, k: int = 10, mask: ArrayLike | None = None
) -> ArrayLike:
    """AP@K of every example (last axis = labels): ``[..., C] -> [...]``, float64.

    ``labels`` are 0/1 (anything > 0 is positive). ``mask`` (bool, broadcastable to ``[..., C]``)
    removes columns: they are ranked last and never count as positives (padded labels of tasks
    with fewer than ``C_max`` labels). Examples without positives get 0 (see :func:`map_at_k`).
    Returns a numpy array for numpy input, a tensor otherwise, computed on the device of
    ``scores``: the routing reward of a multi-label episode calls it on the training device.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    s = _as_tensor(scores)
    y = _as_tensor(labels).to(s.device) > 0
    if s.shape != y.shape:
        raise ValueError(f"scores {tuple(s.shape)} and labels {tuple(y.shape)} must have the same shape")
    s = s.to(torch.float64)
    if mask is not None:
        m = _as_tensor(mask).to(device=s.device, dtype=torch.bool)
        s = s.masked_fill(~m, float("-inf"))
        y = y & m
    top = min(k, s.shape[-1])
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices[..., :top]
    rel = torch.gather(y, -1, order).to(torch.float64)
    precision = rel.cumsum(dim=-1) / torch.arange(1, top + 1, dtype=torch.float64, device=s.device)
    positives = y.sum(dim=-1)
    denominator = positives.clamp(max=k).clamp(min=1).to(torch.float64)
    ap = (precision * rel).sum(dim=-1) / denominator
    return ap.numpy() if isinstance(scores, np.ndarray) else ap


@dataclass(frozen=True)
class MapAtK:
    """MAP@K of each task and its averages.

    ``per_task[t]`` is NaN when no example has a positive in task ``t``; ``counts[t]`` is the
    number of examples with a positive in task ``t``. ``macro`` is the plain mean over tasks with
    ``counts > 0``; ``micro`` the mean weighted by ``counts``.
    """

    k: int
    per_task: np.ndarray
    counts: np.ndarray

    @property
    def macro(self) -> float:
        valid = self.counts > 0
        return float(self.per_task[valid].mean()) if valid.any() else float("nan")

    @property
    def micro(self) -> float:
        total = self.counts.sum()
        return float((np.nan_to_num(self.per_task) * self.counts).sum() / total) if total > 0 else float("nan")


class MapAccumulator:
    """Accumulates per-task AP@K sums over batches, for evaluating splits too large for one call."""

    def __init__(self, num_tasks: int, k: int = 10, label_mask: ArrayLike | None = None) -> None:
        self.k = k
        self.label_mask = None if label_mask is None else _as_tensor(label_mask).cpu().to(torch.bool)
        self.sums = np.zeros(num_tasks, dtype=np.float64)
        self.counts = np.zeros(num_tasks, dtype=np.int64)

    def update(self, scores: ArrayLike, labels: ArrayLike) -> None:
        """Add a batch: ``scores`` and ``labels`` ``[B, T, C]`` (on any device; sums are kept on the CPU)."""
        s, y = _as_tensor(scores).cpu(), _as_tensor(labels).cpu()
        if s.dim() != 3 or s.shape[1] != self.sums.size:
            raise ValueError(f"expected scores [B, {self.sums.size}, C], got {tuple(s.shape)}")
        ap = cast(Tensor, average_precision_at_k(s, y, self.k, self.label_mask))
        positive = y > 0
        if self.label_mask is not None:
            positive = positive & self.label_mask
        has_positive = positive.any(dim=-1)
        self.sums += (ap * has_positive).sum(dim=0).numpy()
        self.counts += has_positive.sum(dim=0).numpy()

    def result(self) -> MapAtK:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_task = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)
        return MapAtK(self.k, per_task, self.counts.copy())


def map_at_k(scores: ArrayLike, labels: ArrayLike, k: int = 10, label_mask: ArrayLike | None = None) -> MapAtK:
    """MAP@K per task of ``scores``/``labels`` ``[N, T, C]`` with macro and micro averages.

    ``label_mask`` (bool ``[T, C]``) marks the real label columns of each task.
    """
    s = _as_tensor(scores)
    acc = MapAccumulator(s.shape[1] if s.dim() == 3 else 0, k, label_mask)
    acc.update(s, labels)
    return acc.result()

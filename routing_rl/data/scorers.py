"""Scorers: how one split's outputs become per-task scores, one per kind of task.

A task family (:mod:`routing_rl.data.families`) turns a batch into losses; its scorer accumulates
a split's scores over batches (accuracy, MAP@K, MSE, or each task's own for mixed tasks) into the
:class:`~routing_rl.core.contracts.SplitScore` that results and tables record. Kept apart from the
families because scoring is read (every evaluation) where the families' losses are trained.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from routing_rl.core.contracts import Batch, SplitScore
from routing_rl.core.objectives import KIND_CODES, label_cross_entropy, masked_task_loss, mixed_task_loss, observed, squared_error
from routing_rl.metrics import MapAccumulator

CLASSIFICATION, REGRESSION, MULTILABEL = (KIND_CODES[kind] for kind in ("classification", "regression", "multilabel"))
"""The kind codes of a mixed problem's tasks, as :data:`~routing_rl.core.objectives.KIND_CODES` numbers them."""


def nanmean(values: list[float]) -> float:
    """The mean of the values that are not NaN (a task without a scored row in a split is NaN), NaN if none."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


class Scorer(ABC):
    """Accumulates one split's per-task scores over batches."""

    @abstractmethod
    def update(self, outputs: Tensor, batch: Batch) -> None: ...

    @abstractmethod
    def result(self) -> SplitScore: ...


class AccuracyScorer(Scorer):
    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks
        self.hits: list[Tensor] = []
        self.tasks: list[Tensor] = []
        self.loss_sum = 0.0

    def update(self, outputs: Tensor, batch: Batch) -> None:
        assert batch.tasks is not None
        self.hits.append((outputs.argmax(1) == batch.y).cpu())
        self.tasks.append(batch.tasks.cpu())
        self.loss_sum += float(F.cross_entropy(outputs, batch.y, reduction="none").sum())

    def result(self) -> SplitScore:
        hit = torch.cat(self.hits) if self.hits else torch.zeros(0, dtype=torch.bool)
        tasks = torch.cat(self.tasks) if self.tasks else torch.zeros(0, dtype=torch.long)
        hits = torch.bincount(tasks, weights=hit.float(), minlength=self.num_tasks)
        counts = torch.bincount(tasks, minlength=self.num_tasks)
        per_task = [float(a) for a in hits / counts.float()]
        n = int(hit.numel())
        micro = float(hit.float().mean()) if n else math.nan
        return SplitScore("accuracy", per_task, nanmean(per_task), micro, self.loss_sum / max(n, 1) if n else math.nan,
                          n, counts.tolist())  # fmt: skip


class MapScorer(Scorer):
    """Per-task MAP@K (macro and micro) and the mean multi-task loss of a multi-label split."""

    def __init__(self, label_mask: Tensor, k: int) -> None:
        self.label_mask = label_mask
        self.ranking = MapAccumulator(label_mask.shape[0], k, label_mask)
        self.k = k
        self.loss_sum, self.examples = 0.0, 0

    def update(self, outputs: Tensor, batch: Batch) -> None:
        mask = self.label_mask.to(outputs.device)
        self.loss_sum += float(masked_task_loss(outputs, batch.y, mask, label_cross_entropy).sum()) * batch.size
        self.examples += batch.size
        self.ranking.update(outputs.float().cpu(), observed(batch.y, mask)[0].cpu())  # unlabelled: no positive, not ranked

    def result(self) -> SplitScore:
        result = self.ranking.result()
        loss = self.loss_sum / self.examples if self.examples else math.nan
        return SplitScore(f"map@{self.k}", result.per_task.tolist(), result.macro, result.micro, loss, self.examples,
                          result.counts.tolist())  # fmt: skip


class MseScorer(Scorer):
    """Per-task MSE over each task's real output columns; ``micro`` is the overall MSE."""

    def __init__(self, label_mask: Tensor, labels_per_task: list[int]) -> None:
        self.label_mask = label_mask
        self.labels_per_task = labels_per_task
        self.squared = torch.zeros(label_mask.shape[0], dtype=torch.float64)
        self.labelled = torch.zeros(label_mask.shape[0], dtype=torch.float64)
        self.loss_sum, self.examples = 0.0, 0

    def update(self, outputs: Tensor, batch: Batch) -> None:
        mask = self.label_mask.to(outputs.device)
        self.loss_sum += float(masked_task_loss(outputs, batch.y, mask, squared_error).sum()) * batch.size
        self.examples += batch.size
        targets, weight = observed(batch.y, mask)
        self.squared += ((outputs - targets).double().square() * weight).sum(dim=(0, 2)).cpu()
        self.labelled += weight.double().sum(dim=(0, 2)).cpu()

    def result(self) -> SplitScore:
        """Per task, the mean over its labelled output entries (every entry where no target is NaN)."""
        n = self.examples
        entries = self.labelled
        per_task = (self.squared / entries).tolist() if n else [math.nan] * len(self.labels_per_task)
        micro = float(self.squared.sum() / entries.sum()) if n else math.nan
        macro = float(np.mean(per_task)) if n else math.nan
        loss = self.loss_sum / n if n else math.nan
        return SplitScore("mse", per_task, macro, micro, loss, n, [int(e) for e in entries])


class MixedScorer(Scorer):
    """Per-task accuracy, MSE or MAP@K by each task's kind; ``mean`` and ``micro`` are the task score
    (mean over tasks of accuracy, MAP@K and 1 - MSE: see :class:`MixedFamily`)."""

    def __init__(self, label_mask: Tensor, kinds: Tensor, k: int) -> None:
        self.label_mask, self.kinds, self.k = label_mask, kinds, k
        tasks = label_mask.shape[0]
        self.ranking = MapAccumulator(tasks, k, label_mask)
        self.sums = torch.zeros(tasks, dtype=torch.float64)
        self.counts = torch.zeros(tasks, dtype=torch.float64)
        self.loss_sum, self.examples = 0.0, 0

    def update(self, outputs: Tensor, batch: Batch) -> None:
        mask = self.label_mask.to(outputs.device)
        kinds = self.kinds.to(outputs.device)
        self.loss_sum += float(mixed_task_loss(outputs, batch.y, mask, kinds).sum()) * batch.size
        self.examples += batch.size
        targets, weight = observed(batch.y, mask)
        labelled = (weight.sum(dim=2) > 0).double()  # [B, T]
        hit = (outputs.masked_fill(~mask, float("-inf")).argmax(dim=2) == targets.argmax(dim=2)).double() * labelled
        squared = ((outputs - targets).double().square() * weight).sum(dim=2)
        entries = weight.double().sum(dim=2)
        classification, regression = kinds == CLASSIFICATION, kinds == REGRESSION
        self.sums += torch.where(classification, hit.sum(dim=0), torch.where(regression, squared.sum(dim=0), torch.zeros_like(hit[0]))).cpu()
        self.counts += torch.where(classification, labelled.sum(dim=0), entries.sum(dim=0)).cpu()
        ranked = torch.where((kinds == MULTILABEL).view(1, -1, 1), targets, torch.zeros_like(targets))  # other kinds: no positive, not ranked
        self.ranking.update(outputs.float().cpu(), ranked.cpu())

    def result(self) -> SplitScore:
        kinds = self.kinds.tolist()
        ranked = self.ranking.result()
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = (self.sums / self.counts).tolist()
        per_task = [float(ranked.per_task[t]) if kind == MULTILABEL else ratio[t] for t, kind in enumerate(kinds)]
        scores = [1.0 - v if kind == REGRESSION else v for v, kind in zip(per_task, kinds)]
        score = nanmean(scores) if self.examples else math.nan
        counts = [int(ranked.counts[t]) if kind == MULTILABEL else int(self.counts[t]) for t, kind in enumerate(kinds)]
        loss = self.loss_sum / self.examples if self.examples else math.nan
        return SplitScore("task-score", per_task, score, score, loss, self.examples, counts)

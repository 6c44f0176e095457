"""The data contract for multi-label (and multi-output regression) multi-task problems.

:class:`~routing_rl.data.base.Split` stores one ``(input, task, label)`` row per sample, which fits
tasks carved out of a single-label dataset. The SNR setting is different: every example is
labelled for *every* task, and each task is itself multi-label (a YouTube8M video has any number
of labels from each of the 16 verticals). So this module adds a parallel contract instead of
changing the meaning of ``Split``'s fields:

* :class:`MultiLabelSplit` holds the inputs ``x`` (float32 ``[N, D]``) once per example and the
  targets of all tasks. ``gather(rows)`` returns ``(x [B, D], y [B, T, C_max])`` with ``y`` dense
  float32: multi-hot for classification, real values for regression.
* Tasks have different numbers of labels ``C_t``; targets are padded to ``C_max = max_t C_t`` and
  :attr:`MultiLabelData.label_mask` (bool ``[T, C_max]``) marks the real columns. Padded columns
  are always 0.
* Targets are stored either dense (:class:`DenseTargets`, small synthetic data and regression) or
  sparse (:class:`SparseMultiHot`, CSR lists of positive ``(task, label)`` pairs). A dense
  multi-hot ``[N, T, C_max]`` of YouTube8M would take hundreds of gigabytes (3.9M videos x 16
  tasks x hundreds of labels), while the positives take a few megabytes; batches are densified
  on the fly in :meth:`SparseMultiHot.take` (vectorised, no loop over examples).

Suites register by ``name`` in :attr:`MultiLabelSuite.registry`, like ``SingleLabelSuite``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from routing_rl.core.objectives import KIND_CODES
from routing_rl.data.base import Suite

Problem = Literal["multilabel", "regression", "mixed"]

FAMILY_OF_PROBLEM: dict[str, str] = {"multilabel": "multi-label", "regression": "regression", "mixed": "mixed"}
"""The task family name (:data:`~routing_rl.data.base.FamilyName`) of each multi-output problem."""
"""The problems of every-task-per-example data: multi-hot targets, real-valued outputs, or a mix."""

TASK_KINDS = tuple(KIND_CODES)
"""The kind of each task of a mixed problem."""


@dataclass(frozen=True)
class DenseTargets:
    """Targets stored as one float32 tensor ``[N, T, C_max]``."""

    values: Tensor

    def __post_init__(self) -> None:
        if self.values.dim() != 3:
            raise ValueError(f"dense targets must be [N, T, C_max], got {tuple(self.values.shape)}")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.values.shape[1])

    @property
    def max_labels(self) -> int:
        return int(self.values.shape[2])

    def take(self, rows: Tensor) -> Tensor:
        """Targets of examples ``rows``: float32 ``[B, T, C_max]``."""
        return self.values[rows].to(torch.float32)

    def dense(self) -> Tensor:
        return self.values.to(torch.float32)

    def positive_counts(self) -> Tensor:
        """Per task, the number of examples with at least one non-zero target, ``[T]``."""
        return (self.values != 0).any(dim=2).sum(dim=0)


@dataclass(frozen=True)
class SparseMultiHot:
    """Multi-hot targets in CSR form: example ``n``'s positives are ``flat[offsets[n]:offsets[n+1]]``.

    Each positive is stored as ``task * max_labels + label``, its position in the flattened
    ``[T, C_max]`` target of the example.
    """

    offsets: Tensor
    flat: Tensor
    num_tasks: int
    max_labels: int

    def __post_init__(self) -> None:
        if self.offsets.dim() != 1 or self.offsets.numel() < 1 or int(self.offsets[0]) != 0:
            raise ValueError("offsets must be a 1-D tensor starting at 0")
        if int(self.offsets[-1]) != self.flat.numel() or bool((self.offsets[1:] < self.offsets[:-1]).any()):
            raise ValueError("offsets must be non-decreasing and end at len(flat)")
        if self.flat.numel() and (int(self.flat.min()) < 0 or int(self.flat.max()) >= self.num_tasks * self.max_labels):
            raise ValueError(f"positive indices must lie in [0, {self.num_tasks * self.max_labels})")

    @classmethod
    def from_lists(
        cls, positives: Sequence[np.ndarray | Sequence[int]], num_tasks: int, max_labels: int
    ) -> SparseMultiHot:
        """Build from one array of flat positions (``task * max_labels + label``) per example."""
        lengths = np.fromiter((len(p) for p in positives), dtype=np.int64, count=len(positives))
        offsets = np.zeros(len(positives) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = (
            np.concatenate([np.asarray(p, dtype=np.int64) for p in positives])
            if len(positives)
            else np.zeros(0, np.int64)
        )
        return cls(torch.from_numpy(offsets), torch.from_numpy(flat.astype(np.int64)), num_tasks, max_labels)

    @classmethod
    def from_dense(cls, y: Tensor) -> SparseMultiHot:
        """Build from a dense 0/1 tensor ``[N, T, C_max]``."""
        n, t, c = y.shape
        rows, cols = torch.nonzero(y.reshape(n, t * c) != 0, as_tuple=True)
        offsets = torch.zeros(n + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=n), dim=0)
        return cls(offsets, cols.to(torch.long), t, c)

    def __len__(self) -> int:
        return int(self.offsets.numel() - 1)

    def take(self, rows: Tensor) -> Tensor:
        """Dense multi-hot targets of examples ``rows``: float32 ``[B, T, C_max]`` (vectorised)."""
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        starts = self.offsets[rows]
        counts = self.offsets[rows + 1] - starts
        batch = rows.numel()
        owner = torch.repeat_interleave(torch.arange(batch), counts)
        first = torch.cumsum(counts, dim=0) - counts
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(first, counts)
        positions = torch.repeat_interleave(starts, counts) + within
        y = torch.zeros(batch, self.num_tasks * self.max_labels, dtype=torch.float32)
        y[owner, self.flat[positions]] = 1.0
        return y.view(batch, self.num_tasks, self.max_labels)

    def dense(self) -> Tensor:
        return self.take(torch.arange(len(self)))

    def positive_counts(self) -> Tensor:
        """Per task, the number of examples with at least one positive label, ``[T]``."""
        owner = torch.repeat_interleave(torch.arange(len(self)), self.offsets[1:] - self.offsets[:-1])
        pairs = torch.unique(owner * self.num_tasks + self.flat // self.max_labels)
        return torch.bincount(pairs % self.num_tasks, minlength=self.num_tasks)


Targets = DenseTargets | SparseMultiHot


@dataclass(frozen=True)
class MultiLabelSplit:
    """One split: inputs ``x`` float32 ``[N, D]`` and the targets of every task for every example."""

    x: Tensor
    targets: Targets

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise ValueError(f"x must be [N, D], got {tuple(self.x.shape)}")
        if len(self.targets) != self.x.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} examples but targets have {len(self.targets)}")

    @classmethod
    def from_dense(cls, x: Tensor, y: Tensor, sparse: bool = False) -> MultiLabelSplit:
        """Build from dense ``y`` ``[N, T, C_max]``; ``sparse`` stores it as :class:`SparseMultiHot`."""
        targets: Targets = SparseMultiHot.from_dense(y) if sparse else DenseTargets(y.to(torch.float32))
        return cls(x.to(torch.float32), targets)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def y(self) -> Tensor:
        """All targets as one dense float32 ``[N, T, C_max]`` tensor (materialised on each access)."""
        return self.targets.dense()

    def gather(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``(x [B, D], y [B, T, C_max])`` for the given example rows."""
        return self.x[rows], self.targets.take(rows)

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = False
    ) -> Iterator[Tensor]:
        """Yield row-index tensors of at most ``batch_size``; the order is fixed by ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]

    def positive_counts(self) -> Tensor:
        """Per task, examples with at least one positive (the weights of micro-averaged MAP)."""
        return self.targets.positive_counts()

    def subset(self, rows: Tensor) -> MultiLabelSplit:
        """The examples ``rows`` as a new split (targets kept in the same storage form)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        if isinstance(self.targets, DenseTargets):
            return MultiLabelSplit(self.x[rows], DenseTargets(self.targets.values[rows]))
        y = self.targets
        starts, ends = y.offsets[rows], y.offsets[rows + 1]
        counts = ends - starts
        first = torch.cumsum(counts, dim=0) - counts
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(first, counts)
        flat = y.flat[torch.repeat_interleave(starts, counts) + within]
        offsets = torch.zeros(rows.numel() + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(counts, dim=0)
        return MultiLabelSplit(self.x[rows], SparseMultiHot(offsets, flat, y.num_tasks, y.max_labels))


def make_label_mask(labels_per_task: Sequence[int]) -> Tensor:
    """Boolean ``[T, C_max]``: True where column ``c`` is a real label (``c < labels_per_task[t]``)."""
    counts = [int(c) for c in labels_per_task]
    return torch.arange(max(counts)).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)


@dataclass(frozen=True)
class MultiLabelData:
    """A multi-task problem where every example carries targets for all ``T`` tasks.

    ``problem`` is ``"multilabel"`` (multi-hot targets, MAP@K metrics, BCE loss),
    ``"regression"`` (real targets, ``labels_per_task`` is then the output size of each task) or
    ``"mixed"``: each task of its own kind, ``task_kinds[t]`` one of ``classification`` (its class
    one-hot, ``labels_per_task`` its classes), ``regression`` or ``multilabel``.
    ``label_names[t][c]`` names label ``c`` of task ``t`` where known.
    """

    name: str
    task_names: list[str]
    labels_per_task: list[int]
    input_dim: int
    train: MultiLabelSplit
    val: MultiLabelSplit
    test: MultiLabelSplit
    problem: Problem = "multilabel"
    label_names: list[list[str]] | None = None
    info: dict[str, object] = field(default_factory=dict)
    task_kinds: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.labels_per_task) != len(self.task_names) or min(self.labels_per_task, default=0) <= 0:
            raise ValueError("labels_per_task needs one positive count per task")
        if self.problem not in FAMILY_OF_PROBLEM:
            raise ValueError(f"problem must be one of {', '.join(map(repr, FAMILY_OF_PROBLEM))}, got {self.problem!r}")
        if (self.problem == "mixed") != (self.task_kinds is not None):
            raise ValueError("task_kinds is given for a mixed problem, and only for one")
        if self.task_kinds is not None and (len(self.task_kinds) != len(self.task_names) or not set(self.task_kinds) <= set(TASK_KINDS)):
            raise ValueError(f"task_kinds needs one of {', '.join(TASK_KINDS)} per task, got {self.task_kinds}")
        for split_name in ("train", "val", "test"):
            self._check_split(split_name, getattr(self, split_name))

    def _check_split(self, split_name: str, split: MultiLabelSplit) -> None:
        if split.x.shape[1] != self.input_dim:
            raise ValueError(f"{split_name}.x has {split.x.shape[1]} features, expected input_dim={self.input_dim}")
        t, c = split.targets.num_tasks, split.targets.max_labels
        if (t, c) != (self.num_tasks, self.max_labels):
            raise ValueError(
                f"{split_name} targets are [*, {t}, {c}], expected [*, {self.num_tasks}, {self.max_labels}]"
            )
        padding = ~self.label_mask
        if isinstance(split.targets, DenseTargets):
            if bool((split.targets.values[:, padding] != 0).any()):
                raise ValueError(f"{split_name} has non-zero targets in padded label columns")
        elif bool(padding.reshape(-1)[split.targets.flat].any()):
            raise ValueError(f"{split_name} has positives in padded label columns")

    @property
    def family(self) -> str:
        """``multi-label`` (MAP@K) or ``regression`` (MSE): see :data:`~routing_rl.data.base.FamilyName`."""
        return FAMILY_OF_PROBLEM[self.problem]

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def max_labels(self) -> int:
        return max(self.labels_per_task)

    @property
    def label_mask(self) -> Tensor:
        """Boolean ``[T, C_max]``: which target columns are real labels of each task."""
        return make_label_mask(self.labels_per_task)


class MultiLabelSuite(Suite):
    """A suite whose examples carry targets of every task (:class:`MultiLabelData`).

    ``family`` is ``multi-label`` or, for real-valued targets, ``regression``. Constructor keyword
    arguments configure a suite (sizes, relatedness, file limits).
    """

    family: ClassVar[str] = "multi-label"

    @abstractmethod
    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> MultiLabelData:
        """See :meth:`~routing_rl.data.base.Suite.load`."""


def split_rows(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A seeded random partition of ``range(n)`` into ``(rest, held_out)`` with ``round(fraction*n)`` held out."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    order = torch.randperm(n, generator=generator)
    held = int(round(fraction * n))
    return order[held:].sort().values, order[:held].sort().values

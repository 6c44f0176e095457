"""The one contract every task suite fills: multi-task splits as index tables over shared inputs.

Tasks built from a single-task dataset (Fashion-MNIST's one-vs-rest tasks, CIFAR-100's
superclasses) reuse the same images many times, so a split stores the distinct inputs once and a
row per sample: which input, which label, which task. Batches are gathered from those tables.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from routing_rl.registry import Registered, Registry

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""Maps a float batch ``[B, *input_shape]`` and a generator to an augmented batch of the same shape."""


class DataError(RuntimeError):
    """A data file is missing, corrupt or in the wrong format; the message says which and what to do."""


@dataclass(frozen=True)
class Split:
    """All samples of one split (train, val or test) of every task.

    ``inputs`` holds the distinct inputs (uint8 images or float32 features); sample ``i`` is
    ``inputs[index[i]]`` with label ``targets[i]`` for task ``tasks[i]``. uint8 inputs are scaled
    to [0, 1] and then standardised with ``mean``/``std`` (per channel) when gathered.
    """

    inputs: torch.Tensor
    index: torch.Tensor
    targets: torch.Tensor
    tasks: torch.Tensor
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        n = self.index.shape[0]
        if self.targets.shape[0] != n or self.tasks.shape[0] != n:
            raise ValueError("index, targets and tasks must have the same length")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(x, y, task)`` for the given sample rows; x is float32 and standardised."""
        x = self.inputs.index_select(0, self.index.index_select(0, rows))  # indexing with [] costs twice as much per batch
        if x.dtype == torch.uint8:
            mean, std = self._standardisation
            x = (x.to(mean.dtype).div_(255.0) - mean) / std
        return x, self.targets.index_select(0, rows), self.tasks.index_select(0, rows)

    @cached_property
    def _standardisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std shaped to broadcast over a batch (built once, not per batch), in
        torch's default float type (float32 unless a float64 test sets it)."""
        shape = (1, -1) + (1,) * (self.inputs.dim() - 2)
        mean = torch.tensor(self.mean, dtype=torch.get_default_dtype()).view(shape)
        std = torch.tensor(self.std, dtype=torch.get_default_dtype()).view(shape)
        return mean, std

    def task_rows(self, task: int) -> torch.Tensor:
        """Rows of this split that belong to ``task``."""
        return torch.nonzero(self.tasks == task, as_tuple=False).flatten()

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = False
    ) -> Iterator[torch.Tensor]:
        """Yield row-index tensors of at most ``batch_size``; the order is fixed by ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


@dataclass(frozen=True)
class SingleLabelData:
    """A multi-task classification problem: T tasks with ``num_classes`` labels each."""

    name: str
    task_names: list[str]
    num_classes: int
    input_shape: tuple[int, ...]
    train: Split
    val: Split
    test: Split
    augment: Augment | None = None
    info: dict[str, object] = field(default_factory=dict)

    family: ClassVar[str] = "single-label"

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)


FamilyName = Literal["single-label", "multi-label", "regression", "mixed"]
"""The name of a suite's task family (``Suite.family``): one label per row (accuracy), labels of every
task per example (MAP@K), real-valued outputs of every task per example (MSE), or tasks of those
kinds together (each its own metric). The trainer's
object for it is :class:`routing_rl.data.families.TaskFamily`."""


class Suite(Registered, ABC):
    """Builds a multi-task data set from files (or a generator); one subclass per ``--env`` name.

    Subclasses set ``name``, ``description`` and ``family``, and implement :meth:`load`; defining
    the subclass registers it. Constructor keyword arguments with defaults become ``-e KEY=VALUE``
    options (document them in ``option_help``).
    """

    registry: ClassVar[Registry["Suite"]] = Registry("env")
    family: ClassVar[str] = ""
    needs_download: ClassVar[bool] = False
    path_options: ClassVar[tuple[str, ...]] = ()
    """The ``-e`` options that name data files (the files suite's ``path``): a suite file's trials
    read them relative to the suite file's folder, handed over as ``data_dir``."""
    checked_before_suite_run: ClassVar[bool] = False
    """Load once before ``suite run`` writes its directory: set by suites that read a user's file,
    which is cheap to read and most likely to be wrong (the file suites of papers are not)."""

    @classmethod
    def takes_multi_output_options(cls) -> bool:
        """Whether the suite's tasks may have outputs of every task per example (multi-label or
        regression), so that options scoped ``multi-label`` (``--map-k``) apply to it."""
        return cls.family != "single-label"

    @abstractmethod
    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> Any:
        """Read (or generate) the data and build the tasks; deterministic under ``seed``.

        ``val_fraction`` of each task's training samples is held out as the validation split.
        Raises :class:`DataError` with a message naming the missing or corrupt file and how to get it.
        """


class SingleLabelSuite(Suite):
    """A suite of single-label tasks: every sample is a row ``(input, label, task)`` of one task.

    Subclasses also set ``gym_id`` (the Gymnasium id of its per-task routing env, e.g.
    ``"routing_rl/FashionMNIST-MTL-v0"``) and return a :class:`SingleLabelData` from :meth:`load`.
    """

    family: ClassVar[str] = "single-label"
    gym_id: ClassVar[str] = ""

    @abstractmethod
    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> SingleLabelData:
        """See :meth:`Suite.load`."""

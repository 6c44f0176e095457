"""Shared helpers that turn per-task row tables into train/val/test :class:`Split` objects.

Every suite builds its tasks as a table of rows (input index, label, task) over shared inputs and
then holds out a validation set. Doing the hold-out in one place guarantees the same rule for all
suites: stratified per (task, label), seeded, and never emptying a stratum of the training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from routing_rl.data.base import Split


@dataclass(frozen=True)
class TaskRows:
    """Rows of one split before they become a :class:`Split`: int64 arrays of equal length."""

    index: np.ndarray
    targets: np.ndarray
    tasks: np.ndarray

    @staticmethod
    def concat(parts: list["TaskRows"]) -> "TaskRows":
        """Concatenate row tables (e.g. one per task) in order."""
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return TaskRows(empty, empty, empty)
        return TaskRows(
            np.concatenate([p.index for p in parts]).astype(np.int64),
            np.concatenate([p.targets for p in parts]).astype(np.int64),
            np.concatenate([p.tasks for p in parts]).astype(np.int64),
        )

    def select(self, mask: np.ndarray) -> "TaskRows":
        """The rows where ``mask`` (bool, or an index array) selects."""
        return TaskRows(self.index[mask], self.targets[mask], self.tasks[mask])

    def __len__(self) -> int:
        return int(self.index.shape[0])


def check_val_fraction(val_fraction: float) -> None:
    """Reject fractions outside ``[0, 1)``: a validation set cannot take all training rows."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")


def holdout_size(n: int, fraction: float) -> int:
    """Validation rows taken from a stratum of ``n`` rows: round-half-up of ``fraction * n``,
    but at most ``n - 1`` so that every (task, label) stratum keeps a training row."""
    if n <= 1 or fraction <= 0.0:
        return 0
    return min(n - 1, int(np.floor(fraction * n + 0.5)))


def stratified_holdout(rows: TaskRows, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the rows held out for validation, drawn per (task, label) stratum."""
    mask = np.zeros(len(rows), dtype=bool)
    if fraction <= 0.0 or len(rows) == 0:
        return mask
    key = rows.tasks * (int(rows.targets.max()) + 1) + rows.targets
    for value in np.unique(key):
        members = np.flatnonzero(key == value)
        take = holdout_size(members.size, fraction)
        if take:
            mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def make_split(inputs: torch.Tensor, rows: TaskRows, mean: tuple[float, ...], std: tuple[float, ...]) -> Split:
    """Wrap shared ``inputs`` and a row table into a :class:`Split` (int64 row tensors)."""
    return Split(
        inputs=inputs,
        index=torch.from_numpy(np.ascontiguousarray(rows.index, dtype=np.int64)),
        targets=torch.from_numpy(np.ascontiguousarray(rows.targets, dtype=np.int64)),
        tasks=torch.from_numpy(np.ascontiguousarray(rows.tasks, dtype=np.int64)),
        mean=tuple(mean),
        std=tuple(std),
    )


def train_val_test(
    train_inputs: torch.Tensor,
    train_rows: TaskRows,
    test_inputs: torch.Tensor,
    test_rows: TaskRows,
    val_fraction: float,
    rng: np.random.Generator,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> tuple[Split, Split, Split]:
    """Hold out ``val_fraction`` of the training rows (stratified) and build the three splits.

    Train and val share the same ``train_inputs`` tensor; only their row tables differ.
    """
    check_val_fraction(val_fraction)
    val_mask = stratified_holdout(train_rows, val_fraction, rng)
    train = make_split(train_inputs, train_rows.select(~val_mask), mean, std)
    val = make_split(train_inputs, train_rows.select(val_mask), mean, std)
    test = make_split(test_inputs, test_rows, mean, std)
    return train, val, test

"""The inputs of a user's file: which columns are features, the ``.npz`` input array, splits and scaling.

Kept apart from the task targets (:mod:`routing_rl.data.task_kinds`) because the two fail for
different reasons and are checked in a different order: an input array must be numeric and finite
in every row (a table's columns are encoded by :mod:`routing_rl.data.feature_encoding`), a target
may be missing in some. The seeded split and the standardisation live here
too, as both act on the rows of the inputs: the test and validation rows are drawn per example
(an example's tasks are never split between train and test), and every scale is fitted on the
training rows only, so nothing of the held-out rows leaks into training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from routing_rl.data.base import DataError
from routing_rl.data.table_files import Columns

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
"""Values a split column may hold (case-insensitive), and the split each means."""


def feature_columns(data: Columns, features: Sequence[str], taken: Mapping[str, str]) -> list[str]:
    """The feature columns: those named, else every column that is not a target or the split column.

    ``taken`` maps each target and split column to what it is (``"a target of task 'y'"``). A named
    feature among them is refused: a target among the inputs hands the network the answer, and the
    test score then measures the copy, not the data (a pure-noise target scores 1.0).
    """
    names = list(features) or [c for c in data.names() if c not in taken]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"files: -e features names {', '.join(map(repr, twice))} more than once; list each feature column once")
    for name in names:
        if name not in data.values:
            raise DataError(f"{data.source}: no feature column {name!r}; columns: {', '.join(data.names())}")
        if name in taken:
            raise DataError(f"{data.source}: column {name!r} is {taken[name]} and also a feature in -e features; "
                            f"{LEAK if 'target' in taken[name] else 'a column has one role'}: drop {name!r} from -e features")  # fmt: skip
    if not names:
        raise DataError(f"{data.source}: no column is left for the features; name them with -e features=COL1,COL2")
    return names


LEAK = "a target among the inputs hands the network the answer, so its scores would mean nothing"
"""Why a target may not also be an input (the errors say it)."""


def array_features(data: Columns, name: str) -> np.ndarray:
    """The ``.npz`` input array: ``[N, D]`` vectors or images ``[N, C, H, W]`` (``[N, H, W]`` gets one channel)."""
    if name not in data.values:
        raise DataError(f"{data.source}: no array {name!r} for the inputs; arrays: {', '.join(data.names())}; name it with -e features=NAME")
    x = data.values[name]
    if x.dtype.kind not in "biuf" or x.ndim not in (2, 3, 4):
        raise DataError(f"{data.source}: input array {name!r} is {x.dtype} of shape {x.shape}; give numbers as N x D, N x H x W or N x C x H x W")
    x = x[:, None] if x.ndim == 3 else x
    empty = [axis for axis, size in zip(AXES[x.ndim], x.shape[1:]) if size == 0]
    if empty:
        raise DataError(f"{data.source}: input array {name!r} of shape {data.values[name].shape} has no {' and no '.join(empty)}; "
                        "every example needs at least one input value: give N x D with D >= 1, or images N x C x H x W with C, H, W >= 1")  # fmt: skip
    if x.dtype.kind == "f":
        require_finite(data.source, x.reshape(x.shape[0], -1))
    return x


AXES = {2: ("feature columns",), 4: ("channels", "rows of pixels", "columns of pixels")}
"""What each axis after the first of an input array is, by its number of axes (``N x H x W`` has
become ``N x 1 x H x W``): named in the error when one of them is empty."""


def require_finite(source: str, x: np.ndarray) -> None:
    """Refuse NaN or infinite values of an input array ``[N, D]``, naming the first bad row and entry
    (a table's columns are filled or refused by name in :mod:`routing_rl.data.feature_encoding`)."""
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        where = f"entry {col}"
        value = "missing (NaN)" if np.isnan(x[row, col]) else "infinite"
        raise DataError(f"{source}: row {row + 1}, {where} is {value} ({int(bad.any(axis=1).sum())} rows have such features); "
                        "fill them in or drop those rows: features must be finite in every row")  # fmt: skip


def split_column(data: Columns, name: str) -> np.ndarray:
    """Split of every row (0 train, 1 val, 2 test, -1 val to be drawn) from a column of train/val/test."""
    if name not in data.values:
        raise DataError(f"{data.source}: no split column {name!r}; columns: {', '.join(data.names())}")
    out = np.empty(data.rows, dtype=np.int64)
    for i, value in enumerate(data.values[name]):
        key = str(value).strip().lower()
        if key not in SPLIT_NAMES:
            raise DataError(f"{data.source}: row {i + 1} of split column {name!r} holds {value!r}; use train, val or test")
        out[i] = SPLIT_NAMES[key]
    return out


def draw_splits(assigned: np.ndarray, test_fraction: float, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Fill in the splits still to draw: ``-2`` rows may go to test, ``-2`` and ``-1`` rows to val, per example.

    Rows whose split is given (0, 1, 2) keep it. Fractions round half up, as the other suites'
    validation hold-out does.
    """
    out = assigned.copy()
    free = np.flatnonzero(out == -2)
    order = rng.permutation(free)
    n_test = int(np.floor(test_fraction * free.size + 0.5))
    out[order[:n_test]] = 2
    out[order[n_test:]] = -1
    rest = np.flatnonzero(out == -1)
    if not (out == 1).any():
        order = rng.permutation(rest)
        n_val = int(np.floor(val_fraction * rest.size + 0.5))
        out[order[:n_val]] = 1
    out[out == -1] = 0
    return out


def fit_scale(x: np.ndarray, train: np.ndarray, axes: tuple[int, ...], source: str, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training rows over ``axes`` (a constant gets std 1, so it maps to 0).

    Finite values can still be too large to scale: near float64's limit (or float32's, for the
    multi-output inputs) the sum behind the mean or the squares behind the std overflow, and the
    scaled column becomes NaN (a run then "diverges" at its first batch) or silently all zeros.
    That is refused here, naming the entry (``labels``, one per mean) and what to do.
    """
    rows = x[train].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = rows.mean(axis=axes, keepdims=True)
        std = rows.std(axis=axes, keepdims=True)
    bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)).ravel())
    if bad.size:
        raise DataError(f"{source}: {labels[int(bad[0])]} holds values too large to standardise (their mean or spread overflows); "
                        "rescale it, e.g. divide it by a power of ten or take its logarithm")  # fmt: skip
    return mean, np.where(std > 0, std, 1.0)

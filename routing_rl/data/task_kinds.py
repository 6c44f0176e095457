"""Tasks of a user's file: which columns each task reads, what kind of task it is, and its targets.

A task is one or more target columns. Its kind is stated (``-e kinds=sex:binary``) or inferred
from the labelled values, by rules a user can predict:

* a column of label lists (a Parquet list column), or several columns holding only 0 and 1:
  ``multi-label`` (scored by MAP@K);
* a column of strings or booleans, or of integers with two distinct values: ``binary`` (two
  values) or ``multi-class`` (scored by accuracy);
* any other numeric column (or several): ``regression`` (scored by MSE). Integers with three or
  more values are counts, ages, years or scores far more often than class codes in a table
  (doctor visits 0-9, children 0-5, a rating 1-5), and a count read as classes loses its order and
  scores a near miss like a far one; class codes are stated: ``-e kinds=grade:multi-class``
  (``suite init`` and ``run`` print every inferred kind, and say so for integer targets).

A missing value (empty CSV cell, null, NaN) leaves that row out of that task only: real
multi-task data is often labelled for some tasks and not others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routing_rl.core.records import MAX_TASKS
from routing_rl.data.base import DataError
from routing_rl.data.table_files import Columns

KINDS = ("binary", "multi-class", "regression", "multi-label")
"""The task kinds a user can state."""

MAX_INFERRED_CLASSES = 2
"""An integer column with at most this many distinct values is read as classes (binary); one of
more is a number (state ``multi-class`` for class codes)."""

AMBIGUOUS_INTEGERS = 20
"""Integer targets of at most this many values could be class codes as well as counts: they are
read as numbers with a note that says how to state classes (more values are plainly numbers)."""

MAX_CLASSES = 10_000
"""The most classes (or labels, or output values) one task may have.

A task's head is a linear layer with one output per class, and every class needs labelled rows to be
learnt. The label sets of multi-task data in use stay far below this (CIFAR-100's 100 classes,
YouTube-8M's 3,862 labels) and a 10,000-class task still trains at the size of this toolkit's
networks (a 20,000-row table: about 10 s an epoch on one CPU thread). A column past it is almost
always a per-row ID or free text taken as a task: read as classes it stops a run for hours (a
million-class head) instead of failing, so it is refused where the classes are counted, before
anything is built."""


LIST_SEPARATOR = "|"
"""Separator of labels in a CSV cell of a task stated ``multi-label`` (``"rock|jazz"``)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task as the user names it: its name, its target columns and its kind (None: inferred)."""

    name: str
    columns: tuple[str, ...]
    kind: str | None = None


@dataclass(frozen=True)
class Task:
    """One task's targets for every row of the file.

    Classification: ``targets`` int64 ``[N]`` (class index, -1 where unlabelled) and ``labels``
    the class names. Regression and multi-label: float64 ``[N, K]`` (NaN rows unlabelled),
    ``labels`` the output or label names.
    """

    name: str
    kind: str
    targets: np.ndarray
    labelled: np.ndarray
    labels: list[str]
    note: str = ""
    """How an inferred kind could be wrong, printed with the task (integers read as a number)."""

    @property
    def outputs(self) -> int:
        return len(self.labels)

    @property
    def classification(self) -> bool:
        return self.kind in ("binary", "multi-class")


def split_list(value: str | Sequence[str]) -> list[str]:
    """``"a,b, c"`` (or a TOML list) as ``["a", "b", "c"]``."""
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


def parse_tasks(tasks: str | Sequence[str], kinds: str | Sequence[str]) -> list[TaskSpec]:
    """``tasks=species,tags:rock+jazz`` and ``kinds=tags:multi-label`` as task specs."""
    specs: list[TaskSpec] = []
    for entry in split_list(tasks):
        name, _, cols = entry.partition(":")
        columns = tuple(c.strip() for c in cols.split("+") if c.strip()) if cols else (name.strip(),)
        specs.append(TaskSpec(name.strip(), columns))
    if len(specs) > MAX_TASKS:
        raise DataError(f"files: -e tasks names {len(specs):,} tasks, more than the {MAX_TASKS:,} a run may have; "
                        "name the target columns only, or split them into several suites")  # fmt: skip
    if not specs:
        raise DataError("files: no task given; name the target columns, e.g. -e tasks=species,island (a task of several columns: NAME:COL1+COL2)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise DataError(f"files: task names repeat in -e tasks ({', '.join(names)}); name every task once")
    stated: dict[str, str] = {}
    for entry in split_list(kinds):
        name, _, kind = entry.partition(":")
        if name.strip() not in names or kind.strip() not in KINDS:
            raise DataError(f"files: -e kinds entry {entry!r} must be TASK:KIND with a task of -e tasks ({', '.join(names)}) "
                            f"and a kind of {', '.join(KINDS)}")  # fmt: skip
        stated[name.strip()] = kind.strip()
    return [TaskSpec(s.name, s.columns, stated.get(s.name)) for s in specs]


def is_missing(value: object) -> bool:
    """A missing cell: None, NaN, pandas' NA (a list of labels is never missing, even empty)."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def only_strings(values: np.ndarray) -> bool:
    """Whether every cell of an object column is a ``str`` (a text file's column with no empty cell):
    none is then missing or infinite, which one pass over the cells' types says without testing
    each cell (the per-cell tests took most of a 50,000-row table's loading)."""
    return set(map(type, values.ravel().tolist())) <= {str}


def missing_mask(values: np.ndarray) -> np.ndarray:
    """Boolean ``[N]``: rows of a column without a value."""
    if values.dtype.kind == "f":
        return np.isnan(values) if values.ndim == 1 else np.isnan(values).any(axis=tuple(range(1, values.ndim)))
    if values.dtype.kind == "O" and not only_strings(values):
        return np.fromiter((is_missing(v) for v in values), dtype=bool, count=values.shape[0])
    return np.zeros(values.shape[0], dtype=bool)


def infinite_mask(values: np.ndarray) -> np.ndarray:
    """Boolean ``[N]``: rows of a column holding an infinite number (an empty cell, NaN, is missing, not infinite).

    A missing target leaves its row out of the task, but an infinite one would be kept: a
    regression's mean and scale become infinite and every loss NaN, and as a class it is a label
    named ``inf``. Neither is a target anyone means, so it is refused.
    """
    if values.dtype.kind == "f":
        bad = np.isinf(values)
        return bad if values.ndim == 1 else bad.any(axis=tuple(range(1, values.ndim)))
    if values.dtype.kind == "O" and not only_strings(values):
        return np.fromiter((isinstance(v, (float, np.floating)) and math.isinf(v) for v in values), dtype=bool, count=values.shape[0])
    return np.zeros(values.shape[0], dtype=bool)


def require_few_outputs(spec: TaskSpec, count: int, what: str, source: str) -> None:
    """Refuse a task of more than :data:`MAX_CLASSES` classes (labels, output values), naming the bound."""
    if count > MAX_CLASSES:
        raise DataError(f"{source}: task {spec.name!r} has {count:,} {what}, more than the {MAX_CLASSES:,} a task may have (MAX_CLASSES); "
                        f"a column of a different value in nearly every row is an ID or free text, not a target: drop it from -e tasks")  # fmt: skip


def as_numbers(values: np.ndarray, labelled: np.ndarray) -> np.ndarray | None:
    """The column as float64 (NaN where unlabelled), or None when a labelled value is not a number."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    out = np.full(values.shape[0], np.nan)
    for i in np.flatnonzero(labelled):
        v = values[i]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return None
        out[i] = float(v)
    return out


def encode(spec: TaskSpec, data: Columns) -> Task:
    """The targets of ``spec`` read from ``data``; a task that cannot be trained is a :class:`DataError`."""
    for column in spec.columns:
        if column not in data.values:
            raise DataError(f"{data.source}: no column {column!r} for task {spec.name!r}; columns: {', '.join(data.names())}")
    arrays = [data.values[c] for c in spec.columns]
    for column, values in zip(spec.columns, arrays):
        infinite = infinite_mask(values)
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0]) + 1
            raise DataError(f"{data.source}: task {spec.name!r}: column {column!r} is infinite in {int(infinite.sum()):,} rows (first: row {first}); "
                            "a target must be finite: fix those values, or leave the cells empty to leave the rows out of the task")  # fmt: skip
    labelled = ~np.logical_or.reduce([missing_mask(a) for a in arrays])
    if not labelled.any():
        raise DataError(f"{data.source}: task {spec.name!r} has no labelled row (column {', '.join(spec.columns)} is empty); fill it in or drop the task")
    if len(arrays) == 1 and arrays[0].ndim == 1:
        task = _one_column(spec, arrays[0], labelled, data.source)
    else:
        task = _several_columns(spec, arrays, labelled, data.source)
    if task.kind != (spec.kind or task.kind):
        raise DataError(f"{data.source}: task {spec.name!r} was stated {spec.kind} but its values make it {task.kind}; "
                        f"state {task.kind} or check column {', '.join(spec.columns)}")  # fmt: skip
    return task


def _one_column(spec: TaskSpec, values: np.ndarray, labelled: np.ndarray, source: str) -> Task:
    rows = np.flatnonzero(labelled)
    listed = values.dtype.kind == "O" and all(isinstance(values[i], (list, tuple, np.ndarray)) for i in rows)
    if listed or (spec.kind == "multi-label" and values.dtype.kind in "OU"):
        return _label_lists(spec, values, labelled, source)
    numbers = as_numbers(values, labelled)
    if spec.kind == "regression" or (spec.kind is None and numbers is not None and values.dtype.kind != "b" and not _few_integers(numbers[rows])):
        if numbers is None:
            bad = next(i for i in rows if as_numbers(values[i : i + 1], labelled[i : i + 1]) is None)
            raise DataError(f"{source}: task {spec.name!r} is a regression, but column {spec.columns[0]!r} holds {values[bad]!r} in row {bad + 1}; "
                            "give numbers, or state another kind")  # fmt: skip
        distinct = np.unique(numbers[rows])
        if distinct.size < 2:
            raise DataError(f"{source}: task {spec.name!r} has one value ({numbers[rows[0]]:g}) in every labelled row; nothing to predict, drop the task")
        note = ""
        if spec.kind is None and distinct.size <= AMBIGUOUS_INTEGERS and bool(np.all(distinct == np.round(distinct))):
            note = (f"integers {distinct[0]:g} to {distinct[-1]:g}, {distinct.size:,} values, read as a number; "
                    f"if they are class codes, state -e kinds={spec.name}:multi-class")  # fmt: skip
        return Task(spec.name, "regression", numbers.reshape(-1, 1), labelled, [spec.columns[0]], note)
    keys = [str(values[i]) if numbers is None or values.dtype.kind == "b" else f"{numbers[i]:g}" for i in rows]
    distinct = set(keys)
    require_few_outputs(spec, len(distinct), "classes", source)
    classes = sorted(distinct, key=lambda k: (float(k), k) if numbers is not None and values.dtype.kind != "b" else (0.0, k))
    if len(classes) < 2:
        raise DataError(f"{source}: task {spec.name!r} has one class ({classes[0]!r}) in every labelled row; a task needs two classes at least, drop it")
    index = {c: i for i, c in enumerate(classes)}
    targets = np.full(values.shape[0], -1, dtype=np.int64)
    targets[rows] = [index[k] for k in keys]
    return Task(spec.name, "binary" if len(classes) == 2 else "multi-class", targets, labelled, classes)


def _few_integers(numbers: np.ndarray) -> bool:
    return bool(np.all(numbers == np.round(numbers))) and np.unique(numbers).size <= MAX_INFERRED_CLASSES


def _label_lists(spec: TaskSpec, values: np.ndarray, labelled: np.ndarray, source: str) -> Task:
    rows = np.flatnonzero(labelled)
    lists = {i: (str(values[i]).split(LIST_SEPARATOR) if isinstance(values[i], str) else [str(v) for v in values[i]]) for i in rows}
    labels = sorted({label.strip() for entry in lists.values() for label in entry if label.strip()})
    if not labels:
        raise DataError(f"{source}: task {spec.name!r} has no label in any row; a multi-label task needs labels, drop it")
    require_few_outputs(spec, len(labels), "labels", source)
    index = {label: j for j, label in enumerate(labels)}
    targets = np.full((values.shape[0], len(labels)), np.nan)
    for i, entry in lists.items():
        targets[i] = 0.0
        targets[i, [index[label.strip()] for label in entry if label.strip()]] = 1.0
    return Task(spec.name, "multi-label", targets, labelled, labels)


def _several_columns(spec: TaskSpec, arrays: list[np.ndarray], labelled: np.ndarray, source: str) -> Task:
    width = sum(int(np.prod(values.shape[1:], dtype=np.int64)) for values in arrays)
    require_few_outputs(spec, width, "values per row (outputs)", source)
    parts = []
    for column, values in zip(spec.columns, arrays):
        flat = values.reshape(values.shape[0], -1)
        numbers = np.stack([as_numbers(flat[:, j], labelled) for j in range(flat.shape[1])], axis=1) \
            if all(as_numbers(flat[:, j], labelled) is not None for j in range(flat.shape[1])) else None  # fmt: skip
        if numbers is None:
            raise DataError(f"{source}: task {spec.name!r} reads several values per row, but column {column!r} is not numeric; give numbers")
        parts.append(numbers)
    targets = np.concatenate(parts, axis=1)
    targets[~labelled] = np.nan
    names = [f"{c}[{j}]" if p.shape[1] > 1 else c for c, p in zip(spec.columns, parts) for j in range(p.shape[1])]
    binary = bool(np.isin(targets[labelled], (0.0, 1.0)).all())
    kind = spec.kind or ("multi-label" if binary else "regression")
    if kind == "multi-label" and not binary:
        raise DataError(f"{source}: task {spec.name!r} is multi-label but its columns hold values other than 0 and 1; give 0/1 columns")
    if kind in ("binary", "multi-class"):
        raise DataError(f"{source}: task {spec.name!r} reads several columns, so it is multi-label or regression, not {kind}")
    return Task(spec.name, kind, targets, labelled, names)

"""``--env files``: a user's own CSV, Parquet or ``.npz`` file as a multi-task suite, without code.

A user states the data in ``-e`` options only::

    routing-rl run --env files -e path=penguins.csv -e tasks=species,island,sex
    routing-rl run --env files -e path=songs.parquet -e tasks=genre,tags:rock+jazz+pop -e kinds=genre:multi-class

``tasks`` names the target columns (a task of several columns as ``NAME:COL1+COL2``), ``kinds``
states a task's kind where the inferred one (:mod:`routing_rl.data.task_kinds`) is not wanted,
``features`` lists the input columns (default: every other column; for ``.npz`` the input array,
default ``x``, vectors or images). Splits come from a ``split`` column, from ``test_path`` /
``val_path`` files, or are drawn per example under the seed.

Feature columns are encoded by their kind (:mod:`routing_rl.data.feature_encoding`: strings
one-hot, booleans 0/1, dates as days, gaps filled and flagged), every encoder fitted on the
training rows. The tasks of one file may be of any kinds: a file of classification tasks only
trains as the single-label family (one row per labelled (example, task), accuracy), of regression
or multi-label tasks only as that family (MSE on targets standardised by the training rows, or
MAP@K), and a mix (species beside body mass) as the mixed family
(:class:`~routing_rl.data.families.MixedFamily`): one network, each task its own head, loss and
metric. Every check runs in :meth:`FileSuite.load`, which writes nothing, so a bad file stops a
run before its directory exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from routing_rl.core.seeding import DataStream, numpy_rng
from routing_rl.data.base import DataError, SingleLabelData, Suite
from routing_rl.data.feature_encoding import encode_features
from routing_rl.data.file_inputs import LEAK, SPLITS, array_features, draw_splits, feature_columns, fit_scale, split_column
from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit, Problem
from routing_rl.data.splitting import TaskRows, check_val_fraction, make_split
from routing_rl.data.table_files import Columns, read_columns
from routing_rl.data.task_kinds import Task, encode, parse_tasks, split_list

FAMILIES = {"binary": "classification", "multi-class": "classification", "regression": "regression", "multi-label": "multilabel"}
"""The family each task kind trains in; tasks of several families train together as ``mixed``."""


class FileSuite(Suite):
    """Tasks read from one data file (plus optional test / validation files) in CSV, Parquet or ``.npz``."""

    name: ClassVar[str] = "files"
    family: ClassVar[str] = "from the file"
    description: ClassVar[str] = "your own CSV, Parquet or .npz file: target columns as tasks, kinds inferred or stated"
    checked_before_suite_run: ClassVar[bool] = True
    path_options: ClassVar[tuple[str, ...]] = ("path", "test_path", "val_path")
    option_help: ClassVar[dict[str, str]] = {
        "path": "the data file (.csv, .parquet or .npz), relative to --data-dir if given (in a suite file: the suite file's folder), else the current directory",
        "tasks": "target columns, comma-separated; a task of several columns as NAME:COL1+COL2 (multi-label 0/1 or multi-output)",
        "kinds": "stated task kinds, TASK:KIND comma-separated; kinds: binary, multi-class, regression, multi-label",
        "features": "input columns, comma-separated (default: every other column); .npz: the input array (default x)",
        "split": "a column of train / val / test naming each row's split (default: drawn per example)",
        "test_path": "a file of test rows in the same columns (default: test_fraction of the rows)",
        "val_path": "a file of validation rows in the same columns (default: --val-fraction of the training rows)",
        "test_fraction": "share of the rows drawn as the test split when no split column or test file is given",
        "split_seed": "seed of the drawn splits (default: the run's --seed)",
    }

    def __init__(
        self,
        *,
        path: str = "",
        tasks: str = "",
        kinds: str = "",
        features: str = "",
        split: str = "",
        test_path: str = "",
        val_path: str = "",
        test_fraction: float = 0.2,
        split_seed: int | None = None,
    ) -> None:
        if not str(path).strip():
            raise DataError("files: give the data file with -e path=FILE (.csv, .parquet or .npz) and its targets with -e tasks=COL1,COL2")
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"files: -e test_fraction must be between 0 and 1, got {test_fraction}")
        if split_seed is not None and split_seed < 0:
            raise DataError(f"files: -e split_seed must be a non-negative integer, got {split_seed}")
        if split and test_path:
            raise DataError("files: give the test rows either by -e split=COLUMN or by -e test_path=FILE, not both")
        self.path, self.tasks, self.kinds, self.features = str(path), tasks, kinds, features
        self.split, self.test_path, self.val_path = split, test_path, val_path
        self.test_fraction, self.split_seed = test_fraction, split_seed

    def read(self, folder: Path | None = None) -> tuple[Columns, np.ndarray]:
        """All rows (the data file, then the test and validation files) and each row's given split
        (-2: to draw); relative paths are read from ``folder`` (default: the current directory)."""
        parts = [(read_columns(self.located(self.path, folder)), -2 if not self.test_path else (-1 if not self.val_path else 0))]
        for extra, split in ((self.test_path, 2), (self.val_path, 1)):
            if extra:
                parts.append((read_columns(self.located(extra, folder)), split))
        first = parts[0][0]
        for columns, _ in parts[1:]:
            if columns.names() != first.names():
                raise DataError(f"{columns.source}: its columns ({', '.join(columns.names())}) differ from {first.source}'s "
                                f"({', '.join(first.names())}); give every file the same columns")  # fmt: skip
        values = {name: np.concatenate([c.values[name] for c, _ in parts]) for name in first.names()} if len(parts) > 1 else first.values
        data = Columns(first.source, values, sum(c.rows for c, _ in parts))
        assigned = np.concatenate([np.full(c.rows, s, dtype=np.int64) for c, s in parts])
        if self.split:
            assigned = split_column(data, self.split)
            assigned[assigned == 0] = -1  # training rows: the validation rows may still be drawn from them
        return data, assigned

    @staticmethod
    def located(path: str, folder: Path | None) -> Path:
        """``path`` as given when absolute or without ``folder``, else inside ``folder`` (``..`` folded:
        ``suites/../data.csv`` is ``data.csv``, as errors and records name it)."""
        return Path(path) if folder is None or Path(path).is_absolute() else Path(os.path.normpath(folder / path))

    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> SingleLabelData | MultiLabelData:
        """Read, check and split the file; the same file and seed give the same splits and tasks.
        ``data_dir`` is the folder relative paths start from (a suite file's folder in a suite)."""
        check_val_fraction(val_fraction)
        specs = parse_tasks(self.tasks, self.kinds)
        data, assigned = self.read(data_dir)
        tasks = [encode(spec, data) for spec in specs]
        taken = {column: f"a target of task {spec.name!r}" for spec in reversed(specs) for column in spec.columns}
        if self.split:
            taken[self.split] = "the split column (-e split)"
        rng = numpy_rng(self.split_seed if self.split_seed is not None else seed, DataStream.FILE_SPLITS)
        split = draw_splits(assigned, self.test_fraction, val_fraction, rng)
        npz = data.source.lower().endswith(".npz")
        names = split_list(self.features)
        described: list[str] = []
        left_out: list[str] = []
        if npz:
            name = names[0] if names else "x"
            if name in taken:
                raise DataError(f"{data.source}: array {name!r} is the input array ({'-e features' if names else '-e features, default x'}) "
                                f"and {taken[name]}; {LEAK}: name another input array with -e features=NAME")  # fmt: skip
            x = array_features(data, name)
            feature_names = [name]
            labels = [f"{'channel' if x.ndim == 4 else 'column'} {j} of input array {name!r}" for j in range(x.shape[1])]
        else:
            encoded = encode_features(data, feature_columns(data, names, taken), split == 0, named=bool(names))
            x, feature_names, described, left_out = encoded.x, encoded.names, encoded.described, encoded.left_out
            labels = [f"feature column {c!r}" for c in feature_names]
        for task in tasks:
            for s, split_name in enumerate(SPLITS):
                if not task.labelled[split == s].any():
                    raise DataError(f"{data.source}: task {task.name!r} has no labelled row in the {split_name} split; "
                                    "label more rows, or change the split fractions or the split column")  # fmt: skip
        info = {"file": data.source, "features": feature_names, "kinds": {t.name: t.kind for t in tasks},
                "labels": {t.name: t.labels for t in tasks}, "rows": {n: int((split == s).sum()) for s, n in enumerate(SPLITS)},
                "encoding": described, "left_out": left_out, "notes": {t.name: t.note for t in tasks if t.note}}  # fmt: skip
        families = {FAMILIES[t.kind] for t in tasks}
        if families == {"classification"}:
            return self.classification(x, split, tasks, info, labels)
        return self.multi_output(x, split, tasks, info, labels, families.pop() if len(families) == 1 else "mixed")

    def inputs(self, x: np.ndarray, train: np.ndarray, labels: list[str]) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]:
        """Inputs scaled by the training rows: features per column, images per channel (uint8 images
        keep their bytes and are scaled as they are gathered, as the image suites do). ``labels``
        names each column or channel for the errors."""
        if x.ndim == 4 and x.dtype == np.uint8:
            mean, std = fit_scale(x / 255.0, train, (0, 2, 3), self.path, labels)
            return x, tuple(mean.ravel().tolist()), tuple(std.ravel().tolist())
        mean, std = fit_scale(x, train, (0, 2, 3) if x.ndim == 4 else (0,), self.path, labels)
        return ((x - mean) / std).astype(np.float32), (0.0,), (1.0,)

    def classification(self, x: np.ndarray, split: np.ndarray, tasks: list[Task], info: dict[str, object], labels: list[str]) -> SingleLabelData:
        """One row per labelled (example, task): a task's unlabelled examples are simply not its rows."""
        scaled, mean, std = self.inputs(x, split == 0, labels)
        parts = []
        for s in range(3):
            examples = np.flatnonzero(split == s)
            rows = TaskRows.concat([
                TaskRows(np.flatnonzero(t.labelled[examples]), t.targets[examples][t.labelled[examples]],
                         np.full(int(t.labelled[examples].sum()), i, dtype=np.int64))
                for i, t in enumerate(tasks)
            ])  # fmt: skip
            parts.append(make_split(torch.from_numpy(np.ascontiguousarray(scaled[examples])), rows, mean, std))
        classes = max(t.outputs for t in tasks)
        info["chance"] = {t.name: float(np.bincount(t.targets[t.labelled]).max() / t.labelled.sum()) for t in tasks}
        return SingleLabelData(self.name, [t.name for t in tasks], classes, tuple(scaled.shape[1:]), *parts, info=info)

    def multi_output(self, x: np.ndarray, split: np.ndarray, tasks: list[Task], info: dict[str, object], labels: list[str],
                     problem: Problem) -> MultiLabelData:  # fmt: skip
        """Every example with the targets of every task, NaN where a task leaves it unlabelled
        (the multi-output losses and scores skip those entries). Regression targets are scaled
        by their training rows, so a task's MSE is in units of its training variance; a
        classification task of a mixed file holds its class one-hot."""
        scaled, _, _ = self.inputs(x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0), split == 0, labels)
        flat = scaled.reshape(scaled.shape[0], -1)
        width = max(t.outputs for t in tasks)
        y = np.zeros((x.shape[0], len(tasks), width), dtype=np.float32)
        scales = {}
        for i, t in enumerate(tasks):
            values = t.targets
            if t.kind == "regression":
                mean, std = fit_scale(values, (split == 0) & t.labelled, (0,), self.path, [f"target {c!r} of task {t.name!r}" for c in t.labels])
                values = (values - mean) / std
                scales[t.name] = {"mean": mean.ravel().tolist(), "std": std.ravel().tolist()}
            elif t.classification:
                values = np.full((t.targets.shape[0], t.outputs), np.nan)
                rows = np.flatnonzero(t.labelled)
                values[rows] = 0.0
                values[rows, t.targets[rows]] = 1.0
            y[:, i, : t.outputs] = values
        info["target_scale"] = scales
        if problem == "mixed":
            info["chance"] = {t.name: float(np.bincount(t.targets[t.labelled]).max() / t.labelled.sum()) for t in tasks if t.classification}
        splits = [MultiLabelSplit.from_dense(torch.from_numpy(flat[split == s]), torch.from_numpy(y[split == s])) for s in range(3)]
        return MultiLabelData(self.name, [t.name for t in tasks], [t.outputs for t in tasks], flat.shape[1], *splits,
                              problem=problem, label_names=[t.labels for t in tasks], info=info,
                              task_kinds=[FAMILIES[t.kind] for t in tasks] if problem == "mixed" else None)  # fmt: skip

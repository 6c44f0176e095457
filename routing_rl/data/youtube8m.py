"""YouTube8M video-level features as the 16-task multi-label benchmark of the SNR paper.

SNR paper, section "YouTube8M Dataset": each video has labels from a vocabulary of 3,000+
entities grouped into 24 top-level categories; "we treat each top-level topic category as a
separate prediction task, so that each task is a multi-label classification problem. [...] we
used the top 16 categories in data volume", with the original training set for training and the
original validation set split into validation and test (the Kaggle test labels are hidden).

What this module reads (published at https://research.google.com/youtube8m/):

* ``vocabulary.csv`` with columns including ``Index, TrainVideoCount, KnowledgeGraphId, Name,
  WikiUrl, Vertical1, Vertical2, Vertical3, WikiDescription``. A label belongs to the task of its
  ``Vertical1`` (its primary category).
* ``train*.tfrecord`` and ``validate*.tfrecord``: video-level ``tf.train.Example`` records with
  ``id`` (bytes), ``labels`` (int64 list of vocabulary indices), ``mean_rgb`` (1024 floats) and
  ``mean_audio`` (128 floats). The input is ``[mean_rgb, mean_audio]`` (1152 floats).

Task selection ("the top 16 categories in data volume"): the 16 verticals with the most training
videos, where a vertical's videos are the distinct training videos that carry at least one label of
that vertical (a video with two labels of one vertical counts once, so ``TrainVideoCount`` is not
summed). The count is taken over every training record (``task_counts="all"``, the default), so
the tasks do not depend on how many records are read: with ``max_train_records`` the remaining
records are passed over once more for their labels only. ``task_counts="read"`` counts the records
read only (the choice then depends on ``max_train_records``; it saves that pass). Every vertical's
labels are read, then the top ``num_verticals`` are kept and the targets remapped. Ties are broken by the larger number of
vocabulary labels, then by name; tasks are ordered by that ranking, and the counts that decided it
are in ``info["videos_per_vertical"]``. Labels within a task are ordered by vocabulary ``Index``.
Labels of other verticals are dropped; videos are kept even if none of their labels is kept (they
are negatives for every task).

Memory: the full training set is about 3.9M videos x 1152 floats = 18 GB; pass
``max_train_records`` to read a prefix. Targets are stored sparsely (see
:mod:`routing_rl.data.multilabel`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from routing_rl.core.seeding import torch_generator
from routing_rl.data.base import DataError
from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit, MultiLabelSuite, SparseMultiHot
from routing_rl.data.tf_example import Feature, bytes_feature, encode_example, float_feature, int64_feature, read_examples

DATASET_URL = "https://research.google.com/youtube8m/"
FEATURE_DIMS = {"mean_rgb": 1024, "mean_audio": 128}
VOCABULARY_FILE = "vocabulary.csv"
TRAIN_PATTERN = "train*.tfrecord"
VALIDATE_PATTERN = "validate*.tfrecord"
TASK_COUNTS = ("all", "read")
MAX_VOCABULARY_INDEX = 10**6
"""Exclusive upper bound on ``Index`` in ``vocabulary.csv``. The label lookup is a dense array of
``max(Index) + 1`` entries, so a corrupt index such as 10**11 would ask for hundreds of GiB; the
real vocabulary has 3,862 labels (4,716 in the 2017 release), far below this bound."""


@dataclass(frozen=True)
class VerticalTasks:
    """The label -> task mapping built from ``vocabulary.csv``.

    ``lookup[index]`` is ``task * max_labels + position`` for a kept vocabulary index, else -1.
    """

    task_names: list[str]
    label_indices: list[list[int]]
    label_names: list[list[str]]
    lookup: np.ndarray

    @classmethod
    def build(cls, task_names: list[str], label_indices: list[list[int]], label_names: list[list[str]]) -> VerticalTasks:
        """The tasks with these labels (``label_indices[t]`` sorted, one name per index), lookup included."""
        max_labels = max(len(ix) for ix in label_indices)
        lookup = np.full(max(i for ix in label_indices for i in ix) + 1, -1, dtype=np.int64)
        for t, indices in enumerate(label_indices):
            lookup[np.asarray(indices, dtype=np.int64)] = t * max_labels + np.arange(len(indices))
        return cls(task_names, label_indices, label_names, lookup)

    @property
    def labels_per_task(self) -> list[int]:
        return [len(ix) for ix in self.label_indices]

    @property
    def max_labels(self) -> int:
        return max(self.labels_per_task)

    def positives(self, labels: np.ndarray) -> np.ndarray:
        """Flat positions (``task * max_labels + position``) of a video's kept labels, sorted, unique."""
        labels = labels[(labels >= 0) & (labels < self.lookup.size)]
        flat = self.lookup[labels]
        return np.unique(flat[flat >= 0])

    def select(self, order: Sequence[int]) -> tuple[VerticalTasks, np.ndarray]:
        """The tasks ``order`` (indices into ``task_names``), in that order, and the flat-position remap.

        ``remap[p]`` is the new flat position of this mapping's flat position ``p``, or -1 where
        ``p``'s task is not selected (see :func:`remap_targets`).
        """
        if not order:
            raise ValueError("select needs at least one task")
        tasks = VerticalTasks.build(
            [self.task_names[t] for t in order],
            [self.label_indices[t] for t in order],
            [self.label_names[t] for t in order],
        )
        remap = np.full(len(self.task_names) * self.max_labels, -1, dtype=np.int64)
        for new, old in enumerate(order):
            n = len(self.label_indices[old])
            remap[old * self.max_labels : old * self.max_labels + n] = new * tasks.max_labels + np.arange(n)
        return tasks, remap


def rank_verticals(tasks: VerticalTasks, videos: Sequence[int]) -> list[int]:
    """Task indices of ``tasks``, most videos (``videos[t]``) first; ties: more labels, then name."""
    return sorted(
        range(len(tasks.task_names)), key=lambda t: (-videos[t], -len(tasks.label_indices[t]), tasks.task_names[t])
    )


def remap_targets(targets: SparseMultiHot, remap: np.ndarray, num_tasks: int, max_labels: int) -> SparseMultiHot:
    """``targets`` with every positive ``p`` moved to ``remap[p]``, dropped where that is -1 (sorted per row)."""
    flat = remap[targets.flat.numpy()]
    owner = np.repeat(np.arange(len(targets), dtype=np.int64), np.diff(targets.offsets.numpy()))
    keep = flat >= 0
    flat, owner = flat[keep], owner[keep]
    flat = flat[np.lexsort((flat, owner))]  # owner is the primary key: rows stay in place
    offsets = np.zeros(len(targets) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=len(targets)), out=offsets[1:])
    return SparseMultiHot(torch.from_numpy(offsets), torch.from_numpy(flat), num_tasks, max_labels)


def read_vocabulary(path: Path) -> VerticalTasks:
    """Group vocabulary labels by ``Vertical1``: one task per vertical, in name order.

    Which verticals become the suite's tasks depends on the training videos, not on the
    vocabulary: :meth:`YouTube8M.load` ranks them with :func:`rank_verticals` and keeps the top ones
    with :meth:`VerticalTasks.select`.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not the UTF-8 CSV vocabulary.csv of {DATASET_URL} ({exc.__class__.__name__})") from None
    needed = {"Index", "Vertical1"}
    if not rows or not needed <= set(rows[0]):
        raise DataError(
            f"{path} must be the YouTube8M vocabulary.csv with columns {sorted(needed)} (from {DATASET_URL})"
        )
    by_vertical: dict[str, list[tuple[int, str, int]]] = {}
    for line, row in enumerate(rows, start=2):
        vertical = (row.get("Vertical1") or "").strip()
        if not vertical:
            continue
        try:
            index = int(row["Index"])
            count = int(row.get("TrainVideoCount") or 0)
        except (TypeError, ValueError):  # TypeError: a short row leaves the field None
            raise DataError(f"{path}, line {line}: Index and TrainVideoCount must be integers") from None
        if not 0 <= index < MAX_VOCABULARY_INDEX:
            # A negative index would add a label no video can carry, a huge one would size the
            # lookup table beyond any memory: both mean the file is corrupt or not the vocabulary.
            raise DataError(
                f"{path}, line {line}: field Index is {index}, but it must be 0 <= Index < {MAX_VOCABULARY_INDEX} "
                f"(YouTube8M label indices); the file is corrupt or not the vocabulary.csv from {DATASET_URL}"
            )
        by_vertical.setdefault(vertical, []).append((index, (row.get("Name") or "").strip(), count))
    verticals = sorted(by_vertical)
    if not verticals:
        raise DataError(f"{path} assigns no label to a Vertical1 category")
    label_indices = [sorted(i for i, _, _ in by_vertical[v]) for v in verticals]
    names = [{i: n for i, n, _ in by_vertical[v]} for v in verticals]
    label_names = [[names[t][i] for i in ix] for t, ix in enumerate(label_indices)]
    return VerticalTasks.build(verticals, label_indices, label_names)


def encode_video_example(
    video_id: bytes, labels: Sequence[int], mean_rgb: Sequence[float], mean_audio: Sequence[float]
) -> bytes:
    """A serialised video-level ``tf.train.Example`` in the YouTube8M layout (for writing test data)."""
    features: dict[str, Feature] = {
        "id": bytes_feature([video_id]),
        "labels": int64_feature(labels),
        "mean_rgb": float_feature(mean_rgb),
        "mean_audio": float_feature(mean_audio),
    }
    return encode_example(features)


def missing_data_message(data_dir: Path | None, missing: str) -> str:
    where = f"in {data_dir}" if data_dir is not None else "(no data directory was given)"
    return (
        f"YouTube8M data not found {where}: {missing}. Put the video-level dataset in one directory: "
        f"{VOCABULARY_FILE}, the training shards {TRAIN_PATTERN} and the validation shards {VALIDATE_PATTERN} "
        f"(video-level features, not frame-level). The dataset is published at {DATASET_URL}."
    )


class YouTube8M(MultiLabelSuite):
    """The 16 YouTube8M verticals with the most training videos as multi-label tasks (video-level features).

    ``val_share`` of the original validation set becomes the validation split and the rest the
    test split (seeded). ``load``'s ``val_fraction`` is not used: the validation split is not
    carved out of the training set here, following the paper.
    """

    name = "youtube8m"
    description = "YouTube8M video-level features, top-16 verticals by training videos as multi-label tasks (SNR paper)"
    needs_download = True

    option_help = {
        "num_verticals": "tasks: the verticals with the most training videos (among the records read)",
        "features": "video-level features to concatenate as the input",
        "val_share": "share of the official validate files used as our validation split (the rest is test)",
        "max_train_records": "read at most this many training records",
        "task_counts": "all: rank the verticals by their videos in every training record; read: in the records read",
        "max_eval_records": "read at most this many validate records",
        "verify_crc": "check the TFRecord CRC32C checksums",
    }

    def __init__(
        self,
        num_verticals: int = 16,
        features: Sequence[str] = ("mean_rgb", "mean_audio"),
        val_share: float = 0.5,
        max_train_records: int | None = None,
        max_eval_records: int | None = None,
        verify_crc: bool = True,
        task_counts: str = "all",
    ) -> None:
        if task_counts not in TASK_COUNTS:
            raise ValueError(f"task_counts must be one of {', '.join(TASK_COUNTS)}, got {task_counts!r}")
        unknown = [f for f in features if f not in FEATURE_DIMS]
        if unknown or not features:
            raise ValueError(f"features must be a non-empty subset of {sorted(FEATURE_DIMS)}, got {list(features)}")
        if not 0.0 < val_share < 1.0:
            raise ValueError(f"val_share must be in (0, 1), got {val_share}")
        if num_verticals <= 0:
            raise ValueError(f"num_verticals must be positive, got {num_verticals}")
        self.num_verticals = num_verticals
        self.features = list(features)
        self.val_share = val_share
        self.max_train_records = max_train_records
        self.max_eval_records = max_eval_records
        self.verify_crc = verify_crc
        self.task_counts = task_counts

    @property
    def input_dim(self) -> int:
        return sum(FEATURE_DIMS[f] for f in self.features)

    def locate(self, data_dir: Path | None) -> tuple[Path, list[Path], list[Path]]:
        """``(vocabulary, train_files, validate_files)``; raises :class:`DataError` saying what is missing."""
        if data_dir is None:
            raise DataError(missing_data_message(None, "pass --data-dir DIR naming the directory that holds the files"))
        data_dir = Path(data_dir)
        vocabulary = data_dir / VOCABULARY_FILE
        train = sorted(data_dir.glob(TRAIN_PATTERN))
        validate = sorted(data_dir.glob(VALIDATE_PATTERN))
        # Every name matching the patterns is read as a shard, so one that is not a file (a
        # directory called train0000.tfrecord, a broken link) must be named here, not surface
        # later as IsADirectoryError; the same for a directory called vocabulary.csv.
        for path in [vocabulary, *train, *validate]:
            if (path.exists() or path.is_symlink()) and not path.is_file():
                kind = "a directory" if path.is_dir() else "not a regular file (a broken link or a special file)"
                raise DataError(
                    f"{path} is {kind}, but its name makes it a YouTube8M data file "
                    f"({VOCABULARY_FILE}, {TRAIN_PATTERN}, {VALIDATE_PATTERN}); move it out of {data_dir} or rename it"
                )
        found = {VOCABULARY_FILE: vocabulary.is_file(), TRAIN_PATTERN: bool(train), VALIDATE_PATTERN: bool(validate)}
        missing = [name for name, ok in found.items() if not ok]
        if missing:
            raise DataError(missing_data_message(data_dir, "missing " + ", ".join(missing)))
        return vocabulary, train, validate

    def read_split(self, files: Sequence[Path], tasks: VerticalTasks, limit: int | None) -> MultiLabelSplit:
        """Read videos from ``files`` in order (at most ``limit``) into a split with sparse targets."""
        xs: list[np.ndarray] = []
        positives: list[np.ndarray] = []
        for path in files:
            for record, example in enumerate(read_examples(path, self.verify_crc)):
                if limit is not None and len(xs) >= limit:
                    break
                xs.append(self._features(example, path, record))
                positives.append(tasks.positives(self._labels(example, path, record)))
        x = np.stack(xs).astype(np.float32, copy=False) if xs else np.zeros((0, self.input_dim), np.float32)
        targets = SparseMultiHot.from_lists(positives, len(tasks.task_names), tasks.max_labels)
        return MultiLabelSplit(torch.from_numpy(x), targets)

    def count_videos(self, files: Sequence[Path], tasks: VerticalTasks) -> list[int]:
        """Distinct videos per task of ``tasks`` over every record of ``files``, labels only (no features kept)."""
        counts = np.zeros(len(tasks.task_names), dtype=np.int64)
        for path in files:
            for record, example in enumerate(read_examples(path, self.verify_crc)):
                counts[np.unique(tasks.positives(self._labels(example, path, record)) // tasks.max_labels)] += 1
        return counts.tolist()

    def _features(self, example: dict[str, Feature], path: Path, record: int) -> np.ndarray:
        parts = []
        for name in self.features:
            feature = example.get(name)
            if feature is None or feature.kind != "float" or len(feature.values) != FEATURE_DIMS[name]:
                got = "missing" if feature is None else f"{feature.kind} x {len(feature.values)}"
                raise DataError(
                    f"{path}: record {record} (0-based): feature {name!r} must be {FEATURE_DIMS[name]} floats, "
                    f"got {got}; use the video-level YouTube8M files ({DATASET_URL})"
                )
            parts.append(np.asarray(feature.values, dtype=np.float32))
        return np.concatenate(parts)

    @staticmethod
    def _labels(example: dict[str, Feature], path: Path, record: int) -> np.ndarray:
        feature = example.get("labels")
        if feature is None or feature.kind not in ("int64", "none"):
            raise DataError(f"{path}: record {record} (0-based): 'labels' must be an int64 list")
        return np.asarray(feature.values, dtype=np.int64)

    def load(self, data_dir: Path | None, seed: int = 0, val_fraction: float = 0.1) -> MultiLabelData:
        """Read the files in ``data_dir``; split the original validation set into val and test."""
        vocabulary, train_files, validate_files = self.locate(data_dir)
        every_vertical = read_vocabulary(vocabulary)
        # One pass over the training files with every vertical's labels; the videos per vertical
        # (distinct videos with at least one of its labels) then pick the tasks.
        train = self.read_split(train_files, every_vertical, self.max_train_records)
        videos = train.targets.positive_counts().tolist()
        if self.task_counts == "all" and self.max_train_records is not None:
            videos = self.count_videos(train_files, every_vertical)
        ranking = rank_verticals(every_vertical, videos)
        tasks, remap = every_vertical.select(ranking[: self.num_verticals])
        assert isinstance(train.targets, SparseMultiHot)
        train = MultiLabelSplit(train.x, remap_targets(train.targets, remap, len(tasks.task_names), tasks.max_labels))
        held_out = self.read_split(validate_files, tasks, self.max_eval_records)
        if len(train) == 0 or len(held_out) < 2:
            raise DataError(missing_data_message(vocabulary.parent, "the tfrecord files hold too few videos"))
        order = torch.randperm(len(held_out), generator=torch_generator(seed))
        n_val = min(max(1, int(round(self.val_share * len(held_out)))), len(held_out) - 1)
        return MultiLabelData(
            name=self.name,
            task_names=tasks.task_names,
            labels_per_task=tasks.labels_per_task,
            input_dim=self.input_dim,
            train=train,
            val=held_out.subset(order[:n_val].sort().values),
            test=held_out.subset(order[n_val:].sort().values),
            problem="multilabel",
            label_names=tasks.label_names,
            info={
                "vocabulary_indices": tasks.label_indices,
                # every vertical, in ranking order: distinct training videos with one of its labels (task_counts)
                "videos_per_vertical": {every_vertical.task_names[t]: int(videos[t]) for t in ranking},
                "train_files": [str(p) for p in train_files],
                "validate_files": [str(p) for p in validate_files],
                "features": self.features,
                "seed": seed,
            },
        )


__all__ = [
    "DATASET_URL",
    "MAX_VOCABULARY_INDEX",
    "VerticalTasks",
    "YouTube8M",
    "encode_video_example",
    "rank_verticals",
    "read_vocabulary",
    "remap_targets",
]

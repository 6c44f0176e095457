"""CIFAR-100 as 20 five-way tasks: by superclass (the routing paper's MTL benchmark) or alphabetically.

The data are read from the official ``cifar-100-python`` pickles (``train``, ``test``, ``meta``),
found as an extracted folder or as the official tarball, which is extracted safely (only the three
known members, no path traversal, no links). Each file is md5-verified against the official
values unless verification is switched off (for small generated test files).

Task definitions:

* ``cifar100-superclass``: task c is coarse class c; its label is the *rank* of the fine class
  among the five fine classes of that superclass (ordered by fine label index), so every task has
  exactly the labels 0..4. (``fine % 5``, used by the original public code, collides classes and
  leaves some labels unused.)
* ``cifar100-alphabetical``: the fine class names sorted alphabetically, five consecutive names per
  task, label = position within the group -- tasks whose classes are unrelated by construction.

Every image belongs to exactly one task; images are stored once as uint8 ``[N, 3, 32, 32]``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from routing_rl.core.seeding import numpy_rng
from routing_rl.data import download as dl
from routing_rl.data.augment import make_image_augment
from routing_rl.data.base import DataError, SingleLabelData, SingleLabelSuite
from routing_rl.data.cifar100_files import (
    CLASSES_PER_TASK,
    FILE_MD5,
    FILES,
    FOLDER,
    MEAN,
    NUM_COARSE,
    NUM_FINE,
    STD,
    TARBALL,
    TARBALL_MD5,
    TARBALL_URL,
    Cifar100Arrays,
    extract_tarball,
    read_batch,
    read_meta,
)
from routing_rl.data.splitting import TaskRows, train_val_test

@dataclass(frozen=True)
class TaskAssignment:
    """Which task each fine class belongs to, and its label within that task."""

    task_of_fine: np.ndarray
    label_of_fine: np.ndarray
    task_names: list[str]

    def fine_classes(self) -> list[list[int]]:
        """Per task, its fine classes ordered by label."""
        out: list[list[int]] = [[] for _ in self.task_names]
        for fine in np.argsort(self.label_of_fine, kind="stable"):
            out[int(self.task_of_fine[fine])].append(int(fine))
        return out


class Cifar100Suite(SingleLabelSuite):
    """Shared loading for the CIFAR-100 suites; subclasses only decide the task of each fine class.

    Constructor options: ``download`` (fetch the official tarball if nothing is found; default
    False), ``verify`` (md5 of the files, default True; skip it for small generated files or pass
    your own ``checksums`` for ``train``/``test``/``meta``), ``augment`` (training augmentation:
    crop with 4-pixel padding, horizontal flip, rotation up to ``max_degrees``; default True) and
    ``url`` (where to download the tarball from).
    """

    needs_download: ClassVar[bool] = True
    title: ClassVar[str] = "CIFAR-100"
    system_dirs: ClassVar[tuple[Path, ...]] = ()
    file_md5: ClassVar[Mapping[str, str]] = FILE_MD5
    tarball_md5: ClassVar[str] = TARBALL_MD5

    option_help: ClassVar[dict[str, str]] = {
        "download": "download the official tarball if it is missing (checked against its md5)",
        "verify": "check the files' checksums",
        "augment": "random crop, rotation and horizontal flip of training batches",
        "max_degrees": "largest rotation of the augmentation, in degrees",
        "url": "where to download the tarball from",
    }

    def __init__(
        self,
        *,
        download: bool = False,
        verify: bool = True,
        checksums: Mapping[str, str] | None = None,
        augment: bool = True,
        max_degrees: float = 15.0,
        url: str = TARBALL_URL,
    ) -> None:
        self.download = download
        self.verify = verify
        self.checksums = dict(self.file_md5 if checksums is None else checksums)
        if verify and set(FILES) - set(self.checksums):
            raise ValueError(f"checksums needs entries for {', '.join(FILES)}")
        self.augment = augment
        self.max_degrees = max_degrees
        self.url = url

    @abstractmethod
    def assign_tasks(self, arrays: Cifar100Arrays) -> TaskAssignment:
        """Map every fine class to (task, label); each task must get labels 0..4."""

    # ------------------------------------------------------------------ files

    @staticmethod
    def has_files(directory: Path) -> bool:
        """Whether ``directory`` holds ``train``, ``test`` and ``meta``."""
        return all((directory / f).is_file() for f in FILES)

    def find_folder(self, data_dir: Path | None) -> Path:
        """The extracted ``cifar-100-python`` folder, extracting or downloading the tarball if needed."""
        candidates = dl.candidate_dirs(data_dir, FOLDER, self.system_dirs)
        folder = dl.find_data_dir(candidates, self.has_files)
        if folder is not None:
            return folder
        root = dl.download_root(data_dir)
        for directory in dict.fromkeys([*candidates, root]):
            if (directory / TARBALL).is_file():
                return self._extract(directory / TARBALL)
        if not self.download:
            raise self._missing(candidates, root)
        try:
            tar_path = dl.download(self.url, root / TARBALL, md5=self.tarball_md5 if self.verify else None)
        except DataError as exc:
            raise self._missing(candidates, root, str(exc)) from exc
        return self._extract(tar_path)

    def _extract(self, tar_path: Path) -> Path:
        if self.verify:
            dl.verify_file(tar_path, "md5", self.tarball_md5)
        return extract_tarball(tar_path, tar_path.parent)

    def _missing(self, searched: list[Path], root: Path, reason: str = "") -> DataError:
        return dl.missing_files_error(
            self.title,
            list(FILES),
            searched,
            root / FOLDER,
            f"{self.url} (md5 {self.tarball_md5}; put the tarball itself in {root} and it is "
            "extracted on first use)",
            reason,
        )

    def read(self, folder: Path) -> Cifar100Arrays:
        """Verify (unless off) and decode the three files of ``folder``."""
        if self.verify:
            for f in FILES:
                dl.verify_file(folder / f, "md5", self.checksums[f])
        train_images, train_fine, train_coarse = read_batch(folder / "train")
        test_images, test_fine, test_coarse = read_batch(folder / "test")
        fine_names, coarse_names = read_meta(folder / "meta")
        return Cifar100Arrays(
            train_images, train_fine, train_coarse, test_images, test_fine, test_coarse,
            fine_names, coarse_names, folder,
        )  # fmt: skip

    # ------------------------------------------------------------------ tasks

    @staticmethod
    def rows(fine: np.ndarray, tasks: TaskAssignment) -> TaskRows:
        """One row per image: its task and its label within the task."""
        return TaskRows(
            np.arange(fine.size, dtype=np.int64),
            tasks.label_of_fine[fine].astype(np.int64),
            tasks.task_of_fine[fine].astype(np.int64),
        )

    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> SingleLabelData:
        """Read the files, assign tasks and hold out a stratified, seeded validation split."""
        arrays = self.read(self.find_folder(None if data_dir is None else Path(data_dir)))
        tasks = self.assign_tasks(arrays)
        train, val, test = train_val_test(
            torch.from_numpy(arrays.train_images),
            self.rows(arrays.train_fine, tasks),
            torch.from_numpy(arrays.test_images),
            self.rows(arrays.test_fine, tasks),
            val_fraction,
            numpy_rng(seed),
            MEAN,
            STD,
        )
        return SingleLabelData(
            name=self.name,
            task_names=tasks.task_names,
            num_classes=CLASSES_PER_TASK,
            input_shape=(3, 32, 32),
            train=train,
            val=val,
            test=test,
            augment=make_image_augment(pad=4, max_degrees=self.max_degrees) if self.augment else None,
            info={
                "fine_names": arrays.fine_names,
                "coarse_names": arrays.coarse_names,
                "task_fine_classes": tasks.fine_classes(),
                "source_dir": str(arrays.directory),
                "verified": self.verify,
            },
        )


def fine_to_coarse(arrays: Cifar100Arrays) -> np.ndarray:
    """The superclass of each fine class, read off the label pairs; checks the 20 x 5 structure."""
    fine = np.concatenate([arrays.train_fine, arrays.test_fine])
    coarse = np.concatenate([arrays.train_coarse, arrays.test_coarse])
    mapping = np.full(NUM_FINE, -1, dtype=np.int64)
    for f, c in np.unique(np.stack([fine, coarse], 1), axis=0):
        if mapping[f] not in (-1, c):
            raise DataError(f"{arrays.directory}: fine class {f} appears with coarse labels {mapping[f]} and {c}")
        mapping[f] = c
    absent = np.flatnonzero(mapping < 0)
    if absent.size:
        raise DataError(f"{arrays.directory}: fine classes {absent.tolist()} have no images")
    sizes = np.bincount(mapping, minlength=NUM_COARSE)
    if np.any(sizes != CLASSES_PER_TASK):
        raise DataError(f"{arrays.directory}: each superclass needs 5 fine classes, got sizes {sizes.tolist()}")
    return mapping


class Cifar100Superclass(Cifar100Suite):
    """20 tasks, one per CIFAR-100 superclass, each a 5-way problem over its fine classes."""

    name: ClassVar[str] = "cifar100-superclass"
    gym_id: ClassVar[str] = "routing_rl/CIFAR100-Superclass-v0"
    description: ClassVar[str] = "CIFAR-100, 20 superclass tasks of 5 fine classes each (label = rank in superclass)"

    def assign_tasks(self, arrays: Cifar100Arrays) -> TaskAssignment:
        """Task = coarse label; label = rank of the fine label among its superclass's fine labels."""
        task_of_fine = fine_to_coarse(arrays)
        label_of_fine = np.zeros(NUM_FINE, dtype=np.int64)
        for coarse in range(NUM_COARSE):
            members = np.flatnonzero(task_of_fine == coarse)  # ascending fine label index
            label_of_fine[members] = np.arange(members.size)
        return TaskAssignment(task_of_fine, label_of_fine, list(arrays.coarse_names))


class Cifar100Alphabetical(Cifar100Suite):
    """20 tasks of 5 fine classes grouped by alphabetical name order: a control with no semantic
    relation inside a task, to compare against the superclass grouping."""

    name: ClassVar[str] = "cifar100-alphabetical"
    gym_id: ClassVar[str] = "routing_rl/CIFAR100-Alphabetical-v0"
    description: ClassVar[str] = "CIFAR-100, 20 tasks of 5 alphabetically consecutive fine classes"

    def assign_tasks(self, arrays: Cifar100Arrays) -> TaskAssignment:
        """Sort fine names; positions 5t..5t+4 form task t, label = position within the group."""
        order = sorted(range(NUM_FINE), key=lambda f: (arrays.fine_names[f], f))
        task_of_fine = np.zeros(NUM_FINE, dtype=np.int64)
        label_of_fine = np.zeros(NUM_FINE, dtype=np.int64)
        for position, fine in enumerate(order):
            task_of_fine[fine], label_of_fine[fine] = divmod(position, CLASSES_PER_TASK)
        names = [
            "-".join(arrays.fine_names[f] for f in order[t : t + CLASSES_PER_TASK])
            for t in range(0, NUM_FINE, CLASSES_PER_TASK)
        ]
        return TaskAssignment(task_of_fine, label_of_fine, names)

"""Fashion-MNIST as ten one-vs-rest binary tasks, the multi-task benchmark of the routing paper.

Task ``k`` asks "is this image of class ``k``?": it trains on every training image of class ``k``
(label 1) plus a seeded random 10 % of each other class (label 0) -- 6,000 + 9 x 600 = 11,400
rows on the real data -- and tests on the 1,000 test images of class ``k`` plus 100 of each other
class (1,900 rows). The images are stored once (uint8 ``[N, 1, 28, 28]``) and shared by all tasks.

Files are the four official IDX files, plain or ``.gz``. Because Debian's ``dataset-fashion-mnist``
package recompresses the archives (their ``.gz`` md5s differ from the official ones), files are
verified by the SHA-256 of their *decompressed* payload, which is the same for every copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from routing_rl.core.seeding import numpy_rngs
from routing_rl.data import download as dl
from routing_rl.data.augment import make_image_augment
from routing_rl.data.base import DataError, SingleLabelData, SingleLabelSuite
from routing_rl.data.idx import parse_idx, read_payload
from routing_rl.data.splitting import TaskRows, train_val_test

_PAYLOAD_CHECK = "sha256(decompressed)"


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (numpy's default rounds halves to even)."""
    return int(np.floor(x + 0.5))


def negatives_per_class(available: int, fraction: float) -> int:
    """Negatives drawn from a class with ``available`` images: ``round(fraction * available)``,
    at least 1 (when the class is not empty) and at most ``available``.

    With the default fraction 0.1 this is the paper's 600 per class for the 6,000 training images
    and 100 for the 1,000 test images, and it scales down proportionally for small files.
    """
    if available <= 0:
        return 0
    return min(available, max(1, round_half_up(fraction * available)))


def one_vs_rest_rows(
    labels: np.ndarray, num_classes: int, negative_fraction: float, rng: np.random.Generator
) -> TaskRows:
    """Rows of the ``num_classes`` one-vs-rest tasks: all images of class k (label 1) plus a seeded
    sample of :func:`negatives_per_class` images of every other class (label 0), per task.

    Within a task the rows are sorted by image index, so the table does not reveal the labels.
    """
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    parts: list[TaskRows] = []
    for task in range(num_classes):
        chosen = [by_class[task]]
        for other in range(num_classes):
            if other != task:
                size = negatives_per_class(by_class[other].size, negative_fraction)
                chosen.append(np.sort(rng.choice(by_class[other], size=size, replace=False)))
        index = np.concatenate(chosen).astype(np.int64)
        targets = np.zeros(index.size, dtype=np.int64)
        targets[: by_class[task].size] = 1
        order = np.argsort(index, kind="stable")
        parts.append(TaskRows(index[order], targets[order], np.full(index.size, task, dtype=np.int64)))
    return TaskRows.concat(parts)


class FashionMNISTMTL(SingleLabelSuite):
    """Ten binary "class k vs rest" tasks over Fashion-MNIST (``--env fmnist-mtl``).

    Constructor options:

    * ``download``: fetch missing files from the official mirror (default False: never touch the
      network unless asked).
    * ``verify``: check the decompressed SHA-256 of each file (default True; costs one hash of the
      bytes that are decompressed anyway, and is skipped for a file version already verified in
      this process) and, on download, the md5 of the official ``.gz`` archives. Tests with small
      generated files pass ``verify=False`` or their own ``checksums``.
    * ``checksums``: file base name -> SHA-256 of the decompressed IDX payload; defaults to
      :attr:`payload_sha256`, the values of the official files.
    * ``negative_fraction``: share of each other class drawn as negatives (0.1 = the paper's
      600/6,000 and 100/1,000); see :func:`negatives_per_class`.
    * ``mirror``: base URL to download ``<file>.gz`` from (default the official mirror).

    * ``augment``: random crop (zero padding of ``crop_pad`` pixels), horizontal flip and rotation
      up to ``max_degrees`` of training batches. The Re-examining paper (section 3.2) augments
      "for all the methods" with these three transforms, Fashion-MNIST included, without giving
      their sizes; ``--preset reexamining-fmnist`` switches it on with the defaults here (2 pixels,
      15 degrees). It is off by default so that plain runs are cheaper and their numbers stay
      comparable with earlier releases.
    """

    name: ClassVar[str] = "fmnist-mtl"
    gym_id: ClassVar[str] = "routing_rl/FashionMNIST-MTL-v0"
    description: ClassVar[str] = "Fashion-MNIST, 10 one-vs-rest binary tasks (6,000 positives + 9x600 negatives each)"
    needs_download: ClassVar[bool] = True

    title: ClassVar[str] = "Fashion-MNIST"
    subdir: ClassVar[str] = "fashion-mnist"
    system_dirs: ClassVar[tuple[Path, ...]] = (Path("/usr/share/datasets/fashion-mnist"),)
    mirror_url: ClassVar[str] = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    files: ClassVar[tuple[str, ...]] = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    payload_sha256: ClassVar[Mapping[str, str]] = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
    """SHA-256 of the decompressed official files (identical for Debian's recompressed copies)."""
    archive_md5: ClassVar[Mapping[str, str]] = {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    """MD5 of the official ``.gz`` archives, checked on download."""
    classes: ClassVar[tuple[str, ...]] = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
    mean: ClassVar[tuple[float, ...]] = (0.2860,)
    std: ClassVar[tuple[float, ...]] = (0.3530,)

    option_help: ClassVar[dict[str, str]] = {
        "download": "download missing files from the official mirror (checked against its md5)",
        "verify": "check the files' checksums",
        "negative_fraction": "negatives per task as a fraction of the other classes' images",
        "mirror": "base URL to download from instead of the official one",
        "augment": "random crop, rotation and horizontal flip of training batches (the paper's protocol)",
        "crop_pad": "zero padding in pixels before the random crop of the augmentation",
        "max_degrees": "largest rotation of the augmentation, in degrees",
    }

    def __init__(
        self,
        *,
        download: bool = False,
        verify: bool = True,
        checksums: Mapping[str, str] | None = None,
        negative_fraction: float = 0.1,
        mirror: str | None = None,
        augment: bool = False,
        crop_pad: int = 2,
        max_degrees: float = 15.0,
    ) -> None:
        if not 0.0 < negative_fraction <= 1.0:
            raise ValueError(f"negative_fraction must be in (0, 1], got {negative_fraction}")
        if crop_pad < 0 or max_degrees < 0:
            raise ValueError(f"crop_pad and max_degrees must be non-negative, got {crop_pad} and {max_degrees}")
        self.augment = augment
        self.crop_pad = crop_pad
        self.max_degrees = max_degrees
        self.download = download
        self.verify = verify
        self.checksums = dict(self.payload_sha256 if checksums is None else checksums)
        missing = [f for f in self.files if f not in self.checksums]
        if verify and missing:
            raise ValueError(f"checksums lacks entries for {', '.join(missing)}")
        self.negative_fraction = negative_fraction
        self.mirror = mirror or self.mirror_url

    # ------------------------------------------------------------------ files

    @classmethod
    def locate(cls, directory: Path, base: str) -> Path | None:
        """``directory/base.gz`` or ``directory/base``, whichever exists (gz preferred)."""
        for candidate in (directory / f"{base}.gz", directory / base):
            if candidate.is_file():
                return candidate
        return None

    @classmethod
    def present(cls, directory: Path) -> list[str]:
        """Base names of the four IDX files that ``directory`` holds (plain or ``.gz``)."""
        return [f for f in cls.files if cls.locate(directory, f) is not None]

    @classmethod
    def has_files(cls, directory: Path) -> bool:
        """Whether all four IDX files are in ``directory``."""
        return len(cls.present(directory)) == len(cls.files)

    def find_files(self, data_dir: Path | None) -> dict[str, Path]:
        """Paths of the four files, downloading them first if missing and ``download`` is set.

        Without ``download``, a searched directory that holds some but not all of the files is the
        one the user meant, so the error lists exactly the files missing *there* (a directory
        with one file lost must not read as "all four missing" somewhere else).
        """
        candidates = dl.candidate_dirs(data_dir, self.subdir, self.system_dirs)
        directory = dl.find_data_dir(candidates, self.has_files)
        if directory is None:
            target = dl.download_root(data_dir) / self.subdir
            if not self.download:
                partial = [d for d in candidates if d.is_dir() and self.present(d)]
                best = max(partial, key=lambda d: len(self.present(d)), default=target)
                raise self._missing(candidates, best)
            self._download([f for f in self.files if f not in self.present(target)], target, candidates)
            directory = target
        return {f: path for f in self.files if (path := self.locate(directory, f)) is not None}

    def _missing(self, searched: list[Path], put_in: Path, reason: str = "") -> DataError:
        """The error naming the files missing from ``put_in`` (and saying the others are there)."""
        present = self.present(put_in)
        return dl.missing_files_error(
            self.title,
            [f"{f}(.gz)" for f in self.files if f not in present],
            searched,
            put_in,
            f"{self.mirror}<file>.gz (or the Debian package dataset-fashion-mnist, which installs "
            f"them in {self.system_dirs[0]})",
            reason,
            found_in=put_in if present else None,
        )

    def _download(self, missing: list[str], target: Path, searched: list[Path]) -> None:
        for base in missing:
            expected = self.archive_md5.get(base) if self.verify else None
            try:
                dl.download(self.mirror + f"{base}.gz", target / f"{base}.gz", md5=expected)
            except DataError as exc:
                raise self._missing(searched, target, str(exc)) from exc

    def read(self, path: Path, base: str) -> np.ndarray:
        """Decode one IDX file, verifying its decompressed SHA-256 unless ``verify`` is off."""
        payload = read_payload(path)
        if self.verify:
            expected = self.checksums[base].lower()
            if not dl.is_verified(path, _PAYLOAD_CHECK, expected):
                actual = hashlib.sha256(payload).hexdigest()
                if actual != expected:
                    raise dl.checksum_error(path, _PAYLOAD_CHECK, expected, actual)
                dl.mark_verified(path, _PAYLOAD_CHECK, expected)
        return parse_idx(payload, path)

    def read_split(self, paths: dict[str, Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
        """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` of the ``train`` or ``t10k`` split."""
        image_path, label_path = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        images = self.read(image_path, f"{prefix}-images-idx3-ubyte")
        labels = self.read(label_path, f"{prefix}-labels-idx1-ubyte")
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{image_path}: expected uint8 images [N, 28, 28], got {images.dtype} {images.shape}")
        if images.shape[0] == 0:
            # A well-formed but empty file (possible with verify off) would build tasks without
            # rows and fail much later, inside training or evaluation; refuse it here instead.
            raise DataError(
                f"{image_path} holds no images (its header says 0): it is not a usable Fashion-MNIST file; "
                "delete it and fetch it again (pass -e download=true to download it)"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{label_path}: expected {images.shape[0]} uint8 labels to match {image_path.name}, "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and int(labels.max()) >= len(self.classes):
            raise DataError(f"{label_path}: label {int(labels.max())} is out of range 0..{len(self.classes) - 1}")
        return images, labels.astype(np.int64)

    # ------------------------------------------------------------------ tasks

    def task_names(self) -> list[str]:
        """``"t-shirt/top-vs-rest"``, ``"trouser-vs-rest"``, ... in class order."""
        return [f"{c.lower().replace(' ', '-')}-vs-rest" for c in self.classes]

    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> SingleLabelData:
        """Read the four files and build the ten one-vs-rest tasks.

        Negatives of train and test and the validation hold-out use independent streams spawned
        from ``seed``, so changing ``val_fraction`` does not change which negatives are drawn.
        """
        paths = self.find_files(None if data_dir is None else Path(data_dir))
        train_images, train_labels = self.read_split(paths, "train")
        test_images, test_labels = self.read_split(paths, "t10k")
        rng_train, rng_test, rng_val = numpy_rngs(seed, 3)
        k = len(self.classes)
        train_rows = one_vs_rest_rows(train_labels, k, self.negative_fraction, rng_train)
        test_rows = one_vs_rest_rows(test_labels, k, self.negative_fraction, rng_test)
        train, val, test = train_val_test(
            torch.from_numpy(train_images).unsqueeze(1),
            train_rows,
            torch.from_numpy(test_images).unsqueeze(1),
            test_rows,
            val_fraction,
            rng_val,
            self.mean,
            self.std,
        )
        return SingleLabelData(
            name=self.name,
            task_names=self.task_names(),
            num_classes=2,
            input_shape=(1, 28, 28),
            train=train,
            val=val,
            test=test,
            augment=make_image_augment(pad=self.crop_pad, max_degrees=self.max_degrees) if self.augment else None,
            info={
                "classes": list(self.classes),
                "source_dir": str(paths[self.files[0]].parent),
                "negative_fraction": self.negative_fraction,
                "verified": self.verify,
                "augment": {"crop_pad": self.crop_pad, "max_degrees": self.max_degrees, "hflip": True} if self.augment else None,
            },
        )

"""Reading the official ``cifar-100-python`` files safely: the pickles and the tarball.

The pickles are read with a restricted unpickler (only the numpy and codecs globals the official
files use), and the tarball is extracted member by member (only the three known files, no path
traversal, no links), so a malicious download cannot run code or write outside the data folder.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from routing_rl.data.base import DataError

FOLDER = "cifar-100-python"
TARBALL = "cifar-100-python.tar.gz"
TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
TARBALL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FILE_MD5: Mapping[str, str] = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}
"""MD5 of the official (uncompressed) pickle files."""
FILES: tuple[str, ...] = ("train", "test", "meta")
NUM_FINE, NUM_COARSE, CLASSES_PER_TASK = 100, 20, 5
MEAN = (0.5071, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


# ----------------------------------------------------------------------------- pickles


class _DataUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a CIFAR pickle needs (numpy arrays, bytes).

    A pickle can run arbitrary code; data files from the internet must not.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"disallowed global {module}.{name}")
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = module.replace("numpy.core.", "numpy._core.", 1)
        return super().find_class(module, name)


def load_pickle(path: Path) -> dict[bytes, Any]:
    """Load an official CIFAR pickle (``encoding="bytes"``: keys and strings are bytes)."""
    try:
        with open(path, "rb") as handle:
            obj = _DataUnpickler(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"cannot read CIFAR-100 file {path}: {exc}; delete it and fetch it again") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR-100 pickle: expected a dict, got {type(obj).__name__}")
    return obj


def _field(obj: dict[bytes, Any], key: bytes, path: Path) -> Any:
    if key not in obj:
        raise DataError(f"{path} is not a CIFAR-100 file: key {key!r} is missing (has {sorted(obj)})")
    return obj[key]


def _labels(obj: dict[bytes, Any], key: bytes, n: int, limit: int, path: Path) -> np.ndarray:
    raw = np.asarray(_field(obj, key, path))
    if raw.size and raw.dtype.kind not in "iu":  # strings or floats would be cast (or fail) instead of being refused
        raise DataError(f"{path}: {key!r} must hold integer labels, got {raw.dtype} values; delete the file and fetch it again")
    labels = raw.astype(np.int64)
    if labels.shape != (n,):
        raise DataError(f"{path}: {key!r} has shape {labels.shape}, expected ({n},)")
    if n and (labels.min() < 0 or labels.max() >= limit):
        raise DataError(f"{path}: {key!r} has values outside 0..{limit - 1}")
    return labels


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` uint8 (from the R, G, B planes), fine and coarse labels of a split."""
    obj = load_pickle(path)
    data = np.asarray(_field(obj, b"data", path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: b'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}")
    n = data.shape[0]
    fine = _labels(obj, b"fine_labels", n, NUM_FINE, path)
    coarse = _labels(obj, b"coarse_labels", n, NUM_COARSE, path)
    return data.reshape(n, 3, 32, 32), fine, coarse


def _names(obj: dict[bytes, Any], key: bytes, count: int, path: Path) -> list[str]:
    raw = _field(obj, key, path)
    if not isinstance(raw, (list, tuple)):
        raise DataError(f"{path}: {key!r} must be a list of names, got {type(raw).__name__}; delete the file and fetch it again")
    if len(raw) != count:
        raise DataError(f"{path}: {key!r} has {len(raw)} names, expected {count}")
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {key!r} holds a name that is not UTF-8 ({exc.reason} at byte {exc.start}); "
                        "delete the file and fetch it again") from None  # fmt: skip


def read_meta(path: Path) -> tuple[list[str], list[str]]:
    """Fine (100) and coarse (20) class names from ``meta``."""
    obj = load_pickle(path)
    return _names(obj, b"fine_label_names", NUM_FINE, path), _names(obj, b"coarse_label_names", NUM_COARSE, path)


@dataclass(frozen=True)
class Cifar100Arrays:
    """The decoded CIFAR-100 files."""

    train_images: np.ndarray
    train_fine: np.ndarray
    train_coarse: np.ndarray
    test_images: np.ndarray
    test_fine: np.ndarray
    test_coarse: np.ndarray
    fine_names: list[str]
    coarse_names: list[str]
    directory: Path


# ----------------------------------------------------------------------------- tarball


def _member_target(member: tarfile.TarInfo, tar_path: Path) -> str | None:
    """The file name (train/test/meta) a tar member provides, None to skip it; raises on traversal."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(f"{tar_path}: unsafe member path {member.name!r}; refusing to extract this archive")
    parts = [p for p in name.parts if p != "."]
    if len(parts) == 2 and parts[0] == FOLDER and parts[1] in FILES:
        if not member.isfile():
            raise DataError(f"{tar_path}: member {member.name!r} is not a regular file")
        return parts[1]
    return None


def extract_tarball(tar_path: Path, root: Path) -> Path:
    """Extract ``cifar-100-python/{train,test,meta}`` from the official tarball into ``root``.

    Only those three regular files are written (each through a temporary file and
    :func:`os.replace`); any member with an absolute or ``..`` path aborts the extraction.
    Returns ``root/cifar-100-python``.
    """
    folder = root / FOLDER
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            members = [(m, target) for m in tar.getmembers() if (target := _member_target(m, tar_path))]
            found = {target for _, target in members}
            if found != set(FILES):
                raise DataError(f"{tar_path} lacks {', '.join(sorted(set(FILES) - found))}; fetch it again")
            folder.mkdir(parents=True, exist_ok=True)
            for member, target in members:
                source = tar.extractfile(member)
                if source is None:
                    raise DataError(f"{tar_path}: cannot read member {member.name!r}")
                fd, tmp = tempfile.mkstemp(prefix=f".{target}.", suffix=".part", dir=folder)
                try:
                    with os.fdopen(fd, "wb") as out, source:
                        for chunk in iter(lambda: source.read(1 << 20), b""):
                            out.write(chunk)
                    os.replace(tmp, folder / target)
                finally:
                    Path(tmp).unlink(missing_ok=True)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"cannot extract {tar_path} into {root}: {exc}") from exc
    return folder


# ----------------------------------------------------------------------------- suites

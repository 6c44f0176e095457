"""Generators for small data files in exactly the official formats, plus test isolation.

The real Fashion-MNIST files may be on the machine, CIFAR-100 is not; the suites are therefore
tested on tiny files written in the official byte formats (IDX, CIFAR pickles with protocol 2 and
bytes keys, the official tarball layout), served where needed by a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import io
import pickle
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from routing_rl.data.idx import write_idx

FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# The official CIFAR-100 meta: fine names (already alphabetical in the official file), coarse
# names, and the superclass of each fine label.
CIFAR_FINE_NAMES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
    "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale "
    "willow_tree wolf woman worm"
).split()
CIFAR_COARSE_NAMES = (
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices "
    "household_furniture insects large_carnivores large_man-made_outdoor_things "
    "large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals "
    "non-insect_invertebrates people reptiles small_mammals trees vehicles_1 vehicles_2"
).split()
CIFAR_FINE_TO_COARSE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads $ROUTING_RL_DATA or writes to the real user cache."""
    monkeypatch.delenv("ROUTING_RL_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ----------------------------------------------------------------------------- Fashion-MNIST


def write_fmnist(
    directory: Path, train_per_class: int = 60, test_per_class: int = 20, gzip: bool = True, seed: int = 0
) -> Path:
    """Write the four Fashion-MNIST IDX files with ``*_per_class`` random images of each class."""
    rng = np.random.default_rng(seed)
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8)
        suffix = ".gz" if gzip else ""
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, gzip=gzip)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gzip=gzip)
    return directory


@pytest.fixture
def fmnist_dir(tmp_path: Path) -> Path:
    """A directory with small gzip Fashion-MNIST files: 60 train and 20 test images per class."""
    return write_fmnist(tmp_path / "fmnist")


# ----------------------------------------------------------------------------- CIFAR-100


def cifar_batch(fine: np.ndarray, batch_label: bytes, rng: np.random.Generator) -> dict[bytes, object]:
    """A train/test dict exactly like the official one (bytes keys, uint8 [N, 3072] data)."""
    n = fine.size
    return {
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)],
        b"batch_label": batch_label,
        b"fine_labels": [int(f) for f in fine],
        b"coarse_labels": [CIFAR_FINE_TO_COARSE[int(f)] for f in fine],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
    }


def write_cifar(
    root: Path,
    train_per_class: int = 5,
    test_per_class: int = 2,
    fine_names: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``root/cifar-100-python/{train,test,meta}`` as protocol-2 pickles; returns the folder."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {
        "train": cifar_batch(rng.permutation(np.repeat(np.arange(100), train_per_class)), b"training batch 1 of 1", rng),
        "test": cifar_batch(rng.permutation(np.repeat(np.arange(100), test_per_class)), b"testing batch 1 of 1", rng),
        "meta": {
            b"fine_label_names": [n.encode() for n in (fine_names or CIFAR_FINE_NAMES)],
            b"coarse_label_names": [n.encode() for n in CIFAR_COARSE_NAMES],
        },
    }
    for name, obj in batches.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(obj, handle, protocol=2)
    return folder


def write_tarball(folder: Path, tar_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Pack a ``cifar-100-python`` folder like the official tarball (plus optional ``extra`` members)."""
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tar_path


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """A data root holding a small ``cifar-100-python`` folder (5 train, 2 test images per class)."""
    root = tmp_path / "cifar-root"
    write_cifar(root)
    return root


# ----------------------------------------------------------------------------- HTTP


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """``serve(directory)`` starts an HTTP server on 127.0.0.1 for ``directory``; returns its base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused: no network needed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def leftovers(directory: Path) -> list[Path]:
    """Temporary ``.part`` files under ``directory`` (there must never be any)."""
    return sorted(directory.rglob("*.part")) if directory.exists() else []


@pytest.fixture
def datagen() -> SimpleNamespace:
    """The generators and official constants above, for test modules (conftest is not importable)."""
    return SimpleNamespace(
        write_fmnist=write_fmnist,
        write_cifar=write_cifar,
        write_tarball=write_tarball,
        leftovers=leftovers,
        fmnist_files=FMNIST_FILES,
        fine_names=list(CIFAR_FINE_NAMES),
        coarse_names=list(CIFAR_COARSE_NAMES),
        fine_to_coarse=list(CIFAR_FINE_TO_COARSE),
    )

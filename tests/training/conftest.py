"""Fixtures of the training tests: small Fashion-MNIST files in the official IDX format (random pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing_rl.data.idx import write_idx


def write_fmnist(directory: Path, per_class: int = 30, seed: int = 0) -> Path:
    """The four IDX files with ``per_class`` images of each class in train and in test."""
    rng = np.random.default_rng(seed)
    for prefix in ("train", "t10k"):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        write_idx(directory / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (labels.size, 28, 28), dtype=np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


@pytest.fixture
def fmnist_writer():
    """:func:`write_fmnist`, for tests that run Fashion-MNIST through the command line."""
    return write_fmnist

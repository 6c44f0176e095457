"""Task suites: multi-task data sets, each registered under its ``--env`` name.

Importing this package registers every built-in suite in the one :attr:`Suite.registry`:
single-label suites (``fmnist-mtl``, ``cifar100-superclass``, ``cifar100-alphabetical``,
``synthetic-groups``), multi-label suites (``multilabel-synthetic``, ``youtube8m``) and the
regression suite ``mmoe-synthetic``, and ``files``, which reads a user's CSV, Parquet or ``.npz``
file (its tasks of any one family). A user-defined suite registers itself the same way, by
subclassing :class:`SingleLabelSuite` or :class:`MultiLabelSuite` with a ``name``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routing_rl.data.base import DataError, SingleLabelData, SingleLabelSuite, Split, Suite
from routing_rl.data.cifar100 import Cifar100Alphabetical, Cifar100Superclass
from routing_rl.data.fashion_mnist import FashionMNISTMTL
from routing_rl.data.files_suite import FileSuite
from routing_rl.data.mmoe_synthetic import MMoESynthetic
from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit, MultiLabelSuite
from routing_rl.data.multilabel_synthetic import MultiLabelSynthetic
from routing_rl.data.synthetic import SyntheticGroups
from routing_rl.data.youtube8m import YouTube8M

MultiTaskDataset = SingleLabelData | MultiLabelData
"""What any suite's :meth:`Suite.load` returns."""

__all__ = [
    "Cifar100Alphabetical",
    "Cifar100Superclass",
    "DataError",
    "FashionMNISTMTL",
    "FileSuite",
    "MMoESynthetic",
    "MultiLabelData",
    "MultiLabelSplit",
    "MultiLabelSuite",
    "MultiLabelSynthetic",
    "MultiTaskDataset",
    "SingleLabelData",
    "SingleLabelSuite",
    "Split",
    "Suite",
    "SyntheticGroups",
    "YouTube8M",
    "load_from",
    "load_suite",
    "suite_names",
]


def suite_names() -> list[str]:
    """Names of all registered suites, in registration order."""
    return Suite.registry.names()


def load_suite(
    name: str | type[Suite],
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    **kwargs: Any,
) -> MultiTaskDataset:
    """Build the suite registered as ``name`` (or the suite class given) with ``kwargs`` and load it:
    the Python API's way in. Runs resolve ``--env`` once in the composition layer instead.

    Raises :class:`routing_rl.registry.UnknownNameError` (listing the valid names) for an unknown
    ``name`` and :class:`DataError` when its files are missing or corrupt.
    """
    cls = name if isinstance(name, type) else Suite.registry.get(name)
    return load_from(cls(**kwargs), cls.name, data_dir, seed, val_fraction)


def load_from(suite: Suite, name: str, data_dir: str | Path | None = None, seed: int = 0, val_fraction: float = 0.1) -> MultiTaskDataset:
    """Load a built suite (registered as ``name``); refuse a validation split that came out empty."""
    data = suite.load(None if data_dir is None else Path(data_dir), seed, val_fraction)
    if val_fraction > 0 and len(data.val) == 0:  # best-validation selection would compare NaNs
        raise DataError(
            f"{name}: --val-fraction {val_fraction} holds out no validation rows from {len(data.train)} training rows "
            "(a (task, label) group keeps at least one training row); give more training rows per task, "
            "or --val-fraction 0 to report the last epoch only"
        )
    return data

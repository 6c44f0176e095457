"""Task suites: multi-task datasets as shared inputs plus per-task row tables.

Importing this package registers the built-in suites (``fmnist-mtl``, ``cifar100-superclass``,
``cifar100-alphabetical``, ``synthetic-groups``) in :attr:`TaskSuite.registry`, so
:func:`load_suite` and the CLI can find them by name. A user-defined suite registers itself the
same way, by subclassing :class:`TaskSuite` with a ``name``.
"""

from __future__ import annotations

from pathlib import Path

from routing_rl.data.base import DataError, MultiTaskData, Split, TaskSuite
from routing_rl.data.cifar100 import Cifar100Alphabetical, Cifar100Superclass
from routing_rl.data.fashion_mnist import FashionMNISTMTL
from routing_rl.data.synthetic import SyntheticGroups

__all__ = [
    "Cifar100Alphabetical",
    "Cifar100Superclass",
    "DataError",
    "FashionMNISTMTL",
    "MultiTaskData",
    "Split",
    "SyntheticGroups",
    "TaskSuite",
    "load_suite",
    "suite_names",
]


def suite_names() -> list[str]:
    """Names of all registered suites, in registration order."""
    return TaskSuite.registry.names()


def load_suite(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    **kwargs: object,
) -> MultiTaskData:
    """Build the suite registered as ``name`` with ``kwargs`` and load it.

    Raises :class:`routing_rl.registry.UnknownNameError` (listing the valid names) for an unknown
    ``name`` and :class:`DataError` when its files are missing or corrupt.
    """
    suite_cls = TaskSuite.registry.get(name)
    suite = suite_cls(**kwargs)  # type: ignore[call-arg]
    return suite.load(None if data_dir is None else Path(data_dir), seed, val_fraction)

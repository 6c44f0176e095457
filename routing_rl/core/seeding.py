"""Every random stream of a run, derived from the run's one seed here and nowhere else.

A run has one integer seed (``routing-rl run --seed``, a suite trial's seed, a sweep trial's
seed). Each random stream is derived from it by a function of this module, so that the streams are
listed in one place and a change of derivation shows up as a change of this file (and of the
bit-for-bit golden runs). The derivations are kept as the project first wrote them: changing one
would change every number of every recorded run.

Four derivations, one function (or pair) each:

* the run seed as it is: :func:`torch_generator`, :func:`seeded_weights`, :func:`numpy_rng`;
* per epoch, ``(seed * 1_000_003 + epoch * 7919 + stream * 104_729) mod (2**63 - 1)`` with an
  :class:`EpochStream`: :func:`epoch_seed`, :func:`epoch_generator`;
* numpy's ``SeedSequence(seed)`` spawned into independent children: :func:`numpy_rngs`;
* numpy's ``SeedSequence([seed, key])`` with a :class:`DataStream` key (spawned or not):
  :func:`numpy_rng`, :func:`numpy_rngs` given ``key``.

The streams of a run (``seed`` is the run's seed unless said otherwise):

===================  ==============================================  ========================================  =====================================================
stream               what it draws                                   derived by                                used in
===================  ==============================================  ========================================  =====================================================
network weights      initial weights of the routed network           ``seeded_weights(seed)``                  ``network.factory.build_network``
model weights        initial weights of a multi-task model           ``seeded_weights(seed)``                  ``training.loop.model_learner``
router generator     a router's draws at construction (the routes    ``torch_generator(seed)``                 ``agents.base.Router``
                     of ``fixed-random``), until the first epoch
                     reseeds it
gate generator       a model's hard concrete gate noise; made        ``torch_generator()``: torch's            ``training.loop.model_learner``
                     before the model, reseeded by every epoch       default seed, not the run's
                     before its first draw
epoch: global        torch's global generator: dropout, any draw     ``torch.manual_seed(epoch_seed(seed,      ``training.loop.trainer`` (``train_epoch``)
                     without a generator of its own                  e, GLOBAL))``
epoch: data order    the shuffled order of the training rows         ``epoch_generator(seed, e, DATA_ORDER)``  ``training.loop.trainer`` (``train_epoch``)
epoch: augmentation  image augmentation of training batches          ``epoch_generator(seed, e,                ``training.loop.trainer`` (``train_epoch``)
                                                                     AUGMENTATION)``
epoch: sampling      the router's generator (sampled routes,         ``epoch_seed(seed, e, SAMPLING)``         ``begin_epoch`` of ``training.loop.routed_learner``
                     exploration, gate noise), a model's gate noise                                            and ``training.loop.model_learner``
synthetic teachers   ``synthetic-groups``' teacher MLPs, one         ``numpy_rngs(problem_seed or seed,        ``data.synthetic``
                     generator per group                             groups, SYNTHETIC_TEACHERS)``
synthetic samples    ``synthetic-groups``' inputs and label noise    ``numpy_rngs(seed, 3,                     ``data.synthetic``
                     (train, test), validation hold-out              SYNTHETIC_SAMPLES)``
generated problems   the whole problem of ``multilabel-synthetic``   ``numpy_rng(seed)``                       ``data.multilabel_synthetic``,
                     and of ``mmoe-synthetic``                                                                 ``data.mmoe_synthetic``
generated splits     their validation rows                           ``torch_generator(seed)``                 the same two modules
Fashion-MNIST rows   negatives of train and test, validation         ``numpy_rngs(seed, 3)``                   ``data.fashion_mnist``
                     hold-out
CIFAR-100 split      the stratified validation hold-out              ``numpy_rng(seed)``                       ``data.cifar100``
YouTube-8M split     validation and test halves of the held-out      ``torch_generator(seed)``                 ``data.youtube8m``
                     files
file splits          per-example train/validation/test split of a    ``numpy_rng(split_seed or seed,           ``data.files_suite``
                     ``files`` suite                                 FILE_SPLITS)``
===================  ==============================================  ========================================  =====================================================

Outside a training run, seeds that a caller passes in are used as they are: the analysis
permutation tests (``analysis.grouping``, ``analysis.similarity``: ``numpy_rng(seed)`` with
``routing-rl analyze --seed``), a suite table's linear reference past its row bound and the
router the battery builds only to count its parameters (both :data:`FIXED_SEED`: they must not
vary with anything), the PettingZoo env's row draws (``envs.multiagent``:
``numpy_rng(seed)`` on ``reset(seed=...)``, fresh entropy before), the Gymnasium env (its own
``reset(seed=...)``) and a sweep's Optuna sampler (the sweep file's ``seed``).

``numpy_rng(seed)`` and ``numpy_rngs(seed, n)`` are numpy's ``default_rng(seed)`` and
``SeedSequence(seed).spawn(n)``: ``default_rng(seed)`` and ``default_rng(SeedSequence(seed))``
are the same stream, so the two spellings the data suites used are one derivation.
``tests/core/test_seeding.py`` fails when a module outside this one builds a generator or seeds one
with anything but a passed-in seed or a value from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import numpy as np
import torch

EPOCH_SEED_MODULUS = 2**63 - 1
"""Keeps an epoch seed within the non-negative int64 range that ``torch.manual_seed`` takes."""


class EpochStream(IntEnum):
    """The trainer's per-epoch streams; the value is the stream's term in :func:`epoch_seed`.

    Each epoch reseeds all four from ``(seed, epoch)`` alone, so a run resumed from a checkpoint
    draws exactly what an uninterrupted run draws.
    """

    GLOBAL = 0
    """torch's global generator: dropout and any draw not given a generator of its own."""
    DATA_ORDER = 1
    """The shuffled order of the training rows."""
    AUGMENTATION = 2
    """Image augmentation of training batches."""
    SAMPLING = 3
    """The learner's samplers: a router's generator (routes, exploration, gate noise), a model's gate noise."""


class DataStream(IntEnum):
    """Keys that set a suite's numpy streams apart: ``SeedSequence([seed, key])``.

    The values are the ones the suites were written with; they only need to differ where two
    streams share a seed.
    """

    SYNTHETIC_TEACHERS = 1
    """``synthetic-groups``: one teacher MLP per group (seeded by ``problem_seed`` when given)."""
    SYNTHETIC_SAMPLES = 2
    """``synthetic-groups``: train inputs, test inputs, validation hold-out."""
    FILE_SPLITS = 18
    """``files``: the per-example train/validation/test split (seeded by ``split_seed`` when given)."""
    REFERENCE_ROWS = 19
    """Suite tables' linear reference: the training rows it is fitted on past its row bound
    (:data:`FIXED_SEED`: the same rows however often the table is drawn)."""


FIXED_SEED = 0
"""The seed of what must not depend on a run's seed: the rows a table's linear reference is fitted
on past its bound, the throwaway router the battery builds only to count its parameters."""


def epoch_seed(seed: int, epoch: int, stream: EpochStream) -> int:
    """A distinct, reproducible seed per (run seed, epoch, stream): three primes apart, within int64."""
    return (seed * 1_000_003 + epoch * 7919 + int(stream) * 104_729) % EPOCH_SEED_MODULUS


def torch_generator(seed: int | None = None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` as it is; None leaves torch's fixed default seed.

    CPU generators draw the same numbers whichever device the drawn tensors move to.
    """
    generator = torch.Generator()
    return generator if seed is None else generator.manual_seed(seed)


def epoch_generator(seed: int, epoch: int, stream: EpochStream) -> torch.Generator:
    """A CPU generator for ``stream`` of ``epoch`` (data order, augmentation)."""
    return torch_generator(epoch_seed(seed, epoch, stream))


@contextmanager
def seeded_weights(seed: int) -> Iterator[None]:
    """Initialise weights from ``seed`` inside the block without moving the caller's global stream.

    torch's initialisers draw from the global generator; forking it (CPU only) keeps the draws of
    whatever runs after the block independent of how many weights were made.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def numpy_rng(seed: int | None, key: DataStream | None = None) -> np.random.Generator:
    """numpy's generator for ``seed`` (``SeedSequence([seed, key])`` with a key); None: fresh entropy."""
    if key is None:
        return np.random.default_rng(seed)
    if seed is None:
        raise ValueError("a keyed stream needs a seed")
    return np.random.default_rng(np.random.SeedSequence([seed, int(key)]))


def numpy_rngs(seed: int, count: int, key: DataStream | None = None) -> list[np.random.Generator]:
    """``count`` independent numpy generators spawned from ``seed`` (and ``key``).

    Spawned children do not overlap, so growing one split (more validation rows) leaves the others'
    draws unchanged.
    """
    sequence = np.random.SeedSequence(seed if key is None else [seed, int(key)])
    return [np.random.default_rng(child) for child in sequence.spawn(count)]


__all__ = [
    "FIXED_SEED",
    "EPOCH_SEED_MODULUS",
    "DataStream",
    "EpochStream",
    "epoch_generator",
    "epoch_seed",
    "numpy_rng",
    "numpy_rngs",
    "seeded_weights",
    "torch_generator",
]

"""One run sequence for ``routing-rl run``, the local suite runner and the Ray backend.

A run goes: lock its directory (a busy or finished one is refused before minutes of data loading),
load the data and build the trainer, open the directory (a fresh run, a resumed checkpoint or an
overwrite), then train with a TensorBoard logger and stop cleanly on divergence. The callers only
differ in how they present it: the command line turns set-up failures into one-line errors and
prints a header and a progress bar; the suite runner turns them into a trial's set-up error and
reports a summary. Both pass those as the ``guard``, ``on_ready`` and ``fit`` hooks of
:func:`run_one`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from routing_rl.training.setup.composition import Composition
from routing_rl.training.records.run_dir import RunDirectory
from routing_rl.training.records.tb_logger import FigureBudget, TensorBoardLogger
from routing_rl.training.loop.trainer import Trainer, TrainingDiverged

T = TypeVar("T")


def unguarded(step: Callable[[], T]) -> T:
    return step()


def plain_fit(trainer: Trainer, logger: TensorBoardLogger) -> None:
    trainer.fit(logger)


@dataclass
class RunOutcome:
    """How a run ended: ``complete`` (also when it was complete already) or ``diverged`` (``message`` says where)."""

    status: str
    trainer: Trainer
    seconds: float
    message: str = ""
    already_complete: bool = False


def open_run(
    parts: Composition, resume: bool, overwrite: bool, command: list[str], guard: Callable[[Callable[[], Any]], Any] = unguarded,
) -> Trainer:
    """Lock the run's directory, build its trainer (data, network) and open the directory (fresh,
    resumed or overwritten); a failure releases the lock."""
    run_directory = RunDirectory(parts.run_dir())
    guard(lambda: run_directory.claim(resume, overwrite))
    try:
        trainer: Trainer = guard(lambda: Trainer(parts, parts.load_data(), run_directory, command))
        guard(lambda: trainer.prepare_run_dir(resume=resume, overwrite=overwrite))
    except BaseException:
        run_directory.abandon()
        raise
    return trainer


def logger_of(trainer: Trainer, budget: FigureBudget | None = None) -> TensorBoardLogger:
    """The run's TensorBoard logger; ``budget``: the figure budget it shares with the other members of its population."""
    return TensorBoardLogger(trainer.run_directory.tensorboard_path, purge_step=trainer.start_epoch, last_step=trainer.config.epochs,
                             budget=budget)  # fmt: skip


def run_one(
    parts: Composition,
    resume: bool,
    overwrite: bool,
    command: list[str],
    guard: Callable[[Callable[[], Any]], Any] = unguarded,
    on_ready: Callable[[Trainer], None] | None = None,
    fit: Callable[[Trainer, TensorBoardLogger], None] = plain_fit,
) -> RunOutcome:
    """Lock, build, open and train the run of ``parts``.

    ``guard`` runs each set-up step (the directory's lock, the data and the network, opening the
    directory) and may turn its failures into the caller's errors; ``on_ready`` sees the trainer
    before it trains (the command line prints its header there); ``fit`` trains it with the logger.
    Anything ``fit`` raises other than divergence reaches the caller.
    """
    start = time.perf_counter()
    trainer = open_run(parts, resume, overwrite, command, guard)
    if on_ready is not None:
        on_ready(trainer)
    return train_opened(trainer, fit, start)


def train_opened(trainer: Trainer, fit: Callable[[Trainer, TensorBoardLogger], None], start: float) -> RunOutcome:
    """Train an opened run with its TensorBoard logger (a run complete already is left as it is)."""
    if trainer.start_epoch > trainer.config.epochs:
        return RunOutcome("complete", trainer, time.perf_counter() - start, already_complete=True)
    logger = logger_of(trainer)
    try:
        fit(trainer, logger)
    except TrainingDiverged as exc:
        return RunOutcome("diverged", trainer, time.perf_counter() - start, str(exc))
    finally:
        logger.close()
    return RunOutcome("complete", trainer, time.perf_counter() - start)


Guard = Callable[[Callable[[], Any]], Any]


@dataclass
class MemberOutcome:
    """How one run of :func:`run_population` ended, with the size of the population it trained in
    (1: alone) and, when it trained alone beside others, why."""

    outcome: RunOutcome
    population: int
    alone: str | None = None


CONVOLUTIONS_ALONE = ("convolutional networks on a CPU train as fast alone (--population auto; "
                      "--population N trains them together)")  # fmt: skip
"""Why ``--population auto`` trains convolutional networks on a CPU alone: there a population of
the Table 2 network trained 0.83-1.05x as fast as its members alone (benchmarks/README.md), as ten
convolutions stacked in one grouped convolution ran at 0.45-0.57x of ten separate ones."""


def trains_convolutions_on_cpu(trainer: Trainer) -> bool:
    """Whether ``trainer``'s network has a convolution and trains on a CPU."""
    network = getattr(trainer.learner, "network", None)
    return trainer.device.type == "cpu" and network is not None and any(isinstance(m, torch.nn.Conv2d) for m in network.modules())


def run_population(
    runs: Sequence[tuple[Composition, bool, bool, Guard]], command: list[str], fit: Callable[[Trainer, TensorBoardLogger], None] = plain_fit,
    convolutions_alone: bool = False,
) -> list[MemberOutcome]:
    """Open every run of ``runs`` (``(parts, resume, overwrite, guard)`` each: the guard turns its set-up
    failures into the caller's errors, naming the run) and train those not yet complete in
    populations (:mod:`routing_rl.training.loop.population`): the runs that stack with each other
    together (:func:`~routing_rl.training.loop.population.stackable_groups`: seeds of one run, and
    runs that differ only in their router, rates, rewards or clipping), one population after the
    other; a run that stacks with none trains alone, and its outcome says why. ``fit`` trains a run
    that trains alone (and gives each population's first member its progress callbacks). With
    ``convolutions_alone`` a population of convolutional networks on a CPU trains its members one
    after the other instead (:data:`CONVOLUTIONS_ALONE`)."""
    from routing_rl.training.loop.population import Population, stackable_groups

    trainers: list[Trainer] = []
    opening: dict[int, float] = {}  # each run's seconds to lock, load and open, charged to it
    try:
        for parts, resume, overwrite, guard in runs:
            start = time.perf_counter()
            trainers.append(open_run(parts, resume, overwrite, command, guard))
            opening[id(trainers[-1])] = time.perf_counter() - start
    except BaseException:
        for trainer in trainers:
            trainer.run_directory.abandon()
        raise
    todo = [t for t in trainers if t.start_epoch <= t.config.epochs]
    ended: dict[int, MemberOutcome] = {}
    for trainer in trainers:
        if trainer not in todo:
            ended[id(trainer)] = MemberOutcome(train_opened(trainer, fit, time.perf_counter() - opening[id(trainer)]), 1)
    try:
        for group, reason in stackable_groups(todo):
            if len(group) > 1 and convolutions_alone and trains_convolutions_on_cpu(group[0]):
                reason = CONVOLUTIONS_ALONE  # (a group of several that stacks has no reason of its own)
            if len(group) == 1 or reason is not None:  # each member on its own, saying why
                for trainer in group:
                    start = time.perf_counter()
                    ended[id(trainer)] = MemberOutcome(train_opened(trainer, fit, start - opening[id(trainer)]), 1, reason)
                continue
            start = time.perf_counter()
            budget = FigureBudget()  # the members' figures together: a share of the population's time
            loggers = [logger_of(t, budget) for t in group]
            try:
                fit_population(Population(group), loggers, fit)
            finally:
                for logger in loggers:
                    logger.close()
            seconds = time.perf_counter() - start
            ended.update({id(t): MemberOutcome(member_outcome(t, seconds + opening[id(t)]), len(group)) for t in group})
    except BaseException:
        for trainer in todo:
            if id(trainer) not in ended:
                trainer.run_directory.abandon()  # not trained yet: its lock goes, a directory it only just made too
        raise
    return [ended[id(t)] for t in trainers]


def member_outcome(trainer: Trainer, seconds: float) -> RunOutcome:
    """How a population's member ended: complete, or diverged (its record says where)."""
    if trainer.results["status"] == "diverged":
        where = trainer.results["divergence"]
        return RunOutcome("diverged", trainer, seconds, f"diverged at epoch {where['epoch']}, batch {where['batch']}")
    return RunOutcome("complete", trainer, seconds)


def fit_population(population: Any, loggers: list[TensorBoardLogger], fit: Callable[[Trainer, TensorBoardLogger], None]) -> None:
    """Train ``population``; the callbacks ``fit`` would set on a trainer (progress lines) go on its first member."""
    first = population.trainers[0]
    setup = getattr(fit, "callbacks_for", None)
    if setup is not None:
        first.callbacks = setup(first, len(population.trainers))
    population.fit(loggers)

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

from routing_rl.training.setup.composition import Composition
from routing_rl.training.records.run_dir import RunDirectory
from routing_rl.training.records.tb_logger import TensorBoardLogger
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


def logger_of(trainer: Trainer) -> TensorBoardLogger:
    return TensorBoardLogger(trainer.run_directory.tensorboard_path, purge_step=trainer.start_epoch, last_step=trainer.config.epochs)


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


def run_population(
    runs: Sequence[tuple[Composition, bool, bool, Guard]], command: list[str], fit: Callable[[Trainer, TensorBoardLogger], None] = plain_fit,
) -> tuple[list[RunOutcome], str | None]:
    """Open every run of ``runs`` (``(parts, resume, overwrite, guard)`` each: the guard turns its set-up
    failures into the caller's errors, naming the run) and train those not yet
    complete together as one population (:mod:`routing_rl.training.loop.population`); runs that
    cannot be stacked train alone, one after the other. Returns every run's outcome and why the
    runs trained alone (None when they trained together, or when at most one had epochs left).
    ``fit`` trains a run that trains alone (and gives the first member's progress callbacks)."""
    from routing_rl.training.loop.population import Population, population_problem

    start = time.perf_counter()
    trainers: list[Trainer] = []
    try:
        for parts, resume, overwrite, guard in runs:
            trainers.append(open_run(parts, resume, overwrite, command, guard))
    except BaseException:
        for trainer in trainers:
            trainer.run_directory.abandon()
        raise
    todo = [t for t in trainers if t.start_epoch <= t.config.epochs]
    problem = population_problem(todo) if len(todo) > 1 else None
    if len(todo) <= 1 or problem is not None:
        return [train_opened(t, fit, start) for t in trainers], problem
    loggers = [logger_of(t) for t in todo]
    try:
        fit_population(Population(todo), loggers, fit)
    finally:
        for logger in loggers:
            logger.close()
    seconds = time.perf_counter() - start
    return [RunOutcome("complete", t, seconds, already_complete=True) if t not in todo else member_outcome(t, seconds) for t in trainers], None


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

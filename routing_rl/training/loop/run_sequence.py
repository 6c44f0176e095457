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
from collections.abc import Callable
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
    run_directory = RunDirectory(parts.run_dir())
    guard(lambda: run_directory.claim(resume, overwrite))
    try:
        trainer: Trainer = guard(lambda: Trainer(parts, parts.load_data(), run_directory, command))
        guard(lambda: trainer.prepare_run_dir(resume=resume, overwrite=overwrite))
    except BaseException:
        run_directory.abandon()
        raise
    if on_ready is not None:
        on_ready(trainer)
    if trainer.start_epoch > parts.config.epochs:
        return RunOutcome("complete", trainer, time.perf_counter() - start, already_complete=True)
    logger = TensorBoardLogger(trainer.run_directory.tensorboard_path, purge_step=trainer.start_epoch,
                               last_step=trainer.config.epochs)
    try:
        fit(trainer, logger)
    except TrainingDiverged as exc:
        return RunOutcome("diverged", trainer, time.perf_counter() - start, str(exc))
    finally:
        logger.close()
    return RunOutcome("complete", trainer, time.perf_counter() - start)


__all__ = ["RunOutcome", "run_one"]

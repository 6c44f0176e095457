"""A training run's progress as one plain line every few seconds, for runs nobody watches in a terminal.

``routing-rl run`` draws a progress bar; a suite's trials run in worker processes whose output is
interleaved in one log, where a bar would be garbage and silence looks like a hang (a trial of a
real suite trains for minutes between its start and its summary line). :class:`ProgressLine`
prints ``wpl-s2: epoch 3/20, batch 140/420, 38,400 samples/s`` at most every ``every`` seconds, and
nothing for a run shorter than that. It rides on the trainer's ``on_batch`` callback, which gets the
batch's size and its loss as a float the trainer has already read: per batch it adds one clock read
and a comparison, no host sync. Each line leaves in one ``write`` call, so lines of several workers
sharing a pipe or terminal never mix mid-line.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from routing_rl.training.loop.trainer import Callbacks, Trainer
from routing_rl.training.records.tb_logger import TensorBoardLogger

PROGRESS_EVERY = 10.0
"""Seconds between two progress lines of a run (and before its first)."""


def write_line(line: str) -> None:
    """Write ``line`` and a newline to standard output in one system call where there is a file
    descriptor (a write of under 4 KiB to a pipe is atomic), else through the stream and flush it."""
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream (io.UnsupportedOperation is both)
        stream.write(line + "\n")
        stream.flush()
        return
    stream.flush()  # what the stream holds goes first, in order
    os.write(fd, (line + "\n").encode(errors="replace"))


def batches_per_epoch(trainer: Trainer) -> int:
    """Training batches in one epoch of ``trainer``'s run (``--max-batches-per-epoch`` applied)."""
    cfg = trainer.config
    batches = math.ceil(len(trainer.data.train) / cfg.batch_size)
    return min(batches, cfg.max_batches_per_epoch) if cfg.max_batches_per_epoch is not None else batches


@dataclass
class ProgressLine:
    """Counts a run's batches and samples and emits a line when ``every`` seconds have passed since
    the last one (or since training began). The rate is that of the batches since the last line or
    the epoch's start, whichever is later, so evaluation between epochs does not lower it."""

    name: str
    batches: int
    every: float = PROGRESS_EVERY
    emit: Callable[[str], None] = write_line
    clock: Callable[[], float] = time.monotonic
    epoch: int = field(default=0, init=False)
    epochs: int = field(default=0, init=False)
    batch: int = field(default=0, init=False)
    _line_at: float | None = field(default=None, init=False)
    _window_at: float = field(default=0.0, init=False)
    _window_samples: int = field(default=0, init=False)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        now = self.clock()
        if self._line_at is None:
            self._line_at = now  # the first line comes ``every`` seconds after training began
        self.epoch, self.epochs, self.batch = epoch, epochs, 0
        self._window_at, self._window_samples = now, 0

    def on_batch(self, samples: int, loss: float) -> None:
        self.batch += 1
        self._window_samples += samples
        now = self.clock()
        if self._line_at is None or now - self._line_at < self.every:
            return
        seconds = now - self._window_at
        rate = f", {self._window_samples / seconds:,.0f} samples/s" if seconds > 0 else ""
        self.emit(f"{self.name}: epoch {self.epoch}/{self.epochs}, batch {self.batch}/{self.batches}{rate}")
        self._line_at = self._window_at = now
        self._window_samples = 0

    def callbacks(self) -> Callbacks:
        """The trainer's callbacks that feed this line."""
        return Callbacks(on_epoch_start=self.on_epoch_start, on_batch=self.on_batch)


def fit_with_lines(name: str | Callable[[Trainer], str], every: float = PROGRESS_EVERY) -> Callable[[Trainer, TensorBoardLogger], None]:
    """A ``fit`` hook of :func:`~routing_rl.training.loop.run_sequence.run_one` that trains with a
    :class:`ProgressLine` named ``name`` (or by ``name(trainer)``: one hook for several runs)."""

    def label(trainer: Trainer) -> str:
        return name(trainer) if callable(name) else name

    def fit(trainer: Trainer, logger: TensorBoardLogger) -> None:
        trainer.callbacks = ProgressLine(label(trainer), batches_per_epoch(trainer), every).callbacks()
        trainer.fit(logger)

    def callbacks_for(trainer: Trainer, members: int) -> Any:
        """The progress line of a population's first member, named for the population."""
        return ProgressLine(f"{label(trainer)} (+{members - 1} in its population)", batches_per_epoch(trainer), every).callbacks()

    fit.callbacks_for = callbacks_for  # type: ignore[attr-defined]
    return fit


__all__ = ["PROGRESS_EVERY", "ProgressLine", "batches_per_epoch", "fit_with_lines", "write_line"]

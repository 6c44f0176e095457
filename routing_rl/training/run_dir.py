"""A run's directory: ``results.json`` and ``checkpoint.pt``, written atomically every epoch, by one writer.

"Do not clobber an existing run", "resume only with the same options", "write results and
checkpoint atomically" and "one writer per run directory" live here once. The writer holds an
exclusive ``flock`` on ``run.lock`` (which records its PID) for as long as it trains; the kernel
drops the lock when the process ends, however it ends, so the lock of a killed run never needs
cleaning up, and the ``.tmp`` files a killed write leaves behind are removed when the next writer
takes the directory.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from routing_rl.training.io import load_checkpoint, save_checkpoint, write_json


class RunExistsError(RuntimeError):
    """The run directory already holds a run that was not asked to be resumed (or not like this)."""


class RunDirError(RuntimeError):
    """The run directory cannot be used: not a directory, not writable, or held by another run."""


LOCK_NAME = "run.lock"


class RunDirectory:
    """Where one run keeps its results and its last checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    # ---- one writer -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Create the directory if needed and take its lock; refuse if another process holds it."""
        if self._lock_fd is not None:
            return
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--logdir {self.path} is a file, not a directory; choose another --logdir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot use --logdir {self.path}: {exc.strerror or exc}; choose another --logdir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.path} is in use by another routing-rl run (PID {holder}); wait for it to finish "
                "or choose another --logdir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise RunDirError(f"cannot write into --logdir {self.path}: {exc.strerror or exc}") from None
        self._lock_fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        for orphan in [*self.path.glob(".results.json.*.tmp"), *self.path.glob(".checkpoint.pt.*.tmp")]:
            orphan.unlink(missing_ok=True)  # left by a write that a kill interrupted

    def release(self) -> None:
        """Give the directory up (the end of a run); the lock file stays, unlocked."""
        if self._lock_fd is not None:
            self._finalizer()
            self._lock_fd = None

    # ---- opening ----------------------------------------------------------------------------
    def open(
        self,
        resume: bool,
        overwrite: bool,
        differences: Callable[[dict[str, Any]], list[str]],
        map_location: torch.device | str = "cpu",
    ) -> dict[str, Any] | None:
        """Take the directory, refuse to clobber an existing run unless asked; on ``resume`` return the
        last checkpoint. ``differences`` names the options of the stored config that differ from
        this run's; a resume with different options is refused."""
        self.acquire()
        try:
            return self._open(resume, overwrite, differences, map_location)
        except BaseException:
            self.release()
            raise

    def _open(
        self, resume: bool, overwrite: bool, differences: Callable[[dict[str, Any]], list[str]], map_location: Any
    ) -> dict[str, Any] | None:
        exists = self.results_path.exists() or self.checkpoint_path.exists()
        if exists and not resume and not overwrite:
            raise RunExistsError(
                f"{self.path} already holds a run; pass --resume to continue it, "
                "--overwrite to start again, or choose another --logdir"
            )
        if resume and self.checkpoint_path.exists():
            state = load_checkpoint(self.checkpoint_path, map_location)
            changed = differences(state["config"])
            if changed:
                raise RunExistsError(f"cannot resume {self.path}: options differ from the stored run: {', '.join(changed)}")
            return state
        if exists and overwrite:
            for path in (self.results_path, self.checkpoint_path):
                path.unlink(missing_ok=True)
        return None

    # ---- writing ----------------------------------------------------------------------------
    def save(self, epoch: int, config: dict[str, Any], results: dict[str, Any], state: dict[str, Any]) -> None:
        """Write ``results.json``, then the checkpoint (``state`` holds the state dicts to restore)."""
        self.acquire()
        write_json(self.results_path, results)
        save_checkpoint(self.checkpoint_path, {"epoch": epoch, "config": config, "results": results, **state})

    def save_results(self, results: dict[str, Any]) -> None:
        """Write ``results.json`` alone (a stopped run's status, with no state worth resuming from)."""
        self.acquire()
        write_json(self.results_path, results)

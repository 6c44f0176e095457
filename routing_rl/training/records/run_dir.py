"""A run's directory: ``results.json`` and ``checkpoint.pt``, written atomically every epoch, by one writer.

"Do not clobber an existing run", "resume only with the same options", "write results and
checkpoint atomically" and "one writer per run directory" live here once. The writer holds an
exclusive ``flock`` on ``run.lock`` (which records its PID) for as long as it trains; the kernel
drops the lock when the process ends, however it ends, so the lock of a killed run never needs
cleaning up, and the ``.tmp`` files a killed write leaves behind are removed when the next writer
takes the directory.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from routing_rl.core.files import kind_of
from routing_rl.training.records.io import load_checkpoint, save_checkpoint, write_json
from routing_rl.training.records.results import RESULTS_NAME, ResultsError, load_results


class RunExistsError(RuntimeError):
    """The run directory already holds a run that was not asked to be resumed (or not like this)."""


class RunDirError(RuntimeError):
    """The run directory cannot be used: not a directory, not writable, or held by another run."""


LOCK_NAME = "run.lock"
CHECKPOINT_NAME = "checkpoint.pt"
TENSORBOARD_NAME = "tensorboard"

RUN_FILES = (RESULTS_NAME, CHECKPOINT_NAME, LOCK_NAME, TENSORBOARD_NAME)
"""What a run writes into its directory; a directory holding one of them is a run directory."""

SYSTEM_FOLDERS = tuple(Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/var"))
"""Folders of the operating system: no run belongs in or under them."""


def ownership_problem(path: Path) -> str | None:
    """Why a run cannot own ``path`` (None when it can): a run writes results.json, checkpoint.pt,
    run.lock and tensorboard/ into its directory and ``--overwrite`` deletes the first two, so the
    directory must be new, empty or a run directory, and never ``/``, the home directory or a system
    folder, where a typo would scatter (or remove) files the user did not mean to give away."""
    where = path.resolve()
    if where == Path(where.anchor):
        return "is the root of the file system"
    if where == Path.home().resolve():
        return "is your home directory"
    if any(where == folder or folder in where.parents for folder in SYSTEM_FOLDERS):
        return "is a system folder"
    if where.is_dir():
        try:
            entries = {e.name for e in where.iterdir()}
        except OSError:
            return None  # acquire() reports what the system says
        if entries and not entries & set(RUN_FILES):
            return f"already holds other files ({', '.join(sorted(entries)[:3])}{', ...' if len(entries) > 3 else ''}), not a run"
    return None


def open_lock(path: Path) -> int:
    """The descriptor of the lock file ``path``, created if missing, that the writer may truncate.

    Opened without following a symbolic link and checked on the descriptor before anything is
    written: a run folder shared by someone else may hold ``run.lock`` as a link (or a hard link)
    to another file, and truncating the lock to write the PID would then wipe that file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunDirError(f"{path} is a symbolic link; a run's lock must be a plain file: remove the link and run again") from None
        raise
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        what = kind_of(status.st_mode) if not stat.S_ISREG(status.st_mode) else f"a file with {status.st_nlink} hard links"
        raise RunDirError(f"{path} is {what}; a run's lock must be a plain file of its own: remove it and run again")
    return fd


class RunDirectory:
    """Where one run keeps its results and its last checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._created = False

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_NAME

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def tensorboard_path(self) -> Path:
        """The TensorBoard event files' folder (``tensorboard --logdir`` reads it)."""
        return self.path / TENSORBOARD_NAME

    def status(self) -> str:
        """``complete`` or ``diverged`` (a finished run's results), ``partial`` (a checkpoint to resume
        from), else ``new``; read without taking the lock, so a running run's directory can be asked."""
        if self.results_path.exists() or self.results_path.is_symlink():
            try:  # the validating reader: a damaged "complete" record is not finished, as `suite table` says
                status = load_results(self.results_path)["status"]
            except ResultsError:
                status = None
            if status in ("complete", "diverged"):
                return str(status)
        return "partial" if self.checkpoint_path.exists() else "new"

    # ---- one writer -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Create the directory if needed and take its lock; refuse if another process holds it."""
        if self._lock_fd is not None:
            return
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--logdir {self.path} is {kind_of(self.path.stat().st_mode)}, not a directory; choose another --logdir")
        if reason := ownership_problem(self.path):
            raise RunDirError(f"cannot use --logdir {self.path}: it {reason}; give a new or empty directory, or a run's")
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            fd = open_lock(self.path / LOCK_NAME)
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

    def claim(self, resume: bool, overwrite: bool) -> None:
        """Take the directory and refuse to clobber a run in it, before any data is loaded: a second
        writer, or a run that needs --resume or --overwrite, is told at once, not after the set-up."""
        self.acquire()
        if (self.results_path.exists() or self.checkpoint_path.exists()) and not resume and not overwrite:
            self.abandon()
            raise RunExistsError(
                f"{self.path} already holds a run; pass --resume to continue it, "
                "--overwrite to start again, or choose another --logdir"
            )

    def abandon(self) -> None:
        """Give the directory up after a failed set-up; remove it if this writer made it and left only its lock."""
        self.release()
        try:
            if self._created and [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
                (self.path / LOCK_NAME).unlink(missing_ok=True)
                self.path.rmdir()
        except OSError:
            pass  # a directory someone else changed meanwhile stays as it is
        self._created = False

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
        for path in (self.results_path, self.checkpoint_path, self.tensorboard_path):
            if path.is_symlink():  # refused before training, not at the first save an epoch later
                raise RunDirError(f"{path} is a symbolic link; a run writes its own files there: remove the link and run again")
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

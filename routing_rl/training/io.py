"""Atomic writes: results and checkpoints are written to a temporary file and renamed into place,
so an interrupted run never leaves a half-written file behind; a link where a file is written is
refused, and a checkpoint is loaded only from a regular file of a bounded size."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from routing_rl.core.files import CHECKPOINT_LIMIT, FileCheckError, open_regular, refuse_link


def _atomic_write(path: Path, write: Any, verify: Callable[[Path], None] | None = None) -> None:
    """Write through a temporary file in the same folder, renamed over ``path`` when complete; a
    link standing where ``path`` should be is refused first (:func:`refuse_link`). ``verify`` reads
    the complete temporary file and may raise: then ``path`` is left exactly as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    data = json.dumps(obj, indent=2, sort_keys=False).encode()
    _atomic_write(path, lambda handle: handle.write(data))


def write_text(path: Path, text: str, verify: Callable[[Path], None] | None = None) -> None:
    """Write ``text`` as UTF-8, atomically (a table or report a reader may open at any moment);
    ``verify`` checks the written file before it replaces ``path`` (a suite file that must parse)."""
    data = text.encode("utf-8")
    _atomic_write(path, lambda handle: handle.write(data), verify)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` as it is, atomically (a kept copy of a results.json, byte for byte)."""
    _atomic_write(path, lambda handle: handle.write(data))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` a checkpoint dictionary, atomically."""
    _atomic_write(path, lambda handle: torch.save(state, handle))


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded safely: truncated, corrupt, or holding more than state."""


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors, numbers, strings, lists and dicts only,
    so a checkpoint file can never run code (a planted ``__reduce__`` payload is refused)."""
    try:
        handle = open_regular(path, CHECKPOINT_LIMIT, "checkpoint")
    except FileNotFoundError:
        raise CheckpointError(f"cannot load checkpoint {path}: no such file (start again with --overwrite)") from None
    except FileCheckError as exc:
        raise CheckpointError(f"cannot load checkpoint {exc} (start again with --overwrite)") from None
    try:
        with handle:
            state = torch.load(handle, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else type(exc).__name__)
        why = why.replace("WeightsUnpickler error: ", "").split(". ")[0].rstrip(".")
        raise CheckpointError(
            f"cannot load checkpoint {path}: {why[:160]}; it is corrupt or was not written by routing-rl "
            "(start again with --overwrite)"
        ) from None
    if not isinstance(state, dict) or "epoch" not in state or "results" not in state:
        raise CheckpointError(f"{path} is not a routing-rl checkpoint (start again with --overwrite)")
    return state

"""Atomic writes: results and checkpoints are written to a temporary file and renamed into place,
so an interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    data = json.dumps(obj, indent=2, sort_keys=False).encode()
    _atomic_write(path, lambda handle: handle.write(data))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8, atomically (a table or report a reader may open at any moment)."""
    data = text.encode("utf-8")
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
        state = torch.load(path, map_location=map_location, weights_only=True)
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

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


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` a checkpoint dictionary, atomically."""
    _atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=False)

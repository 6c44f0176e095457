"""Atomic writes: results and checkpoints are written to a temporary file and renamed into place,
so an interrupted run never leaves a half-written file behind; a link where a file is written is
refused, and a checkpoint is loaded only from a regular file of a bounded size."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from routing_rl.core.files import CHECKPOINT_LIMIT, FileCheckError, open_regular, refuse_link
from routing_rl.training.setup.config import MAX_EPOCHS


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
    if problem := checkpoint_problem(state, path):
        raise CheckpointError(f"cannot resume from {path}: {problem}; the checkpoint is damaged (start again with --overwrite)")
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """``repr(value)``, cut short: a damaged file's value goes into a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def checkpoint_problem(state: dict[str, Any], path: Path) -> str | None:
    """What makes a loaded checkpoint unfit to resume from, in the words of an error message (None
    when it is fit): its epoch must be a whole epoch of its run (0 to the run's ``epochs``, the last
    one its results record), its config an option table, its state tables tables and its first loss
    a number. A resume then never trains from "epoch -5" or stops on a ``KeyError`` deep in the
    set-up. (The trainer validates the results record itself against the results.json schema.)"""
    config = state.get("config")
    if not isinstance(config, dict):
        return "it holds no config (the options of its run)" if config is None else f"its config is {type(config).__name__}, not an option table"
    epochs = config.get("epochs")
    if not _is_int(epochs) or not 1 <= epochs <= MAX_EPOCHS:
        return f"its config gives epochs = {_show(epochs)}, not a number of epochs from 1 to {MAX_EPOCHS}"
    epoch = state["epoch"]
    if not _is_int(epoch) or not 0 <= epoch <= epochs:
        return f"its epoch is {_show(epoch)}, not a finished epoch of its run (an integer from 0 to {epochs})"
    results = state["results"]
    if not isinstance(results, dict) or not isinstance(results.get("epochs"), list):
        return "its results record holds no list of epochs"
    recorded = [r.get("epoch") if isinstance(r, dict) else None for r in results["epochs"]]
    if recorded[-1:] != ([epoch] if epoch else []):
        last = "records no epoch" if not recorded else f"ends at epoch {_show(recorded[-1])}" if recorded[-1] is not None else "ends with a damaged record"
        return f"its epoch is {epoch}, but its results record {last}"
    if not isinstance(results.get("provenance"), dict):
        return "its results record has no provenance table"
    for key in ("modules", "optimizers"):
        tables = state.get(key)
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            what = "missing" if tables is None else f"{type(tables).__name__}, not a table" if not isinstance(tables, dict) else "not a table of state tables"
            return f"its {key} state is {what}"
    for where, first_loss in (("first_loss", state.get("first_loss")), ("results.first_loss", results.get("first_loss"))):
        if first_loss is not None and (isinstance(first_loss, bool) or not isinstance(first_loss, (int, float)) or not math.isfinite(first_loss)):
            return f"its {where} is {_show(first_loss)}, not a finite number"
    return None

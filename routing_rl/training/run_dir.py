"""A run's directory: ``results.json`` and ``checkpoint.pt``, written atomically every epoch.

Shared by every trainer so that "do not clobber an existing run", "resume only with the same
options" and "write results and checkpoint atomically" mean the same thing for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from routing_rl.training.io import load_checkpoint, save_checkpoint, write_json


class RunExistsError(RuntimeError):
    """The run directory already holds a run that was not asked to be resumed (or not like this)."""


class RunDirectory:
    """Where one run keeps its results and its last checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def open(
        self,
        resume: bool,
        overwrite: bool,
        differences: Callable[[dict[str, Any]], list[str]],
        map_location: torch.device | str = "cpu",
    ) -> dict[str, Any] | None:
        """Refuse to clobber an existing run unless asked; on ``resume`` return the last checkpoint.

        ``differences`` names the options of the stored config that differ from this run's; a
        resume with different options is refused.
        """
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

    def save(self, epoch: int, config: dict[str, Any], results: dict[str, Any], state: dict[str, Any]) -> None:
        """Write ``results.json``, then the checkpoint (``state`` holds the state dicts to restore)."""
        write_json(self.results_path, results)
        save_checkpoint(self.checkpoint_path, {"epoch": epoch, "config": config, "results": results, **state})

    def save_results(self, results: dict[str, Any]) -> None:
        """Write ``results.json`` alone (a stopped run's status, with no state worth resuming from)."""
        write_json(self.results_path, results)

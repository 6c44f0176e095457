"""Everything that defines a run; stored in results.json and checked on ``--resume``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunConfig:
    """Options of ``routing-rl run`` (see ``routing-rl run --help`` for their meaning)."""

    agent: str = "fixed-random"
    env: str = "synthetic-groups"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    router_lr: float | None = None
    separate_optimizers: bool = False
    optimizer: str = "adam"
    warmup_epochs: int = 0
    seed: int = 0
    routed: str = "fc"
    blocks: int | None = None
    hidden: int = 64
    filters: int = 32
    reward: str = "correct"
    collab_reward: float = 0.0
    collab_window: int = 256
    observe_hidden: bool = False
    val_fraction: float = 0.1
    eval_batch_size: int = 1024
    device: str = "auto"
    logdir: str | None = None
    data_dir: str | None = None
    agent_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)
    max_batches_per_epoch: int | None = None

    def run_dir(self) -> Path:
        if self.logdir:
            return Path(self.logdir)
        return Path("runs") / f"{self.env}-{self.agent}-routed_{self.routed.replace(',', '_')}-seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # Options that may differ between an interrupted run and its resumption.
    RESUMABLE_CHANGES = ("epochs", "device", "logdir", "data_dir", "eval_batch_size")

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Names of options that differ from a stored config (ignoring those a resume may change)."""
        mine = self.to_dict()
        return [k for k, v in mine.items() if k not in self.RESUMABLE_CHANGES and other.get(k, v) != v]

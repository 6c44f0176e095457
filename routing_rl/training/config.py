"""Everything that defines a run; stored in results.json and checked on ``--resume``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing stored configs."""
    return json.loads(json.dumps(value))


@dataclass
class BaseRunConfig:
    """Options every kind of run has (routing network or multi-task model); see ``routing-rl run --help``."""

    agent: str = "fixed-random"
    env: str = "synthetic-groups"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    eval_batch_size: int = 1024
    device: str = "auto"
    logdir: str | None = None
    data_dir: str | None = None
    agent_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)
    max_batches_per_epoch: int | None = None

    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("epochs", "device", "logdir", "data_dir", "eval_batch_size")
    """Options that may differ between an interrupted run and its resumption."""

    def check(self) -> None:
        """Raise ``ValueError`` for option values no run can use (subclasses add their own)."""
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")

    def run_name(self) -> str:
        """The default run directory's name under ``runs/``."""
        return f"{self.env}-{self.agent}-seed{self.seed}"

    def run_dir(self) -> Path:
        return Path(self.logdir) if self.logdir else Path("runs") / self.run_name()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Names of options that differ from a stored config (ignoring those a resume may change)."""
        mine, theirs = _jsonable(self.to_dict()), _jsonable(other)
        return [k for k, v in mine.items() if k not in self.RESUMABLE_CHANGES and theirs.get(k, v) != v]


@dataclass
class RunConfig(BaseRunConfig):
    """A routing-network run: the routed network, the router and how they are trained."""

    router_lr: float | None = None
    separate_optimizers: bool = False
    optimizer: str = "adam"
    warmup_epochs: int = 0
    routed: str = "fc"
    blocks: int | None = None
    hidden: int = 64
    filters: int = 32
    reward: str = "correct"
    collab_reward: float = 0.0
    collab_window: int = 256
    observe_hidden: bool = False

    def check(self) -> None:
        super().check()
        if self.router_lr is not None and self.router_lr <= 0:
            raise ValueError(f"--router-lr must be positive, got {self.router_lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"--warmup-epochs must be >= 0, got {self.warmup_epochs}")

    def run_name(self) -> str:
        return f"{self.env}-{self.agent}-routed_{self.routed.replace(',', '_')}-seed{self.seed}"

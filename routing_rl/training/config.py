"""Everything that defines a run: one :class:`RunConfig` for routers and multi-task models alike.

It is stored in results.json and checkpoints, and compared on ``--resume``: a run continues only
with the options it was started with (except those in :attr:`RunConfig.RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

ROUTER_ONLY_OPTIONS: tuple[str, ...] = (
    "warmup_epochs", "routed", "blocks", "fc_layers", "hidden", "filters", "channels_last", "reward", "collab_reward", "collab_window", "observe_hidden",
    "collab_form", "module_loss", "loss_reduction", "dropout",
)  # fmt: skip
"""Options that configure the routed network or its router episodes; meaningless for multi-task models."""

MULTI_OUTPUT_ONLY_OPTIONS: tuple[str, ...] = ("map_k",)
"""Options of the multi-label family's metric; meaningless for single-label suites."""

REWARDS: tuple[str, ...] = ("auto", "correct", "neg-loss")
COLLAB_FORMS: tuple[str, ...] = ("once", "public-code")
MODULE_LOSSES: tuple[str, ...] = ("cross-entropy", "mse-one-hot")
LOSS_REDUCTIONS: tuple[str, ...] = ("mean", "sum")
GRAD_CLIP_MODES: tuple[str, ...] = ("norm", "public-code")

MAX_FC_LAYERS = 1000
"""The most ``--fc-layers``: the layer list is built before the memory estimate, so it is bounded first."""

STORED_BEFORE_DEFAULT_CHANGES: dict[str, Any] = {"channels_last": False}
"""Options whose default changed: a stored config without them (from an older release) ran with this value."""


def default_routed(agent: str) -> str:
    """``--routed`` where the command line or a suite does not give it: the router's own default
    (``Router.default_routed``: ``all`` for no-sharing), else ``fc``."""
    import routing_rl  # noqa: F401  (registers every built-in agent)
    from routing_rl.registry import AGENTS

    return str(getattr(AGENTS.get(agent), "default_routed", "fc"))


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing stored configs."""
    return json.loads(json.dumps(value))


@dataclass
class RunConfig:
    """The options of ``routing-rl run`` (see its ``--help``); ``agent_options``/``env_options`` are ``-o``/``-e``."""

    agent: str = "fixed-random"
    env: str = "synthetic-groups"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    router_lr: float | None = None
    lr_milestones: list[int] = field(default_factory=list)
    lr_decay: float | list[float] = 0.1  # one factor per milestone, or one for all
    step_epochs: list[int] = field(default_factory=list)  # the optimizers step only in these epochs (empty: every epoch)
    grad_clip: float | None = None
    grad_clip_mode: str = "norm"
    separate_optimizers: bool = False
    optimizer: str = "adam"
    fused_optimizer: bool = False
    warmup_epochs: int = 0
    seed: int = 0
    routed: str = "fc"
    blocks: int | None = None
    fc_layers: int | None = None
    hidden: int = 64
    filters: int = 32
    dropout: float = 0.0  # the Re-examining paper swept 0-0.9 and chose none
    channels_last: bool = True  # routed networks on images: 1.4-1.9x faster on CPUs; --contiguous for the published runs' layout
    reward: str = "auto"
    collab_reward: float = 0.0
    collab_window: int = 256
    collab_form: str = "once"
    module_loss: str = "cross-entropy"
    loss_reduction: str = "mean"
    observe_hidden: bool = False
    map_k: int = 10
    val_fraction: float = 0.1
    eval_batch_size: int = 128  # smaller batches keep activations in cache: 2x faster, same outputs (benchmarks/eval_batch.py)
    threads: int | None = None
    device: str = "auto"
    logdir: str | None = None
    data_dir: str | None = None
    agent_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)
    max_batches_per_epoch: int | None = None
    divergence_factor: float = 1000.0
    preset: str | None = None

    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = (
        "epochs", "device", "logdir", "data_dir", "eval_batch_size", "threads", "divergence_factor",
    )  # fmt: skip
    """Options that may differ between an interrupted run and its resumption."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the option for values no run can use."""
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size, "--map-k": self.map_k,
                    "--collab-window": self.collab_window, "--hidden": self.hidden, "--filters": self.filters}  # fmt: skip
        for flag, value in positive.items():
            if value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        floats = {"--lr": self.lr, "--router-lr": self.router_lr, "--collab-reward": self.collab_reward,
                  "--val-fraction": self.val_fraction, "--divergence-factor": self.divergence_factor}  # fmt: skip
        for flag, value in floats.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{flag} must be a finite number, got {value}")
        if any(not isinstance(m, int) or m < 1 for m in self.lr_milestones):
            raise ValueError(f"--lr-milestones must be epochs >= 1, got {self.lr_milestones}")
        if len(set(self.lr_milestones)) != len(self.lr_milestones):
            raise ValueError(f"--lr-milestones repeats an epoch: {self.lr_milestones}; list each epoch once")
        decays = self.lr_decay if isinstance(self.lr_decay, list) else [self.lr_decay]
        if not decays or any(not isinstance(d, (int, float)) or not 0 < d <= 1 or not math.isfinite(d) for d in decays):
            raise ValueError(f"--lr-decay must be in (0, 1] (one factor, or one per milestone), got {self.lr_decay}")
        if isinstance(self.lr_decay, list) and len(self.lr_decay) != len(self.lr_milestones):
            raise ValueError(f"--lr-decay gives {len(self.lr_decay)} factors for {len(self.lr_milestones)} --lr-milestones; give one, or one per milestone")
        if any(not isinstance(e, int) or e < 1 for e in self.step_epochs) or len(set(self.step_epochs)) != len(self.step_epochs):
            raise ValueError(f"--step-epochs must be distinct epochs >= 1, got {self.step_epochs}")
        if self.grad_clip is not None and (not math.isfinite(self.grad_clip) or self.grad_clip <= 0):
            raise ValueError(f"--grad-clip must be a positive number, got {self.grad_clip}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.router_lr is not None and self.router_lr <= 0:
            raise ValueError(f"--router-lr must be positive, got {self.router_lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"--warmup-epochs must be >= 0, got {self.warmup_epochs}")
        if self.blocks is not None and self.blocks < 1:
            raise ValueError(f"--blocks must be at least 1, got {self.blocks}")
        if self.fc_layers is not None and not 0 <= self.fc_layers <= MAX_FC_LAYERS:
            raise ValueError(f"--fc-layers must be from 0 to {MAX_FC_LAYERS}, got {self.fc_layers}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {self.threads}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not any(token.strip() for token in self.routed.split(",")):
            raise ValueError(f"--routed {self.routed!r} names no layer; name the routed layers (e.g. fc, conv3, all), or none for no routed layer")
        if any(not token.strip() for token in self.routed.split(",")):
            raise ValueError(f"--routed {self.routed!r} has an empty item; separate layer names by single commas, e.g. fc1,fc2")
        if self.divergence_factor != 0 and self.divergence_factor < 1:
            raise ValueError(f"--divergence-factor must be 0 (off) or at least 1, got {self.divergence_factor}")
        if self.reward not in REWARDS:
            raise ValueError(f"--reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        for flag, value, choices in (("--collab-form", self.collab_form, COLLAB_FORMS), ("--module-loss", self.module_loss, MODULE_LOSSES),
                                     ("--loss-reduction", self.loss_reduction, LOSS_REDUCTIONS),
                                     ("--grad-clip-mode", self.grad_clip_mode, GRAD_CLIP_MODES)):  # fmt: skip
            if value not in choices:
                raise ValueError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")

    def run_name(self, routed: bool = True) -> str:
        """The default run directory's name under ``runs/`` (routed layers only for routers)."""
        layers = f"-routed_{self.routed.replace(',', '_')}" if routed else ""
        return f"{self.env}-{self.agent}{layers}-seed{self.seed}"

    def run_dir(self, routed: bool = True) -> Path:
        return Path(self.logdir) if self.logdir else Path("runs") / self.run_name(routed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, stored: dict[str, Any], **overrides: Any) -> RunConfig:
        """The config of a results.json (``config``), with ``overrides``; keys this release does not
        know (a run from a later one) are left out, options it added keep their defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{**STORED_BEFORE_DEFAULT_CHANGES, **{k: v for k, v in stored.items() if k in names}, **overrides})

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Options that differ from a stored config (ignoring those a resume may change), each as
        ``name (stored X, now Y)`` so that the user sees which value to pass to continue the run."""
        mine, theirs = _jsonable(self.to_dict()), _jsonable({**STORED_BEFORE_DEFAULT_CHANGES, **other})
        return [
            f"{k} (stored {json.dumps(theirs[k])}, now {json.dumps(v)})"
            for k, v in mine.items()
            if k not in self.RESUMABLE_CHANGES and theirs.get(k, v) != v
        ]

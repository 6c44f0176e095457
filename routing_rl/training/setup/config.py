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

from routing_rl.training.setup.options import declared, flag_of, option, section_class

STORED_BEFORE_DEFAULT_CHANGES: dict[str, Any] = {"channels_last": False}
"""Options whose default changed: a stored config without them (from an older release) ran with this value."""


MAX_EPOCHS = 100_000
"""The most epochs a run may have (``--epochs``, ``epochs`` of suite and sweep files). The papers'
protocols train 20 to 100; the bound is far above any real run and turns a typo such as
``--epochs 1000000000000`` into an error naming it rather than a run that never ends."""


EVAL_ROWS = {"vectors": 1024, "images": 128}
"""Default rows per evaluation batch by input kind (:meth:`RunConfig.eval_rows`)."""


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing stored configs."""
    return json.loads(json.dumps(value))


@dataclass
class RunConfig:
    """The options of ``routing-rl run`` (see its ``--help``); ``agent_options``/``env_options`` are ``-o``/``-e``.

    Each field declares its option once (:func:`~routing_rl.training.setup.options.option`): the default
    here, its section, scope, range or choices and help beside it. The command line's flags, the
    checks of :meth:`check` and the router-only and multi-label-only lists are derived from them.
    """

    # ---- run -------------------------------------------------------------------------------------
    agent: str = option(
        "fixed-random", section="run",
        help="A router or a multi-task model (see `routing-rl list`).",
    )
    preset: str | None = option(
        None, section="run", show_default=False,
        help="A paper's protocol (reexamining-fmnist, reexamining-cifar100): sets the options it fixes; options you give still win.",
    )
    env: str = option(
        "synthetic-groups", section="run",
        help="A task suite (see `routing-rl list`).",
    )
    epochs: int = option(
        5, section="run", low=1, high=MAX_EPOCHS,
        help=f"Training epochs (at most {MAX_EPOCHS}).",
    )
    seed: int = option(
        0, section="run", low=0, high=2**31 - 1,
        help="Fixes data order, routes and weights.",
    )
    logdir: str | None = option(
        None, section="run", show_default=False,
        help="Run directory (default: runs/<env>-<agent>[-routed_<layers>]-seed<seed>).",
    )
    data_dir: str | None = option(
        None, section="run", show_default=False, path=True,
        help="Where the data files are (else $ROUTING_RL_DATA, then system locations).",
    )
    device: str = option(
        "auto", section="run",
        help="auto, cpu, cuda, cuda:N or mps.",
    )
    threads: int | None = option(
        None, section="run", low=1, high=256, show_default=False,
        help="Torch intra-op threads (default: half the CPU cores, at least 1; torch's one per core collapses on a busy machine).",
    )
    deterministic: bool = option(
        True, section="run", off_flag="--nondeterministic",
        help="CUDA: deterministic kernels, so that a seed gives the same numbers (2-3x slower batches of the Table 2 network on an H200), or torch's fastest ones; CPU kernels are deterministic either way.",
    )
    eval_batch_size: int | None = option(
        None, section="run", low=1, show_default=False,
        help="Rows per evaluation batch (default: 1024 for tables and other vector inputs, 128 for images; outputs do not depend on it, reported losses do in the last bits).",
    )
    divergence_factor: float = option(
        1000.0, section="run", low=0,
        help="Stop when the task loss exceeds this many times the first batch's (at least 1); 0: only on NaN/inf.",
    )
    max_batches_per_epoch: int | None = option(
        None, section="run", low=1, flag="--max-batches", show_default=False,
        help="Stop each training epoch after N batches (smoke tests).",
    )

    # ---- optimisation ----------------------------------------------------------------------------
    batch_size: int = option(
        128, section="optimisation", low=1,
        help="Rows (or examples) per training batch.",
    )
    lr: float = option(
        0.001, section="optimisation", low=0, low_open=True,
        help="Learning rate of the weights.",
    )
    router_lr: float | None = option(
        None, section="optimisation", low=0, low_open=True, show_default=False,
        help="Learning rate of the router or the model's gates (default: the router's own rate, e.g. wpl 0.1, reinforce 0.3; else --lr).",
    )
    lr_milestones: list[int] = option(
        factory=list, section="optimisation", parse="epochs", show_default=False,
        help="Epochs after which every learning rate is multiplied by --lr-decay, e.g. 5,10 (the public routing code's schedule).",
    )
    lr_decay: float | list[float] = option(
        0.1, section="optimisation", parse="factors",
        help="Factor of each --lr-milestones step, or one factor per milestone (e.g. 0.3333333333333333,0.3: the later public code's 3e-3, 1e-3, 3e-4).",
    )
    step_epochs: list[int] = option(
        factory=list, section="optimisation", parse="epochs", show_default=False,
        help="Step the optimizers only in these epochs, e.g. 1,6,11 (the public code's run_experiments.py: its optimizer list is empty in every other epoch); default: every epoch.",
    )
    grad_clip: float | None = option(
        None, section="optimisation", low=0, low_open=True, show_default=False,
        help="Clip the weights' gradient norm at this value (the public code: 40); routing parameters are not clipped.",
    )
    grad_clip_mode: str = option(
        "norm", section="optimisation", choices=("norm", "public-code"),
        help="norm: torch's clip_grad_norm_; public-code: its call on the weights listed twice (clips at value/sqrt(2), scales twice).",
    )
    separate_optimizers: bool = option(
        False, section="optimisation", off_flag="--single-optimizer",
        help="One optimizer for weights and one for the router/gates, or one for both (the public code).",
    )
    optimizer: str = option(
        "adam", section="optimisation", choices=("adam", "sgd"),
        help="Plain SGD shows the public-code WPL's exploding gradient in full.",
    )
    fused_optimizer: bool = option(
        False, section="optimisation", show_default=False,
        help="torch's fused Adam/SGD kernels (about 3x faster Adam steps over many small block tensors; results differ in the last bits).",
    )

    # ---- data ------------------------------------------------------------------------------------
    val_fraction: float = option(
        0.1, section="data", low=0, high=1, high_open=True,
        help="Share of each task's training rows held out for validation (model selection); 0: none.",
    )
    map_k: int = option(
        10, section="data", scope="multi-label", low=1,
        help="K of MAP@K (multi-label suites).",
    )

    # ---- network ---------------------------------------------------------------------------------
    routed: str = option(
        "fc", section="network", scope="router", cli_default=None, show_default=False,
        help="Routers: routed layers: none, all, fc, conv, head (the task-facing layer), or names like conv1,2,3 / conv3 / fc1,fc2 (default: fc; all for no-sharing).",
    )
    blocks: int | None = option(
        None, section="network", scope="router", low=1, show_default=False,
        help="Routers: function blocks per routed layer (default: number of tasks).",
    )
    fc_layers: int | None = option(
        None, section="network", scope="router", low=0, high=1000, show_default=False,
        help="Routers: hidden FC layers after the conv layers (default 2; 3 for vector inputs).",
    )
    hidden: int = option(
        64, section="network", scope="router", low=1,
        help="Routers: units of each FC block.",
    )
    filters: int = option(
        32, section="network", scope="router", low=1,
        help="Routers: filters of each conv block.",
    )
    dropout: float = option(
        0.0, section="network", scope="router", low=0, high=1, high_open=True,
        help="Routers: dropout on the output of every layer below the heads while training (the Re-examining paper swept 0-0.9 and chose 0).",
    )
    channels_last: bool = option(
        True, section="network", scope="router", off_flag="--contiguous",
        help="Routers on images: convolutions in channels_last memory format (the default: 1.4-1.9x faster on CPUs) or the contiguous layout the published Table 2 re-test was trained in (results differ in the last bits).",
    )

    # ---- episodes --------------------------------------------------------------------------------
    warmup_epochs: int = option(
        0, section="episodes", scope="router", low=0,
        help="Routers: share every routed layer for N epochs before routing.",
    )
    reward: str = option(
        "auto", section="episodes", scope="router", choices=("auto", "correct", "neg-loss"),
        help="Routers' final reward: correct (+1/-1; multi-label: 2 AP@K - 1) or minus the loss; auto: correct, neg-loss for regression.",
    )
    collab_reward: float = option(
        0.0, section="episodes", scope="router",
        help="Routers: per-step bonus rho * frequency of the chosen block among the layer's recent decisions.",
    )
    collab_window: int = option(
        256, section="episodes", scope="router", low=1,
        help="Routers: recent decisions per layer the collaboration reward counts.",
    )
    collab_form: str = option(
        "once", section="episodes", scope="router", choices=("once", "public-code"),
        help="Routers: rho * frequency (once), or the public code's rho^2 * frequency / layers * |final reward|.",
    )
    module_loss: str = option(
        "cross-entropy", section="episodes", scope="router", choices=("cross-entropy", "mse-one-hot"),
        help="Routers on single-label suites: the task loss of an episode; mse-one-hot is the public code's (squared error of the outputs to one-hot targets, summed).",
    )
    loss_reduction: str = option(
        "mean", section="episodes", scope="router", choices=("mean", "sum"),
        help="Routers: the task loss of a batch as the mean over its episodes, or their sum (the public code's reduction none).",
    )
    observe_hidden: bool = option(
        False, section="episodes", scope="router", show_default=False,
        help="Routers: observe the hidden representation too.",
    )

    # ---- -o and -e ------------------------------------------------------------------------------
    agent_options: dict[str, Any] = field(default_factory=dict)
    """``-o KEY=VALUE``: the router's or model's constructor options."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """``-e KEY=VALUE``: the task suite's options."""

    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = (
        "epochs", "device", "logdir", "data_dir", "eval_batch_size", "threads", "divergence_factor", "deterministic",
    )  # fmt: skip
    """Options that may differ between an interrupted run and its resumption."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the option for values no run can use: each declared range and
        choice (:mod:`routing_rl.training.setup.options`), then the rules that tie options together."""
        for f, declaration in declared(type(self)):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{flag_of(f.name, declaration)} must be a finite number, got {value}")
            if problem := declaration.problem(value):
                raise ValueError(f"{flag_of(f.name, declaration)} {problem}")
        if any(not isinstance(m, int) or m < 1 for m in self.lr_milestones):
            raise ValueError(f"--lr-milestones must be epochs >= 1, got {self.lr_milestones}")
        if len(set(self.lr_milestones)) != len(self.lr_milestones):
            raise ValueError(f"--lr-milestones repeats an epoch: {self.lr_milestones}; list each epoch once")
        if self.lr_milestones != sorted(self.lr_milestones):
            # each milestone pairs with its --lr-decay factor, so the order is the user's to state
            raise ValueError(f"--lr-milestones must be in increasing order, got {self.lr_milestones}; list them from the first epoch")
        decays = self.lr_decay if isinstance(self.lr_decay, list) else [self.lr_decay]
        if not decays or any(not isinstance(d, (int, float)) or not 0 < d <= 1 or not math.isfinite(d) for d in decays):
            raise ValueError(f"--lr-decay must be in (0, 1] (one factor, or one per milestone), got {self.lr_decay}")
        if isinstance(self.lr_decay, list) and len(self.lr_decay) != len(self.lr_milestones):
            raise ValueError(f"--lr-decay gives {len(self.lr_decay)} factors for {len(self.lr_milestones)} --lr-milestones; give one, or one per milestone")
        if any(not isinstance(e, int) or e < 1 for e in self.step_epochs) or self.step_epochs != sorted(set(self.step_epochs)):
            raise ValueError(f"--step-epochs must be distinct epochs >= 1 in increasing order, got {self.step_epochs}")
        if not any(token.strip() for token in self.routed.split(",")):
            raise ValueError(f"--routed {self.routed!r} names no layer; name the routed layers (e.g. fc, conv3, all), or none for no routed layer")
        if any(not token.strip() for token in self.routed.split(",")):
            raise ValueError(f"--routed {self.routed!r} has an empty item; separate layer names by single commas, e.g. fc1,fc2")
        if self.divergence_factor != 0 and self.divergence_factor < 1:
            raise ValueError(f"--divergence-factor must be 0 (off) or at least 1, got {self.divergence_factor}")

    def eval_rows(self, input_shape: tuple[int, ...]) -> int:
        """Rows per evaluation batch: ``--eval-batch-size``, else :data:`EVAL_ROWS` for these inputs
        (``benchmarks/eval_batch.py``: a vector network evaluates 4-5x faster in batches of 1,024
        than of 128; a conv network's activations stay in cache at 128, about twice as fast)."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        return EVAL_ROWS["images" if len(input_shape) == 3 else "vectors"]

    def section(self, name: str) -> Any:
        """The options of one section (:data:`~routing_rl.training.setup.options.SECTIONS`) as a typed,
        frozen dataclass (``config.section("network").hidden``)."""
        cls = section_class(type(self), name)
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

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


ROUTER_ONLY_OPTIONS: tuple[str, ...] = tuple(f.name for f, d in declared(RunConfig) if d.scope == "router")
"""Options that configure the routed network or its router episodes; meaningless for multi-task models."""

MULTI_OUTPUT_ONLY_OPTIONS: tuple[str, ...] = tuple(f.name for f, d in declared(RunConfig) if d.scope == "multi-label")
"""Options of the multi-label family's metric; meaningless for single-label suites."""

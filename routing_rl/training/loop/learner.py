"""The learner contract: what the one trainer loop needs from "a routed network with its router" and
from "a multi-task model with its gates".

A learner owns its modules and optimizers, turns a batch into a training loss
(:meth:`Learner.train_step`) and into outputs in its task family's layout (:meth:`Learner.predict`),
and adds what only it knows to each epoch's record (routing policies and routes; gates,
utilisation and parameter counts). The trainer owns everything else: seeding, the loop, the
divergence stop, evaluation, results, checkpoints and TensorBoard.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from routing_rl.training.setup.config import RunConfig
from routing_rl.core.contracts import Batch, SplitScore
from routing_rl.data.families import TaskFamily
from routing_rl.training.loop.optim import RowSparseAdam, RowSparseSGD
from routing_rl.training.records.tb_logger import TensorBoardLogger
from routing_rl.training.setup.composition import Composition


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": RowSparseAdam, "sgd": RowSparseSGD}
"""torch's Adam and SGD, which also step the row-sparse gradients of block banks (``training/optim.py``)."""


@dataclass
class StepResult:
    """One training step: the loss to minimise, its task part, and per-batch sums of extra statistics."""

    loss: torch.Tensor
    task_loss: torch.Tensor
    sums: dict[str, float] = field(default_factory=dict)
    learned_routing: bool = False


def _checked_optimizer(cls: type[torch.optim.Optimizer], kernels: dict[str, bool], params: Any, **options: Any) -> torch.optim.Optimizer:
    """``cls(params, **kernels, **options)``; fused kernels are checked against every parameter's
    device and dtype now (torch checks them only at the first step) so a refusal is a one-line error."""
    optimizer = cls(params, **kernels, **options)
    if kernels.get("fused"):
        from torch.optim.optimizer import _device_dtype_check_for_fused

        try:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    _device_dtype_check_for_fused(p)
        except RuntimeError as error:
            raise ValueError(f"--fused-optimizer is not available for these parameters ({error}); run without it") from None
    return optimizer


def make_optimizers(
    config: RunConfig, weights: list[nn.Parameter], routing: list[nn.Parameter], router_lr: float
) -> dict[str, torch.optim.Optimizer]:
    """One optimizer over everything (as the public routing code) or one per parameter set.

    ``routing`` holds the parameters that decide routes (a router's tables, a model's gate
    logits), stepped at ``router_lr`` (:attr:`Composition.router_lr
    <routing_rl.training.setup.composition.Composition.router_lr>`: ``--router-lr``, else the agent's own
    default, else ``--lr``). ``config`` has passed :meth:`RunConfig.check` (``optimizer`` is one of
    :data:`OPTIMIZERS`); the trainer checks it, and so must a caller that builds optimizers itself.
    ``--optimizer sgd`` is plain SGD: its step scales with the gradient, so a router whose
    gradients explode (the public-code WPL projection) really takes the huge step; Adam
    normalises the step size and hides the explosion.
    """
    # foreach is bit-identical to torch's per-tensor loop; fused is faster but not (benchmarks/optimizer_step.py)
    kernels = {"fused": True} if config.fused_optimizer else {"foreach": True}
    optimizer_cls = functools.partial(_checked_optimizer, OPTIMIZERS[config.optimizer], kernels)
    if config.separate_optimizers:
        optimizers = {"weights": optimizer_cls(weights, lr=config.lr)}
        if routing:
            optimizers["router"] = optimizer_cls(routing, lr=router_lr)
        return optimizers
    groups: list[dict[str, Any]] = [{"params": weights, "lr": config.lr}]
    if routing:
        groups.append({"params": routing, "lr": router_lr})
    return {"all": optimizer_cls(groups)}


class Learner(ABC):
    """What the trainer trains. Subclasses fill the hooks; see the module docstring."""

    kind: ClassVar[str] = ""

    def __init__(self, parts: Composition, family: TaskFamily, device: torch.device) -> None:
        self.parts = parts
        self.config = parts.config
        self.family = family
        self.device = device
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.weight_parameters: list[nn.Parameter] = []
        """The parameters that are not routing parameters: what ``--grad-clip`` clips."""

    @property
    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The modules whose state a checkpoint keeps."""

    @abstractmethod
    def begin_epoch(self, epoch: int, sampling_seed: int) -> None:
        """Training mode, and reseed every sampler the learner owns (router, gate noise) for ``epoch``."""

    @abstractmethod
    def train_step(self, batch: Batch, epoch: int) -> StepResult:
        """Forward a training batch; the trainer checks, back-propagates and steps the optimizers."""

    def after_step(self, step: StepResult) -> None:
        """Called after the optimizer step (e.g. to project a router's policy table)."""

    def eval_mode(self) -> None:
        for module in self.modules.values():
            module.eval()

    @abstractmethod
    def predict(self, batch: Batch, epoch: int) -> torch.Tensor:
        """Outputs for an evaluation batch (greedy routes, serving gates) in the family's layout."""

    @abstractmethod
    def epoch_record(self, epoch: int) -> dict[str, Any]:
        """What this learner adds to an epoch's record (always a ``parameters`` block)."""

    def finish(self, evaluate: Callable[[Callable[[Batch], torch.Tensor]], SplitScore], test: SplitScore) -> dict[str, Any] | None:
        """After the last epoch: a check recorded in results (the multi-task models' serving check)."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The ``learner`` block of results.json."""

    def log(self, logger: TensorBoardLogger, record: dict[str, Any], epoch: int) -> None:
        """TensorBoard entries only this learner has."""

    def state(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore modules and optimizers from a checkpoint's ``state``; raises ``ValueError`` naming
        the table that does not fit this learner (a missing, mistyped or mis-shaped entry)."""
        for kind, owned in (("modules", self.modules), ("optimizers", self.optimizers)):
            tables = state.get(kind)
            missing = [name for name in owned if not isinstance(tables, dict) or name not in tables]
            if missing:
                raise ValueError(f"it holds no {kind} state for {', '.join(missing)}")
        for name, module in self.modules.items():
            try:
                module.load_state_dict(state["modules"][name])
            except Exception as exc:  # torch's messages span lines and name the module class
                raise ValueError(f"its {name} weights do not fit this run ({_first_detail(exc)})") from None
        for name, optimizer in self.optimizers.items():
            try:
                _check_optimizer_table(state["optimizers"][name])
                optimizer.load_state_dict(state["optimizers"][name])
                _check_optimizer_state(optimizer)
            except Exception as exc:
                raise ValueError(f"its state of optimizer '{name}' does not fit this run ({_first_detail(exc)})") from None


def _first_detail(exc: BaseException) -> str:
    """The telling line of an exception's message, cut short: torch's state-dict errors head their
    details with a line of their own ("Error(s) in loading state_dict for ...:")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0] if lines else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _check_optimizer_table(table: dict[str, Any]) -> None:
    """The shape of an optimizer's ``state_dict`` as torch writes it: ``state`` maps parameters to
    tables of tensors and numbers, ``param_groups`` lists tables (torch's own loader fails on anything
    else with a ``KeyError`` or an ``AttributeError`` on the wrong type)."""
    state, groups = table.get("state"), table.get("param_groups")
    if not isinstance(state, dict) or not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("state should be a table and param_groups a list of tables")
    for key, entry in state.items():
        if not isinstance(entry, dict):
            raise ValueError(f"state {key!r} should be a table, got {type(entry).__name__}")
        for name, value in entry.items():
            if not (value is None or isinstance(value, (torch.Tensor, int, float))):
                raise ValueError(f"state {key!r} holds {name} of type {type(value).__name__}, not a tensor or a number")


def _check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Every tensor of a parameter's optimizer state is a number or shaped like the leading
    dimensions of its parameter (Adam's moments, a bank's per-row step counts); torch loads any
    shape and fails only at the next step."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(p.shape[: value.dim()]):
                    raise ValueError(f"{key} has shape {list(value.shape)} for a parameter of shape {list(p.shape)}")

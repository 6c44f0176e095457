"""What a finished routing episode is worth: its task loss and its reward, for every kind of task.

An :class:`EpisodeObjective` turns one finished episode's outputs into its loss (on the graph) and
its final reward (detached); a :class:`StepReward` adds a per-step term (the collaboration reward).
The single-label objective (:class:`ClassificationObjective`: cross-entropy or the public routing
code's MSE to one-hot targets; +1/-1 or minus the loss) and the multi-label and regression one
(:class:`MultiOutputObjective`) live here together, below the env that plays episodes and the task
families that choose an objective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from routing_rl.core.contracts import RoutingDecision, RoutingObservation
from routing_rl.metrics import average_precision_at_k


def observed(targets: Tensor, label_mask: Tensor) -> tuple[Tensor, Tensor]:
    """``targets`` with unlabelled (NaN) entries set to 0, and the weight of every entry: 1 for a
    real label column that holds a value, else 0 (``label_mask`` broadcasts against ``targets``)."""
    seen = ~torch.isnan(targets)
    return torch.where(seen, targets, torch.zeros_like(targets)), (label_mask & seen).to(targets.dtype)


ElementwiseLoss = Callable[[Tensor, Tensor], Tensor]
"""The loss of every output entry against its target, same shape in and out (masked by the caller)."""


def label_cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Multi-label tasks: binary cross-entropy of each label's logit (the YouTube8M starter code's loss)."""
    return F.binary_cross_entropy_with_logits(outputs, targets, reduction="none")


def squared_error(outputs: Tensor, targets: Tensor) -> Tensor:
    """Regression tasks: the squared error of each output."""
    return (outputs - targets).square()


ELEMENTWISE_LOSSES: dict[str, ElementwiseLoss] = {"multilabel": label_cross_entropy, "regression": squared_error}
"""The entry loss of each multi-output problem (``MultiLabelData.problem``); the task families hold
theirs directly, this table serves callers that name the problem (``per_task_loss(..., "regression")``)."""


def elementwise_loss(problem: str) -> ElementwiseLoss:
    """The entry loss of ``problem``; ``ValueError`` names the valid problems."""
    try:
        return ELEMENTWISE_LOSSES[problem]
    except KeyError:
        raise ValueError(f"problem must be {' or '.join(map(repr, ELEMENTWISE_LOSSES))}, got {problem!r}") from None


def masked_task_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, elementwise: ElementwiseLoss) -> Tensor:
    """Loss of each task, ``[T]``: ``elementwise`` over the labelled real columns, summed over a task's
    columns and averaged over examples; ``outputs``/``targets`` ``[B, T, C_max]``, ``label_mask`` ``[T, C_max]``."""
    if outputs.shape != targets.shape or outputs.shape[1:] != label_mask.shape:
        raise ValueError(
            f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)} and label_mask "
            f"{tuple(label_mask.shape)} must be [B, T, C] and [T, C]"
        )
    targets, weight = observed(targets, label_mask.to(targets.device))
    entries = elementwise(outputs, targets)
    entries = entries * weight.to(entries.dtype)
    return entries.sum(dim=2).mean(dim=0)


FinalRewardKind = Literal["correct", "neg-loss"]
FINAL_REWARDS: tuple[str, ...] = ("correct", "neg-loss")


class StepReward(Protocol):
    """A per-step reward term (e.g. a collaboration reward); returns ``[B]`` rewards for step ``obs.depth``."""

    def __call__(self, obs: RoutingObservation, decision: RoutingDecision) -> torch.Tensor: ...


def final_reward(
    kind: str, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor,
    correct: float = 1.0, wrong: float = -1.0,
) -> torch.Tensor:
    """``correct``: +1 for a right prediction, -1 for a wrong one (the paper); ``neg-loss``: minus the loss."""
    if kind == "correct":
        hit = logits.argmax(dim=1) == targets
        return torch.where(hit, torch.full_like(loss, correct), torch.full_like(loss, wrong)).detach()
    if kind == "neg-loss":
        return (-loss).detach()
    raise ValueError(f"unknown reward {kind!r}; valid choices: {', '.join(FINAL_REWARDS)}")


class EpisodeObjective(Protocol):
    """Loss (on the graph) and final reward (detached) of each finished episode, ``[N]`` each."""

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor: ...

    def reward(
        self, logits: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor: ...


def mse_one_hot(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The public routing code's module loss: ``MSELoss(reduction='none')`` of the raw outputs against
    one-hot targets, summed over the outputs (``Loss.forward``): ``sum_c (y_c - onehot(t)_c)^2`` per sample."""
    one_hot = F.one_hot(targets, outputs.shape[1]).to(outputs.dtype)
    return F.mse_loss(outputs, one_hot, reduction="none").sum(dim=1)


@dataclass
class ClassificationObjective:
    """One label per episode: cross-entropy (or the public code's ``mse-one-hot``), and the
    :func:`final_reward` of kind ``reward_kind``."""

    reward_kind: str = "correct"
    module_loss: str = "cross-entropy"

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        if self.module_loss == "mse-one-hot":
            return mse_one_hot(logits, targets)
        return F.cross_entropy(logits, targets, reduction="none")

    def reward(
        self, logits: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor:
        return final_reward(self.reward_kind, logits, targets, loss)


@dataclass
class MultiOutputObjective:
    """Per-episode loss of one (example, task) pair and its reward.

    The loss is the task's entry loss (``elementwise``: BCE for multi-label tasks, squared error for
    regression, as its family holds it) summed over its real label columns. The
    ``correct`` reward of a multi-label episode is ``2 * AP@K - 1`` of the task's ranking of its
    labels (+1 for a perfect top-K, -1 for no positive in it), and 0 where the example has no
    positive label in that task (nothing to rank); ``neg-loss`` is minus the loss.
    """

    label_mask: Tensor
    elementwise: ElementwiseLoss
    reward_kind: str
    map_k: int

    def loss(self, logits: Tensor, targets: Tensor, tasks: Tensor) -> Tensor:
        targets, mask = observed(targets, self.label_mask.to(logits.device)[tasks])
        mask = mask.to(logits.dtype)
        return (self.elementwise(logits, targets) * mask).sum(dim=1)

    def reward(self, logits: Tensor, targets: Tensor, tasks: Tensor, loss: Tensor) -> Tensor:
        if self.reward_kind == "neg-loss":
            return (-loss).detach()
        mask = self.label_mask.to(logits.device)[tasks]
        targets = observed(targets, mask)[0]
        ap = average_precision_at_k(logits.detach(), targets, self.map_k, mask)
        has_positive = ((targets > 0) & mask).any(dim=1)
        return torch.where(has_positive, 2.0 * ap.to(loss.dtype) - 1.0, torch.zeros_like(loss)).detach()


KIND_CODES = {"classification": 0, "regression": 1, "multilabel": 2}
"""The code of each task kind of a mixed problem in a ``kinds`` tensor (one per task or episode)."""


def mixed_entry_loss(outputs: Tensor, targets: Tensor, mask: Tensor, kinds: Tensor) -> Tensor:
    """Loss of each row, ``[N]``, by its task's kind: cross-entropy over the task's classes
    (``targets`` one-hot), squared error summed over its outputs, or BCE summed over its labels.

    ``outputs``/``targets`` ``[N, C_max]``, ``mask`` bool ``[N, C_max]`` (the task's real columns),
    ``kinds`` ``[N]`` codes of :data:`KIND_CODES`. A row whose targets are NaN (the example is not
    labelled for that task) costs 0, as in every multi-output family. The three losses are
    computed for every row and one is selected, so a batch of tasks of all kinds is one pass.
    """
    targets, weight = observed(targets, mask)
    weight = weight.to(outputs.dtype)
    log_p = torch.log_softmax(outputs.masked_fill(~mask, float("-inf")), dim=1)
    cross_entropy = -(torch.where(mask, log_p, torch.zeros_like(log_p)) * targets * weight).sum(dim=1)
    squared = (squared_error(outputs, targets) * weight).sum(dim=1)
    binary = (label_cross_entropy(outputs, targets) * weight).sum(dim=1)
    return torch.where(kinds == KIND_CODES["classification"], cross_entropy, torch.where(kinds == KIND_CODES["regression"], squared, binary))


def mixed_task_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, kinds: Tensor) -> Tensor:
    """Loss of each task, ``[T]``, of a mixed problem's ``[B, T, C_max]`` outputs: each task's own loss
    (:func:`mixed_entry_loss`) averaged over examples, as :func:`masked_task_loss` does for one kind."""
    b, t, c = outputs.shape
    mask = label_mask.to(outputs.device).expand(b, t, c).reshape(b * t, c)
    rows = mixed_entry_loss(outputs.reshape(b * t, c), targets.reshape(b * t, c), mask, kinds.to(outputs.device).repeat(b))
    return rows.view(b, t).mean(dim=0)


@dataclass
class MixedObjective:
    """Per-episode loss and reward of a mixed problem: each task its own loss (:func:`mixed_entry_loss`);
    the reward is minus the loss (the only reward that every kind of task has: a task's agent is
    rewarded by its own task only, so the kinds' different loss scales never meet in one policy)."""

    label_mask: Tensor
    kinds: Tensor

    def loss(self, logits: Tensor, targets: Tensor, tasks: Tensor) -> Tensor:
        return mixed_entry_loss(logits, targets, self.label_mask.to(logits.device)[tasks], self.kinds.to(logits.device)[tasks])

    def reward(self, logits: Tensor, targets: Tensor, tasks: Tensor, loss: Tensor) -> Tensor:
        return (-loss).detach()

"""Rewards of a routing episode: a final reward from the prediction, plus optional per-step terms.

An :class:`EpisodeObjective` says what one finished episode's loss and final reward are; the
single-label objective lives here, the multi-label and regression ones with their task family
(:mod:`routing_rl.training.families`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from routing_rl.envs.episodes import RoutingObservation
from routing_rl.network.routed_layer import RoutingDecision

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

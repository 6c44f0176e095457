"""Plain data passed between the batched routing env, the routers and the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from routing_rl.network.routed_layer import RoutingDecision


@dataclass
class RoutingObservation:
    """What a router sees before routed layer ``depth``: the task of each sample (and its hidden state)."""

    task_ids: torch.Tensor
    depth: int
    hidden: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.task_ids.shape[0])


@dataclass
class EpisodeBatch:
    """A finished batch of routing episodes: one per sample, one step per routed layer.

    ``step_rewards[d]`` is the per-sample reward of step ``d`` (collaboration rewards and the
    like; zeros when none are configured); ``final_reward`` arrives after the last step and is
    computed from the prediction. ``loss`` is the per-sample task loss, still attached to the graph.
    """

    observations: list[RoutingObservation]
    decisions: list[RoutingDecision]
    step_rewards: list[torch.Tensor]
    final_reward: torch.Tensor
    loss: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    info: dict[str, object] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return len(self.decisions)

    @property
    def task_ids(self) -> torch.Tensor:
        return self.observations[0].task_ids

    def returns(self, discount: float = 1.0) -> list[torch.Tensor]:
        """Discounted return from each step: G_d = sum_{k>=d} discount^(k-d) r_k + discount^(L-1-d) R_final."""
        running = self.final_reward.detach()
        out: list[torch.Tensor] = [running] * self.num_steps
        for d in reversed(range(self.num_steps)):
            if d < self.num_steps - 1:
                running = running * discount
            running = self.step_rewards[d].detach() + running
            out[d] = running
        return out

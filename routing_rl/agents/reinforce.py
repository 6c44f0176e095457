"""REINFORCE with a moving-average baseline: the plain policy-gradient router.

Rosenbaum et al. (2018) compare WPL with REINFORCE among their multi-agent learners; it is also
the simplest learner whose update is a true gradient of the expected return, which makes it the
reference point when WPL (with its projection and weighting heuristics) misbehaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from routing_rl.agents._policy_tables import (
    EpisodeSteps,
    LearnsTogether,
    SamplesCategorically,
    categorical_decision,
    check_discount,
    episode_steps,
    moving_average_,
    per_cell,
    population_steps,
    stackable_episodes,
    table_key,
    taken,
    task_layer_index,
)
from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation


class ReinforceRouter(LearnsTogether, SamplesCategorically, Router):
    """Softmax policy per task and routed layer, trained by REINFORCE (Williams 1992).

    The policy of task ``t`` at layer ``d`` is ``softmax(theta[t, d])`` (zeros: uniform). For every
    step of every episode with return ``G`` (discount ``discount``) the loss is

        -(G - b(t, d)) * log pi(a | t, d)  -  entropy_coef * H(pi(. | t, d)),

    averaged over the episodes of the batch and summed over the routed layers, so its gradient is
    the score-function estimate of minus the expected return. ``b(t, d)`` is an exponential moving
    average of the returns seen at that task and layer, ``b <- m b + (1 - m) mean(G)`` with
    ``m = baseline_momentum``, updated after the advantages are computed (so a sample never serves
    as its own baseline). It reduces the variance of the estimate without biasing it.
    """

    baseline: torch.Tensor
    name = "reinforce"
    description = "REINFORCE with a moving-average baseline, softmax policy per task and layer"
    family = "router: reinforcement learning"
    default_router_lr = 0.3
    option_help = {
        "discount": "discount of later rewards in each step's return",
        "baseline_momentum": "momentum of the moving-average baseline of the returns",
        "entropy_coef": "weight of the entropy bonus of each policy",
    }

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        num_blocks: int,
        *,
        seed: int = 0,
        discount: float = 1.0,
        baseline_momentum: float = 0.9,
        entropy_coef: float = 0.0,
    ) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        check_discount(discount)
        if not 0.0 <= baseline_momentum < 1.0:
            raise RouterConfigError(f"baseline_momentum must be in [0, 1), got {baseline_momentum}")
        if entropy_coef < 0:
            raise RouterConfigError(f"entropy_coef must be >= 0, got {entropy_coef}")
        self.discount = discount
        self.baseline_momentum = baseline_momentum
        self.entropy_coef = entropy_coef
        self.logits = nn.Parameter(torch.zeros(num_tasks, num_layers, num_blocks))
        self.register_buffer("baseline", torch.zeros(num_tasks, num_layers))

    def policy(self, depth: int) -> torch.Tensor:
        return torch.softmax(self.logits[:, depth].detach(), dim=-1)

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        return categorical_decision(self.exploring_probabilities(obs), explore, self.generator)

    def exploring_probabilities(self, obs: RoutingObservation) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.logits[obs.task_ids, obs.depth], dim=-1)

    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        if episodes.num_steps == 0:
            return None  # a network without routed layers: nothing to learn
        return self.episode_terms(self.logits, self.baseline, episode_steps(episodes, self.discount)).mean()

    def episode_terms(self, logits: torch.Tensor, baseline: torch.Tensor, steps: EpisodeSteps) -> torch.Tensor:
        """Each episode's loss summed over its steps, ``[B]``, and the baseline updated in place, from
        ``logits`` and ``baseline`` (this router's own, or several routers' side by side: :meth:`stacked_losses`)."""
        log_probs = torch.log_softmax(logits, dim=-1)
        advantage = steps.returns - per_cell(baseline, steps)
        policy_terms = -(advantage.detach() * taken(log_probs, steps))
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        terms = policy_terms - self.entropy_coef * per_cell(entropy, steps)
        moving_average_(baseline, steps.returns, task_layer_index(steps, self.num_layers), 1.0 - self.baseline_momentum)
        return terms.sum(dim=0)

    def together_key(self, episodes: EpisodeBatch) -> tuple[object, ...] | None:
        shape = stackable_episodes(episodes)
        if shape is None:
            return None
        return (type(self), shape, table_key(self.logits), table_key(self.baseline), self.discount, self.baseline_momentum, self.entropy_coef)

    @classmethod
    def stacked_losses(cls, routers: Sequence[Any], episodes: Sequence[EpisodeBatch]) -> list[torch.Tensor]:
        """Every router's :meth:`loss` from one pass over their logits and baselines concatenated
        along the task axis; each router's baseline gets its own update back."""
        first = routers[0]
        steps = population_steps(episodes, first.discount, first.num_tasks)
        baselines = torch.cat([router.baseline for router in routers])
        per_episode = first.episode_terms(torch.cat([router.logits for router in routers]), baselines, steps)
        with torch.no_grad():
            for router, baseline in zip(routers, baselines.split(first.num_tasks)):
                router.baseline.copy_(baseline)
        return [terms.mean() for terms in per_episode.split(steps.batch_size // len(routers))]

"""Tabular Q-learning router: value-based routing with epsilon-greedy exploration.

Rosenbaum et al. (2018) also evaluate Q-learning agents for routing. A value-based router chooses
greedily, so, unlike the policy-gradient routers, its routes can switch abruptly when two blocks'
values cross; it is the natural contrast to WPL's slowly moving probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from routing_rl.agents._policy_tables import (
    EpisodeSteps,
    check_discount,
    episode_steps,
    sample_blocks,
    taken,
)
from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation


def epsilon_greedy(q: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The epsilon-greedy distribution over the last axis of ``q``: ``eps / M`` everywhere plus ``1 - eps`` on the argmax."""
    num_blocks = q.shape[-1]
    greedy = nn.functional.one_hot(q.argmax(dim=-1), num_blocks).to(q.dtype)
    return epsilon / num_blocks + (1.0 - epsilon) * greedy


class QLearningRouter(Router):
    """One Q table per task and routed layer, learned by one-step Q-learning (Watkins 1989).

    With the reward ``r_d`` received after routed layer ``d`` (the step reward, plus the final
    reward after the last layer), the TD target of step ``d`` is

        y_d = r_d + discount * max_a' Q(t, d + 1, a')    for d < L - 1
        y_d = r_d                                         for the last layer,

    or, with ``td_lambda > 0``, the lambda-return (Watkins's Q(lambda) target without trace
    cutting) ``y_d = r_d + discount * ((1 - lambda) max_a' Q(t, d + 1, a') + lambda y_{d+1})``,
    which is the Monte-Carlo return at ``td_lambda = 1``. Caveat: the observation is only (task,
    layer), so the state after layer ``d`` does not record which block was taken there. With a
    final reward only, the one-step target of every block at layer ``d < L - 1`` is the same
    ``max Q(t, d + 1, .)``, the earlier layers cannot tell good blocks from bad ones, and the learned
    routes drift (the tests' two-layer toy learns with step rewards, and with ``td_lambda=1`` on
    final rewards; hence the default ``td_lambda=1``, and ``td_lambda=0`` gives the classic one-step
    target of the original routing-networks work). Targets are computed without gradient, and the loss is ``0.5 * (Q(t, d, a_d) - y_d)^2`` summed over the
    layers and averaged over the batch, minimised by the trainer's optimiser (an SGD step at rate
    ``lr`` on one sample is the classic update ``Q <- Q + lr * (y - Q)``). Exploration is
    epsilon-greedy while training (``epsilon`` is the probability of a uniformly random block) and
    greedy at evaluation; :meth:`policy` reports the epsilon-greedy behaviour distribution, whose
    argmax is the greedy route. The table starts at zero, so the initial greedy route is block 0.
    """

    name = "qlearning"
    description = "tabular Q-learning per task and layer, epsilon-greedy, TD loss"
    family = "router: reinforcement learning"
    option_help = {
        "epsilon": "probability of a uniformly random block while training",
        "discount": "discount of the next layer's value in the TD target",
        "td_lambda": "0: one-step Q-learning target; 1: Monte-Carlo return; between: the lambda-return",
    }

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        num_blocks: int,
        *,
        seed: int = 0,
        epsilon: float = 0.1,
        discount: float = 1.0,
        td_lambda: float = 1.0,
    ) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        if not 0.0 <= epsilon <= 1.0:
            raise RouterConfigError(f"epsilon must be in [0, 1], got {epsilon}")
        check_discount(discount)
        if not 0.0 <= td_lambda <= 1.0:
            raise RouterConfigError(f"td_lambda must be in [0, 1], got {td_lambda}")
        self.td_lambda = td_lambda
        self.epsilon = epsilon
        self.discount = discount
        self.q_values = nn.Parameter(torch.zeros(num_tasks, num_layers, num_blocks))

    def policy(self, depth: int) -> torch.Tensor:
        return epsilon_greedy(self.q_values[:, depth].detach(), self.epsilon)

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        q = self.q_values[obs.task_ids, obs.depth].detach()
        if not explore:
            return RoutingDecision(q.argmax(dim=1), log_probs=torch.zeros(q.shape[0], device=q.device))
        probs = epsilon_greedy(q, self.epsilon)
        blocks = sample_blocks(probs, self.generator)
        chosen = probs.gather(1, blocks.unsqueeze(1)).squeeze(1)
        return RoutingDecision(blocks, log_probs=torch.log(chosen))

    def td_targets(self, steps: EpisodeSteps) -> torch.Tensor:
        """``[L, B]`` lambda-return targets, computed backwards over the layers without gradient.

        ``y_{L-1} = r_{L-1}``; ``y_d = r_d + discount * ((1 - lambda) * max_a Q(t, d + 1, a) + lambda * y_{d+1})``.
        """
        with torch.no_grad():
            best = self.q_values.max(dim=-1).values
            targets = torch.empty_like(steps.rewards)
            targets[-1] = steps.rewards[-1]
            for d in reversed(range(steps.num_layers - 1)):
                bootstrap = best[steps.tasks[d + 1], steps.depths[d + 1]]
                ahead = (1.0 - self.td_lambda) * bootstrap + self.td_lambda * targets[d + 1]
                targets[d] = steps.rewards[d] + self.discount * ahead
            return targets

    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        if episodes.num_steps == 0:
            return None  # a network without routed layers: nothing to learn
        steps = episode_steps(episodes)
        error = taken(self.q_values, steps) - self.td_targets(steps)
        return (0.5 * error**2).sum(dim=0).mean()

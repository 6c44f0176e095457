"""The Weighted Policy Learner (Abdallah & Lesser 2006), the router of routing networks.

Rosenbaum et al. (2018) train one WPL agent per task and routed layer on a table of block
probabilities, and the Re-examining paper (section 2.2) keeps that set-up. WPL is a policy-gradient
rule on the probabilities themselves: an action whose return beats the baseline is pushed up by an
amount scaled with ``1 - pi(a)`` (slowing down as it approaches 1), one that falls short is pushed
down scaled with ``pi(a)`` (slowing down as it approaches 0), and the table is projected back onto
the probability simplex. This file implements that rule for the loss-based trainer, and, as a
separate mode, what the original public code actually computes (its appendix A.1 bug and a sign
reversal), so that the paper's "public code" rows can be reproduced and explained.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from routing_rl.agents._policy_tables import (
    EpisodeSteps,
    categorical_decision,
    check_discount,
    episode_steps,
    moving_average_,
    per_cell,
    taken,
    task_layer_block_index,
    uniform_table,
)
from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.envs.episodes import EpisodeBatch, RoutingObservation
from routing_rl.network.routed_layer import RoutingDecision

Projection = Literal["clip", "public-code"]
Parameterization = Literal["table", "softmax"]

PUBLIC_CODE_EPSILON = 1e-6
"""The constant the public code adds after subtracting the row minimum (WPL.py of cle-ros/RoutingNetworks)."""


def clip_projection(table: torch.Tensor) -> torch.Tensor:
    """Rosenbaum et al. (2018), Algorithm 3: ``clip(pi) / sum(clip(pi))`` with ``clip(x) = max(0, min(1, x))``.

    A row whose entries all clip to 0 (possible after a large step) becomes uniform.
    """
    clipped = table.clamp(0.0, 1.0)
    total = clipped.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(clipped, 1.0 / clipped.shape[-1])
    return torch.where(total > 0, clipped / total.clamp_min(torch.finfo(clipped.dtype).tiny), uniform)


def public_code_projection(table: torch.Tensor, epsilon: float = PUBLIC_CODE_EPSILON) -> torch.Tensor:
    """The projection the public code runs: ``(pi_i - min_j pi_j + eps) / sum_k (pi_k - min_j pi_j + eps)``.

    On a uniform table every shifted entry is exactly ``eps``, so ``d log pi_a / d table_a =
    1/eps - 1/(M eps)``, about 1e6 (appendix A.1 of the Re-examining paper).
    """
    shifted = table - table.min(dim=-1, keepdim=True).values + epsilon
    return shifted / shifted.sum(dim=-1, keepdim=True)


def wpl_step_weight(delta: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """WPL's weighting (Abdallah & Lesser 2006, eq. 3): ``1 - pi(a)`` if ``delta > 0`` else ``pi(a)``."""
    return torch.where(delta > 0, 1.0 - pi, pi)


def public_code_target_weight(delta: torch.Tensor) -> torch.Tensor:
    """The public code's multiplier of its target: ``1 + delta`` if ``delta < 0`` else ``2 - delta``."""
    return torch.where(delta < 0, 1.0 + delta, 2.0 - delta)


class WPLRouter(Router):
    """One WPL agent per (task, routed layer), acting on a table of block probabilities.

    **Update** (``projection="clip"``, the default). ``Q(t, d, a)`` is a running average of the
    returns ``G`` (discount ``discount``) that followed block ``a`` at layer ``d`` of task ``t``: an
    exponential moving average with rate ``value_rate``, updated in :meth:`loss` from the batch
    first, as in Abdallah & Lesser's Algorithm (value update, then policy step). For every step of
    every episode, with ``a`` the block it took, the WPL advantage is ``delta = Q(t, d, a) - V(t, d)``
    where ``V(t, d) = sum_b pi(b) Q(t, d, b)`` is the value of the current policy (the averaged
    ``Q`` rather than the single return ``G`` keeps the advantage from being dominated by the +1/-1
    reward noise, which stalls the softmax policy in the tests' noisy bandit). The policy step is

        pi(a) <- pi(a) + eta * delta * (1 - pi(a))   if delta > 0
        pi(a) <- pi(a) + eta * delta * pi(a)         otherwise

    followed by ``pi <- clip(pi) / sum(clip(pi))`` (Rosenbaum et al. 2018, Algorithm 3). For the
    loss-based trainer the step is the gradient of the surrogate
    ``-sum_steps stopgrad(delta * w(delta, pi(a))) * pi(a)`` with respect to the probability table
    (a plain SGD step at rate eta is exactly the WPL step; Adam keeps its direction per entry).
    The projection is applied in place to the table at the start of every :meth:`loss` call and
    by :meth:`after_update`, and functionally in :meth:`probabilities`, so every read sees a point
    of the simplex whether or not the trainer calls the hook.

    ``parameterization="softmax"`` is the Re-examining paper's improvement: the policy is
    ``softmax(logits)`` of a logit table (uniform at zero); the same surrogate on the probabilities
    backpropagates through the softmax, and no projection is needed.

    ``per_sample_loss=True`` keeps one WPL term per episode and sums them (the paper's corrected
    code, "loss reduction none": a batch acts like B sequential updates); False averages them over
    the batch (the public code's default mean reduction).

    **``projection="public-code"``** reproduces the shipped implementation (cle-ros/RoutingNetworks,
    WPL.py and PolicyStorage.py at commit cd4e9af), written from its description:

    * the table starts exactly uniform and is "projected" by ``pi_i - min_j pi_j + 1e-6`` then
      normalised (the clip-and-normalise line is commented out there), with gradients flowing
      through that map. At the uniform start every shifted entry equals 1e-6, so the gradient of
      ``log pi(a)`` with respect to the table entry of ``a`` is ``(1 - 1/M) * 1e6`` (5e5 for two
      blocks). One SGD step at lr 9e-4 moves that entry by hundreds, and the policy is frozen at an
      extreme (a probability of order 1e-9 or 1 - 1e-9) for the rest of training (appendix A.1);
    * the target is built on ``log pi(a)`` rather than ``pi(a)``: with ``delta = G - Q(a)`` and
      ``w = 1 + delta if delta < 0 else 2 - delta``, the loss is
      ``smooth_l1(log pi(a), stopgrad(w * log pi(a)))``. On probabilities ``w > 1`` would raise
      ``pi(a)``; but ``log pi(a) < 0``, so ``w > 1`` (``0 < delta < 1``: a better-than-expected
      block) makes the target *more negative* and the step lowers the block's probability, while
      ``w < 1`` (``delta < 0``: a worse-than-expected block) raises it. The sign of the WPL update
      is reversed for every ``delta < 1`` (``delta = 1`` gives no update, only ``delta > 1`` moves
      the right way). On a 4-armed bandit rewarding one arm this mode drives that arm's
      probability to about 1e-9 in 3 of 3 seeds, where the default mode reaches 1.000 (see tests);
    * ``Q`` is a second table initialised to ``1/M`` and trained by ``mse(Q(a), G)`` in the same
      optimiser (``value_rate`` is unused in this mode).

    The default router has neither defect. The public-code mode needs the tabular policy.
    """

    values: torch.Tensor
    name = "wpl"
    description = "Weighted Policy Learner per task and layer on a probability table (projection=clip|public-code)"
    family = "router: reinforcement learning"
    option_help = {
        "projection": "clip: clip-and-normalise (corrected); public-code: the shipped min-shift projection and log-pi target",
        "parameterization": "table: probabilities as parameters; softmax: logits through a softmax",
        "discount": "discount of later rewards in each step's return",
        "per_sample_loss": "sum one WPL term per episode (true) or average them over the batch (false)",
        "value_rate": "rate of the moving average Q of each block's returns",
    }

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        num_blocks: int,
        *,
        seed: int = 0,
        projection: Projection = "clip",
        parameterization: Parameterization = "table",
        discount: float = 1.0,
        per_sample_loss: bool = True,
        value_rate: float = 0.1,
    ) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        if projection not in ("clip", "public-code"):
            raise RouterConfigError(f"projection must be clip or public-code, got {projection!r}")
        if parameterization not in ("table", "softmax"):
            raise RouterConfigError(f"parameterization must be table or softmax, got {parameterization!r}")
        if projection == "public-code" and parameterization != "table":
            raise RouterConfigError("projection=public-code reproduces the tabular policy; use parameterization=table")
        if not 0.0 < value_rate <= 1.0:
            raise RouterConfigError(f"value_rate must be in (0, 1], got {value_rate}")
        check_discount(discount)
        self.projection = projection
        self.parameterization = parameterization
        self.discount = discount
        self.per_sample_loss = per_sample_loss
        self.value_rate = value_rate
        shape = (num_tasks, num_layers, num_blocks)
        initial = torch.zeros(shape) if parameterization == "softmax" else uniform_table(*shape)
        self.policy_param = nn.Parameter(initial)
        if projection == "public-code":
            self.values = nn.Parameter(uniform_table(*shape))
        else:
            self.register_buffer("values", torch.zeros(shape))

    # ---- the policy ------------------------------------------------------------------------
    def probabilities(self) -> torch.Tensor:
        """The routing distribution of every task and layer, ``[T, L, M]`` (differentiable)."""
        if self.parameterization == "softmax":
            return torch.softmax(self.policy_param, dim=-1)
        if self.projection == "public-code":
            return public_code_projection(self.policy_param)
        return clip_projection(self.policy_param)

    def policy(self, depth: int) -> torch.Tensor:
        return self.probabilities()[:, depth].detach()

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        with torch.no_grad():
            probs = self.probabilities()[obs.task_ids, obs.depth]
        return categorical_decision(probs, explore, self.generator)

    def project_(self) -> None:
        """Put the probability table back onto the simplex in place (clip mode; a no-op otherwise)."""
        if self.parameterization == "table" and self.projection == "clip":
            with torch.no_grad():
                self.policy_param.copy_(clip_projection(self.policy_param))

    def after_update(self) -> None:
        """Post-optimiser-step hook: the projection step of WPL (Algorithm 3's last line)."""
        self.project_()

    # ---- learning --------------------------------------------------------------------------
    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        if episodes.num_steps == 0:
            return None  # a network without routed layers: nothing to learn
        steps = episode_steps(episodes, self.discount)
        if self.projection == "public-code":
            return self._reduce(self._public_code_terms(steps))
        self.project_()
        moving_average_(self.values, steps.returns, self._flat_index(steps), self.value_rate)
        return self._reduce(self._wpl_terms(steps))

    def _wpl_terms(self, steps: EpisodeSteps) -> torch.Tensor:
        """Per-step surrogate ``-stopgrad(delta * w) * pi(a)``, ``[L, B]``; its gradient is minus the WPL step."""
        probs = self.probabilities()
        pi = probs.detach()
        baseline = (pi * self.values).sum(dim=-1)
        delta = taken(self.values, steps) - per_cell(baseline, steps)
        step = delta * wpl_step_weight(delta, taken(pi, steps))
        surrogate_probs = probs if self.parameterization == "softmax" else self.policy_param
        return -(step.detach() * taken(surrogate_probs, steps))

    def _public_code_terms(self, steps: EpisodeSteps) -> torch.Tensor:
        """The shipped loss per step: smooth-L1 towards ``w * log pi(a)`` plus ``(Q(a) - G)^2``, ``[L, B]``."""
        log_pi = taken(torch.log(self.probabilities()), steps)
        q = taken(self.values, steps)
        delta = steps.returns - q.detach()
        target = (log_pi * public_code_target_weight(delta)).detach()
        act_loss = F.smooth_l1_loss(log_pi, target, reduction="none")
        return act_loss + (q - steps.returns) ** 2

    def _reduce(self, terms: torch.Tensor) -> torch.Tensor:
        """Sum over the routed layers of an episode, then sum (per-sample loss) or mean over episodes."""
        per_episode = terms.sum(dim=0)
        return per_episode.sum() if self.per_sample_loss else per_episode.mean()

    def _flat_index(self, steps: EpisodeSteps) -> torch.Tensor:
        return task_layer_block_index(steps, self.num_layers, self.num_blocks)

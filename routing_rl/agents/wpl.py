"""The Weighted Policy Learner (Abdallah & Lesser 2006), the router of routing networks.

Rosenbaum et al. (2018) train one WPL agent per task and routed layer on a table of block
probabilities, and the Re-examining paper (section 2.2) keeps that set-up. WPL is a policy-gradient
rule on the probabilities themselves: an action whose value beats the policy's value is pushed up
by an amount scaled with ``1 - pi(a)`` (slowing down as it approaches 1), one that falls short is
pushed down scaled with ``pi(a)`` (slowing down as it approaches 0), and the table is projected
back onto the probability simplex.

Three learners live here (``-o variant=``), because the Re-examining paper's Table 2 compares them:

* ``wpl`` (default): the project's WPL, written from Abdallah & Lesser and Rosenbaum et al.'s
  Algorithm 3 (clip projection); ``update=all-actions`` moves every block of a visited state with
  its own advantage, as Abdallah & Lesser's algorithm does, ``update=sampled`` only the sampled one.
* ``public-code``: the loss of the public code as shipped (cle-ros/RoutingNetworks at commit
  cd4e9af, ``WPL._loss`` and ``Loss.forward``), the paper's "public code" row.
* ``public-code-corrected``: that code with the paper's minimal fix (appendix A.1): the projection
  of Algorithm 3 instead of the min-shift, and no mean over the batch ("loss reduction none").
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
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation

Variant = Literal["wpl", "public-code", "public-code-corrected"]
Update = Literal["sampled", "all-actions"]
Parameterization = Literal["table", "softmax"]
PUBLIC_CODE_VARIANTS: tuple[str, ...] = ("public-code", "public-code-corrected")

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


def public_code_shift(table: torch.Tensor, epsilon: float = PUBLIC_CODE_EPSILON) -> torch.Tensor:
    """What the public code hands to ``Categorical(probs=...)``: ``pi_i - min_j pi_j + eps``, unnormalised
    (its normalising line is commented out; ``Categorical`` divides by the sum itself)."""
    return table - table.min(dim=-1, keepdim=True).values + epsilon


def public_code_projection(table: torch.Tensor, epsilon: float = PUBLIC_CODE_EPSILON) -> torch.Tensor:
    """The projection the public code runs: ``(pi_i - min_j pi_j + eps) / sum_k (pi_k - min_j pi_j + eps)``.

    On a uniform table every shifted entry is exactly ``eps``, so ``d log pi_a / d table_a =
    1/eps - 1/(M eps)``, about 1e6 (appendix A.1 of the Re-examining paper).
    """
    shifted = public_code_shift(table, epsilon)
    return shifted / shifted.sum(dim=-1, keepdim=True)


def wpl_step_weight(delta: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """WPL's weighting (Abdallah & Lesser 2006, eq. 3): ``1 - pi(a)`` if ``delta > 0`` else ``pi(a)``."""
    return torch.where(delta > 0, 1.0 - pi, pi)


def public_code_target_weight(delta: torch.Tensor) -> torch.Tensor:
    """The public code's multiplier of its target: ``1 + delta`` if ``delta < 0`` else ``2 - delta``."""
    return torch.where(delta < 0, 1.0 + delta, 2.0 - delta)


def categorical_log_probs(probs: torch.Tensor) -> torch.Tensor:
    """``log pi`` as the public code reads it: ``torch.distributions.Categorical(probs=...).logits``.

    That is the log of the row-normalised probabilities clamped to ``[eps, 1 - eps]`` (``eps`` the
    float32 machine epsilon, about 1.2e-7), so an entry pushed below ``eps`` has zero gradient: part
    of why the public code's policy never moves again after its first update.
    """
    return torch.distributions.Categorical(probs=probs).logits


def public_code_step_loss(log_pi: torch.Tensor, q: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """One term per routing step of the public code's ``WPL._loss`` (``F.mse_loss``, ``reduction="none"``).

    With ``delta = G - Q(a)`` and ``w = 1 + delta if delta < 0 else 2 - delta``:
    ``(log pi(a) - stopgrad(w * log pi(a)))^2 + (Q(a) - G)^2``.
    """
    delta = returns - q.detach()
    target = (log_pi * public_code_target_weight(delta)).detach()
    return F.mse_loss(log_pi, target, reduction="none") + F.mse_loss(q, returns, reduction="none")


class WPLRouter(Router):
    """One WPL agent per (task, routed layer), acting on a table of block probabilities.

    **``variant="wpl"``** (the default). ``Q(t, d, a)`` is a running average of the returns ``G``
    (discount ``discount``) that followed block ``a`` at layer ``d`` of task ``t``: an exponential
    moving average with rate ``value_rate``, updated in :meth:`loss` from the batch first, as in
    Abdallah & Lesser's algorithm (value update, then policy step). The advantage of block ``b`` is
    ``delta(b) = Q(t, d, b) - V(t, d)`` with ``V(t, d) = sum_b pi(b) Q(t, d, b)`` the value of the
    current policy (the averaged ``Q`` rather than the single return ``G`` keeps the advantage from
    being dominated by the +1/-1 reward noise). For every step of every episode the policy step is

        pi(b) <- pi(b) + eta * delta(b) * (1 - pi(b))   if delta(b) > 0
        pi(b) <- pi(b) + eta * delta(b) * pi(b)         otherwise

    for ``b`` the sampled block only (``update="sampled"``: a batch moves block ``a`` by
    ``count(a) * eta * delta(a) * w(a)`` and leaves the others) or for every block of the state
    (``update="all-actions"``, Abdallah & Lesser's form: a state visited ``n`` times moves each
    block by ``n * eta * delta(b) * w(b)``), followed by ``pi <- clip(pi) / sum(clip(pi))``
    (Rosenbaum et al. 2018, Algorithm 3). For the loss-based trainer the step is the gradient of
    the surrogate ``-sum stopgrad(delta * w(delta, pi)) * pi`` with respect to the table (a plain SGD
    step at rate eta is exactly the WPL step; Adam keeps its direction per entry). The projection is
    applied in place at the start of every :meth:`loss` call and by :meth:`after_update`, and
    functionally in :meth:`probabilities`, so every read sees a point of the simplex.

    ``parameterization="softmax"`` is the Re-examining paper's improvement: the policy is
    ``softmax(logits)`` of a logit table (uniform at zero); the same surrogate on the probabilities
    backpropagates through the softmax, and no projection is needed. ``per_sample_loss=True`` sums
    the per-episode terms (a batch acts like B sequential updates), False averages them.

    **``variant="public-code"``** is the shipped loss (cle-ros/RoutingNetworks at cd4e9af; WPL.py,
    Loss.py and PolicyStorage.py are the same at its latest commit) on per-task tables, as the
    latest example script trains it. The rest of the shipped learning problem is run options, which
    the Table 2 suite's public-code rows set: ``--module-loss mse-one-hot --reward neg-loss
    --collab-reward 0.3 --collab-form public-code`` (the shipped reward), ``--batch-size 10
    --grad-clip 40 --grad-clip-mode public-code --step-epochs 1,6,11`` and its rates (the shipped
    loop).

    * the table starts uniform and is "projected" by ``pi_i - min_j pi_j + 1e-6`` (the normalising
      line is commented out there; ``Categorical`` normalises), with gradients flowing through that
      map; ``log pi`` is ``Categorical(probs).logits`` (clamped at float32 epsilon). At the uniform
      start every shifted entry equals 1e-6, so ``d log pi(a) / d table(a)`` is ``(1 - 1/M) * 1e6``:
      one SGD step moves that entry by hundreds and the policy freezes at an extreme (appendix A.1);
    * per step ``(log pi(a) - stopgrad(w * log pi(a)))^2 + (Q(a) - G)^2`` with ``delta = G - Q(a)``,
      ``w = 1 + delta if delta < 0 else 2 - delta`` (:func:`public_code_step_loss`). The target is
      built on ``log pi(a) < 0``, so ``w > 1`` (a better-than-expected block, ``0 < delta < 1``) makes
      it *more negative* and the step lowers that block's probability: the sign of the WPL update is
      reversed for every ``delta < 1``. On a 4-armed bandit rewarding one arm this drives the arm's
      probability to about 1e-9 (see tests);
    * the terms are summed over an episode's steps and **averaged over the batch** (``Loss.forward``
      with ``reduce=True``); ``Q`` is a second table initialised to ``1/M``, trained by that loss in
      the router's optimiser (``value_rate`` and ``per_sample_loss`` are unused).

    **``variant="public-code-corrected"``** is the same loss with the paper's minimal fix: the
    projection is Algorithm 3's ``clip(pi) / sum(clip(pi))`` in the forward pass, where the shipped
    code has its min-shift, and the per-episode terms are **summed over the batch** (no mean: "loss
    reduction none"; the module loss's reduction is the run's ``--loss-reduction``). The table itself
    is not projected after an update, as the shipped code projects only in the forward pass (an
    entry pushed outside [0, 1] then clips and gets no gradient); ``in_place_projection=true`` adds
    that projection after every update and at every loss, as the default variant does (the 3-epoch
    re-test of docs/table2.md trained the corrected row so). The log-pi target, and with it the sign
    reversal, is left as shipped: the paper's "corrected" row fixes only the exploding gradient. With
    ``parameterization="softmax"`` it is the learner of the paper's "separate optimizers" row and
    of the rows after it: "using separate optimizers [...] and applying a Softmax activation
    function in the routing policy layer" (section 3.3) on top of the corrected code.
    The public-code variants update the sampled block only; ``variant="public-code"`` needs the table.
    """

    values: torch.Tensor
    name = "wpl"
    description = "Weighted Policy Learner per task and layer on a probability table (variant=wpl|public-code|public-code-corrected)"
    family = "router: reinforcement learning"
    default_router_lr = 0.1
    option_help = {
        "variant": "wpl: this project's WPL; public-code: the shipped loss (cd4e9af); public-code-corrected: it with the paper's fix",
        "update": "variant wpl: move the sampled block (sampled) or every block of the state (all-actions, Abdallah & Lesser)",
        "parameterization": "table: probabilities as parameters; softmax: logits through a softmax (not with variant=public-code)",
        "discount": "discount of later rewards in each step's return",
        "per_sample_loss": "variant wpl: sum one WPL term per episode (true) or average them over the batch (false)",
        "value_rate": "variant wpl: rate of the moving average Q of each block's returns",
        "in_place_projection": "variant public-code-corrected: also project the table in place after every update (not in the shipped code)",
    }

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        num_blocks: int,
        *,
        seed: int = 0,
        variant: Variant = "wpl",
        update: Update = "sampled",
        parameterization: Parameterization = "table",
        discount: float = 1.0,
        per_sample_loss: bool = True,
        value_rate: float = 0.1,
        in_place_projection: bool = False,
    ) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        if variant not in ("wpl", *PUBLIC_CODE_VARIANTS):
            raise RouterConfigError(f"variant must be wpl, public-code or public-code-corrected, got {variant!r}")
        if update not in ("sampled", "all-actions"):
            raise RouterConfigError(f"update must be sampled or all-actions, got {update!r}")
        if parameterization not in ("table", "softmax"):
            raise RouterConfigError(f"parameterization must be table or softmax, got {parameterization!r}")
        if variant == "public-code" and parameterization != "table":
            raise RouterConfigError("variant=public-code reproduces the tabular policy; use parameterization=table")
        if variant in PUBLIC_CODE_VARIANTS and not per_sample_loss:
            raise RouterConfigError(
                f"per_sample_loss applies to variant=wpl; variant={variant} fixes its own reduction "
                "(public-code: mean over the batch; public-code-corrected: sum)"
            )
        if variant in PUBLIC_CODE_VARIANTS and update != "sampled":
            raise RouterConfigError(f"variant={variant} updates the sampled block only, as the public code does; use update=sampled")
        if not 0.0 < value_rate <= 1.0:
            raise RouterConfigError(f"value_rate must be in (0, 1], got {value_rate}")
        if in_place_projection and (variant != "public-code-corrected" or parameterization != "table"):
            raise RouterConfigError("in_place_projection applies to variant=public-code-corrected with parameterization=table")
        check_discount(discount)
        self.in_place_projection = variant == "wpl" or in_place_projection
        self.variant = variant
        self.update = update
        self.parameterization = parameterization
        self.discount = discount
        self.per_sample_loss = per_sample_loss
        self.value_rate = value_rate
        shape = (num_tasks, num_layers, num_blocks)
        initial = torch.zeros(shape) if parameterization == "softmax" else uniform_table(*shape)
        self.policy_param = nn.Parameter(initial)
        if variant in PUBLIC_CODE_VARIANTS:
            self.values = nn.Parameter(uniform_table(*shape))
        else:
            self.register_buffer("values", torch.zeros(shape))

    # ---- the policy ------------------------------------------------------------------------
    def probabilities(self) -> torch.Tensor:
        """The routing distribution of every task and layer, ``[T, L, M]`` (differentiable)."""
        if self.parameterization == "softmax":
            return torch.softmax(self.policy_param, dim=-1)
        if self.variant == "public-code":
            return public_code_projection(self.policy_param)
        return clip_projection(self.policy_param)

    def policy(self, depth: int) -> torch.Tensor:
        return self.probabilities()[:, depth].detach()

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        with torch.no_grad():
            probs = self.probabilities()[obs.task_ids, obs.depth]
        return categorical_decision(probs, explore, self.generator)

    def project_(self) -> None:
        """Put the probability table back onto the simplex in place (clip projection) where the learner
        does so: the default variant, and the corrected one with ``in_place_projection``."""
        if self.parameterization == "table" and self.in_place_projection:
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
        self.project_()
        if self.variant in PUBLIC_CODE_VARIANTS:
            per_episode = self._public_code_terms(steps).sum(dim=0)
            return per_episode.mean() if self.variant == "public-code" else per_episode.sum()
        moving_average_(self.values, steps.returns, self._flat_index(steps), self.value_rate)
        per_episode = self._wpl_terms(steps).sum(dim=0)
        return per_episode.sum() if self.per_sample_loss else per_episode.mean()

    def _wpl_terms(self, steps: EpisodeSteps) -> torch.Tensor:
        """Per-step surrogate whose gradient is minus the WPL step, ``[L, B]``."""
        probs = self.probabilities()
        pi = probs.detach()
        advantage = self.values - (pi * self.values).sum(dim=-1, keepdim=True)  # [T, L, M]
        step = (advantage * wpl_step_weight(advantage, pi)).detach()
        surrogate = probs if self.parameterization == "softmax" else self.policy_param
        if self.update == "all-actions":
            return -(per_cell(step, steps) * per_cell(surrogate, steps)).sum(dim=-1)
        return -(taken(step, steps) * taken(surrogate, steps))

    def _public_code_terms(self, steps: EpisodeSteps) -> torch.Tensor:
        """The shipped loss per step, ``[L, B]`` (see :func:`public_code_step_loss`)."""
        # the shipped arithmetic: Categorical normalises the unnormalised shift itself (one division)
        source = public_code_shift(self.policy_param) if self.variant == "public-code" else self.probabilities()
        log_pi = taken(categorical_log_probs(source), steps)
        return public_code_step_loss(log_pi, taken(self.values, steps), steps.returns)

    def _flat_index(self, steps: EpisodeSteps) -> torch.Tensor:
        return task_layer_block_index(steps, self.num_layers, self.num_blocks)

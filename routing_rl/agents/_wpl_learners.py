"""The learners of the WPL router (``-o variant=``): how a batch of episodes becomes a loss.

Kept apart from the router (:mod:`routing_rl.agents.wpl`), which holds the tables and options and
hands itself to its learner; a learner reads a router through :class:`WPLTables`, so that several
routers' tables side by side (:class:`SideBySideTables`, a population learning in one pass) read the
same. Private to the WPL router (its name starts with ``_``, so the agents package does not import
it as a router module).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from routing_rl.agents._policy_tables import EpisodeSteps, moving_average_, taken, task_layer_block_index, uniform_table
from routing_rl.agents._wpl_parts import (
    PolicyForm,
    ProbabilityTable,
    UpdateTerms,
    categorical_log_probs,
    clip_projection,
    public_code_projection,
    public_code_shift,
    public_code_step_loss,
    sampled_block_terms,
    wpl_step_weight,
)
from routing_rl.agents.base import RouterConfigError


class WPLTables(Protocol):
    """What a learner reads of a WPL router: its tables, the options it was given, and its
    probabilities (:class:`~routing_rl.agents.wpl.WPLRouter`, or :class:`SideBySideTables`)."""

    policy_param: torch.Tensor
    values: torch.Tensor
    form: PolicyForm
    learner: WPLLearner
    update_terms: UpdateTerms
    num_layers: int
    num_blocks: int
    value_rate: float
    per_sample_loss: bool

    def probabilities(self) -> torch.Tensor: ...


@dataclass
class SideBySideTables:
    """Several WPL routers' tables concatenated along the task axis (``[P * T, L, M]``), with the
    options they share: what :meth:`ProjectWPL.episode_terms` reads of a router, so that one pass
    computes every router's terms (:meth:`~routing_rl.agents.wpl.WPLRouter.stacked_losses`). ``policy_param`` is
    differentiable (each router's table gets its own gradient); ``values`` is a copy, averaged in
    place and then copied back."""

    policy_param: torch.Tensor
    values: torch.Tensor
    form: PolicyForm
    learner: WPLLearner
    update_terms: UpdateTerms
    num_layers: int
    num_blocks: int
    value_rate: float
    per_sample_loss: bool

    @classmethod
    def of(cls, routers: Sequence[WPLTables]) -> SideBySideTables:
        first = routers[0]
        return cls(torch.cat([r.policy_param for r in routers]), torch.cat([r.values for r in routers]), first.form, first.learner,
                   first.update_terms, first.num_layers, first.num_blocks, first.value_rate, first.per_sample_loss)  # fmt: skip

    def probabilities(self) -> torch.Tensor:
        """As :meth:`~routing_rl.agents.wpl.WPLRouter.probabilities`, of every router at once."""
        return self.form.probabilities(self.policy_param, self.learner.project)


# ---- the learners (-o variant=) ----------------------------------------------------------------
class WPLLearner(ABC):
    """One learner of the ``wpl`` router: how its probability table is projected, what its value
    table ``Q`` is, and how a batch of episodes becomes a loss.

    A learner keeps no state of its own: the router holds the tables (so its saved state is the same
    for every variant) and the options, and hands itself to :meth:`loss`. A learner's class
    attributes say what the router does around it; :meth:`check_options` refuses the options it
    does not take.
    """

    variant: ClassVar[str]
    """The ``variant`` option's value that selects this learner."""
    projects_in_place: ClassVar[bool] = False
    """Whether a probability table is put back onto the simplex in place at every loss and after
    every update, whatever ``in_place_projection`` says."""
    offers_in_place_projection: ClassVar[bool] = False
    """Whether ``in_place_projection=true`` may ask for that projection where the learner does not."""
    learns_values_by_loss: ClassVar[bool] = False
    """True: ``Q`` is a parameter that the loss trains in the router's optimiser; False: a buffer
    that the learner averages itself."""

    @classmethod
    def check_options(cls, form: type[PolicyForm], update: UpdateTerms, per_sample_loss: bool) -> None:
        """Raise :class:`RouterConfigError` for an option this learner does not take (``form`` and
        ``update`` as the ``parameterization`` and ``update`` options resolve)."""

    def project(self, table: torch.Tensor) -> torch.Tensor:
        """The projection of a probability table onto the simplex on every read: Algorithm 3's clip."""
        return clip_projection(table)

    @abstractmethod
    def initial_values(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """The value table ``Q`` at the start, ``[T, L, M]``."""

    @abstractmethod
    def loss(self, router: WPLTables, steps: EpisodeSteps) -> torch.Tensor:
        """The router's loss on a finished batch of episodes (``steps``: at least one routed layer)."""


class ProjectWPL(WPLLearner):
    """``variant=wpl``: this project's WPL, from Abdallah & Lesser (2006) and Rosenbaum et al.'s Algorithm 3.

    ``Q(t, d, a)`` is a running average of the returns ``G`` (discount ``discount``) that followed
    block ``a`` at layer ``d`` of task ``t``: an exponential moving average with rate ``value_rate``,
    updated in :meth:`loss` from the batch first, as in Abdallah & Lesser's algorithm (value update,
    then policy step). The advantage of block ``b`` is ``delta(b) = Q(t, d, b) - V(t, d)`` with
    ``V(t, d) = sum_b pi(b) Q(t, d, b)`` the value of the current policy (the averaged ``Q`` rather
    than the single return ``G`` keeps the advantage from being dominated by the +1/-1 reward
    noise). For every step of every episode the policy step is

        pi(b) <- pi(b) + eta * delta(b) * (1 - pi(b))   if delta(b) > 0
        pi(b) <- pi(b) + eta * delta(b) * pi(b)         otherwise

    for the blocks ``update`` names (:data:`UPDATE_RULES`), followed by ``pi <- clip(pi) /
    sum(clip(pi))`` (Rosenbaum et al. 2018, Algorithm 3). For the loss-based trainer the step is the
    gradient of the surrogate ``-sum stopgrad(delta * w(delta, pi)) * pi`` with respect to the table
    (a plain SGD step at rate eta is exactly the WPL step; Adam keeps its direction per entry). The
    projection is applied in place at the start of every loss and after every update, and
    functionally on every read, so every read sees a point of the simplex. With a softmax policy the
    same surrogate on the probabilities backpropagates through the softmax. ``per_sample_loss=True``
    sums the per-episode terms (a batch acts like B sequential updates), False averages them.
    """

    variant = "wpl"
    projects_in_place = True

    def initial_values(self, shape: tuple[int, int, int]) -> torch.Tensor:
        return torch.zeros(shape)

    def loss(self, router: WPLTables, steps: EpisodeSteps) -> torch.Tensor:
        return self.reduce(router, self.episode_terms(router, steps))

    def episode_terms(self, router: WPLTables, steps: EpisodeSteps) -> torch.Tensor:
        """Each episode's surrogate summed over its steps, ``[B]``, after ``Q`` is averaged in place
        (``router``: one router, or several routers' tables side by side, :meth:`~routing_rl.agents.wpl.WPLRouter.stacked_losses`)."""
        cells = task_layer_block_index(steps, router.num_layers, router.num_blocks)
        moving_average_(router.values, steps.returns, cells, router.value_rate)
        return self.step_terms(router, steps).sum(dim=0)

    @staticmethod
    def reduce(router: WPLTables, per_episode: torch.Tensor) -> torch.Tensor:
        """The batch's loss: the episodes' terms summed (``per_sample_loss``) or averaged."""
        return per_episode.sum() if router.per_sample_loss else per_episode.mean()

    def step_terms(self, router: WPLTables, steps: EpisodeSteps) -> torch.Tensor:
        """Per-step surrogate whose gradient is minus the WPL step, ``[L, B]``."""
        probs = router.probabilities()
        pi = probs.detach()
        advantage = router.values - (pi * router.values).sum(dim=-1, keepdim=True)  # [T, L, M]
        step = (advantage * wpl_step_weight(advantage, pi)).detach()
        return router.update_terms(step, router.form.wpl_surrogate(router.policy_param, probs), steps)


class PublicCodeWPL(WPLLearner):
    """``variant=public-code``: the shipped loss (cle-ros/RoutingNetworks at cd4e9af; WPL.py,
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

    The public code updates the sampled block only, on the probability table.
    """

    variant = "public-code"
    learns_values_by_loss = True
    tabular_only: ClassVar[bool] = True
    """Whether the learner reproduces the tabular policy only (the shipped code has no softmax)."""

    @classmethod
    def check_options(cls, form: type[PolicyForm], update: UpdateTerms, per_sample_loss: bool) -> None:
        if cls.tabular_only and not issubclass(form, ProbabilityTable):
            raise RouterConfigError(f"variant={cls.variant} reproduces the tabular policy; use parameterization=table")
        if not per_sample_loss:
            raise RouterConfigError(
                f"per_sample_loss applies to variant=wpl; variant={cls.variant} fixes its own reduction "
                "(public-code: mean over the batch; public-code-corrected: sum)"
            )
        if update is not sampled_block_terms:
            raise RouterConfigError(f"variant={cls.variant} updates the sampled block only, as the public code does; use update=sampled")

    def project(self, table: torch.Tensor) -> torch.Tensor:
        return public_code_projection(table)

    def initial_values(self, shape: tuple[int, int, int]) -> torch.Tensor:
        return uniform_table(*shape)

    def loss(self, router: WPLTables, steps: EpisodeSteps) -> torch.Tensor:
        log_pi = taken(categorical_log_probs(self.log_pi_source(router)), steps)
        per_episode = public_code_step_loss(log_pi, taken(router.values, steps), steps.returns).sum(dim=0)
        return self.reduce(per_episode)

    def log_pi_source(self, router: WPLTables) -> torch.Tensor:
        """What ``Categorical`` reads ``log pi`` from: the shipped arithmetic, the unnormalised shift
        that ``Categorical`` divides by its sum itself (one division, not the two of a normalised read)."""
        return public_code_shift(router.policy_param)

    def reduce(self, per_episode: torch.Tensor) -> torch.Tensor:
        """The shipped reduction over the batch: the mean (``Loss.forward`` with ``reduce=True``)."""
        return per_episode.mean()


class CorrectedPublicCodeWPL(PublicCodeWPL):
    """``variant=public-code-corrected``: the shipped loss with the paper's minimal fix.

    The projection is Algorithm 3's ``clip(pi) / sum(clip(pi))`` in the forward pass, where the
    shipped code has its min-shift, and the per-episode terms are **summed over the batch** (no mean:
    "loss reduction none"; the module loss's reduction is the run's ``--loss-reduction``). The table
    itself is not projected after an update, as the shipped code projects only in the forward pass
    (an entry pushed outside [0, 1] then clips and gets no gradient); ``in_place_projection=true``
    adds that projection after every update and at every loss, as the default variant does (the
    3-epoch re-test of docs/table2.md trained the corrected row so). The log-pi target, and with it the sign
    reversal, is left as shipped: the paper's "corrected" row fixes only the exploding gradient. With
    ``parameterization="softmax"`` it is the learner of the paper's "separate optimizers" row and of
    the rows after it: "using separate optimizers [...] and applying a Softmax activation function in
    the routing policy layer" (section 3.3) on top of the corrected code.
    """

    variant = "public-code-corrected"
    tabular_only = False
    offers_in_place_projection = True

    def project(self, table: torch.Tensor) -> torch.Tensor:
        return clip_projection(table)

    def log_pi_source(self, router: WPLTables) -> torch.Tensor:
        return router.probabilities()

    def reduce(self, per_episode: torch.Tensor) -> torch.Tensor:
        return per_episode.sum()


WPL_LEARNERS: dict[str, type[WPLLearner]] = {learner.variant: learner for learner in (ProjectWPL, PublicCodeWPL, CorrectedPublicCodeWPL)}
"""Every ``variant`` value and its learner."""

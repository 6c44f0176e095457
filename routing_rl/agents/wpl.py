"""The Weighted Policy Learner (Abdallah & Lesser 2006), the router of routing networks.

Rosenbaum et al. (2018) train one WPL agent per task and routed layer on a table of block
probabilities, and the Re-examining paper (section 2.2) keeps that set-up. WPL is a policy-gradient
rule on the probabilities themselves: an action whose value beats the policy's value is pushed up
by an amount scaled with ``1 - pi(a)`` (slowing down as it approaches 1), one that falls short is
pushed down scaled with ``pi(a)`` (slowing down as it approaches 0), and the table is projected
back onto the probability simplex.

Three learners live here, one class each, because the Re-examining paper's Table 2 compares them;
``-o variant=`` picks one for the single ``wpl`` router (:class:`WPLRouter`), which holds the tables
and options whatever the learner, so a checkpoint's state is the same for every variant:

* :class:`ProjectWPL` (``wpl``, the default): the project's WPL, written from Abdallah & Lesser and
  Rosenbaum et al.'s Algorithm 3 (clip projection); ``update=all-actions`` moves every block of a
  visited state with its own advantage, as Abdallah & Lesser's algorithm does, ``update=sampled``
  only the sampled one.
* :class:`PublicCodeWPL` (``public-code``): the loss of the public code as shipped
  (cle-ros/RoutingNetworks at commit cd4e9af, ``WPL._loss`` and ``Loss.forward``), the paper's
  "public code" row.
* :class:`CorrectedPublicCodeWPL` (``public-code-corrected``): that code with the paper's minimal fix
  (appendix A.1): the projection of Algorithm 3 instead of the min-shift, and no mean over the batch
  ("loss reduction none").

``-o parameterization=`` picks what the router's table holds, a :class:`PolicyForm`:
:class:`ProbabilityTable` (the probabilities themselves) or :class:`SoftmaxLogits` (logits through a
softmax, the Re-examining paper's improvement). ``-o update=`` picks which blocks a step of the
project's WPL moves (:data:`UPDATE_RULES`). The formulas, the forms and the update rules live in
:mod:`routing_rl.agents._wpl_parts`; the learners and the router here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

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
    population_steps,
    stackable_episodes,
    table_key,
    taken,
    task_layer_block_index,
    uniform_table,
)
from routing_rl.agents._wpl_parts import (
    POLICY_FORMS,
    UPDATE_RULES,
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
from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation

Variant = Literal["wpl", "public-code", "public-code-corrected"]
Update = Literal["sampled", "all-actions"]
Parameterization = Literal["table", "softmax"]

@dataclass
class SideBySideTables:
    """Several WPL routers' tables concatenated along the task axis (``[P * T, L, M]``), with the
    options they share: what :meth:`ProjectWPL.episode_terms` reads of a router, so that one pass
    computes every router's terms (:meth:`WPLRouter.stacked_losses`). ``policy_param`` is
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

    @classmethod
    def of(cls, routers: Sequence[WPLRouter]) -> SideBySideTables:
        first = routers[0]
        return cls(torch.cat([r.policy_param for r in routers]), torch.cat([r.values for r in routers]), first.form, first.learner,
                   first.update_terms, first.num_layers, first.num_blocks, first.value_rate)  # fmt: skip

    def probabilities(self) -> torch.Tensor:
        """As :meth:`WPLRouter.probabilities`, of every router at once."""
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
    def loss(self, router: WPLRouter, steps: EpisodeSteps) -> torch.Tensor:
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

    def loss(self, router: WPLRouter, steps: EpisodeSteps) -> torch.Tensor:
        return self.reduce(router, self.episode_terms(router, steps))

    def episode_terms(self, router: WPLRouter | SideBySideTables, steps: EpisodeSteps) -> torch.Tensor:
        """Each episode's surrogate summed over its steps, ``[B]``, after ``Q`` is averaged in place
        (``router``: one router, or several routers' tables side by side, :meth:`WPLRouter.stacked_losses`)."""
        cells = task_layer_block_index(steps, router.num_layers, router.num_blocks)
        moving_average_(router.values, steps.returns, cells, router.value_rate)
        return self.step_terms(router, steps).sum(dim=0)

    @staticmethod
    def reduce(router: WPLRouter, per_episode: torch.Tensor) -> torch.Tensor:
        """The batch's loss: the episodes' terms summed (``per_sample_loss``) or averaged."""
        return per_episode.sum() if router.per_sample_loss else per_episode.mean()

    def step_terms(self, router: WPLRouter | SideBySideTables, steps: EpisodeSteps) -> torch.Tensor:
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

    def loss(self, router: WPLRouter, steps: EpisodeSteps) -> torch.Tensor:
        log_pi = taken(categorical_log_probs(self.log_pi_source(router)), steps)
        per_episode = public_code_step_loss(log_pi, taken(router.values, steps), steps.returns).sum(dim=0)
        return self.reduce(per_episode)

    def log_pi_source(self, router: WPLRouter) -> torch.Tensor:
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

    def log_pi_source(self, router: WPLRouter) -> torch.Tensor:
        return router.probabilities()

    def reduce(self, per_episode: torch.Tensor) -> torch.Tensor:
        return per_episode.sum()


WPL_LEARNERS: dict[str, type[WPLLearner]] = {learner.variant: learner for learner in (ProjectWPL, PublicCodeWPL, CorrectedPublicCodeWPL)}
"""Every ``variant`` value and its learner."""

Choice = TypeVar("Choice")


def choose(choices: Mapping[str, Choice], option: str, value: str) -> Choice:
    """The entry of ``choices`` an option's value names; :class:`RouterConfigError` lists the valid values."""
    if value not in choices:
        names = list(choices)
        raise RouterConfigError(f"{option} must be {', '.join(names[:-1])} or {names[-1]}, got {value!r}")
    return choices[value]


class WPLRouter(LearnsTogether, SamplesCategorically, Router):
    """One WPL agent per (task, routed layer), acting on a table of block probabilities.

    The router holds what every learner shares: the table ``policy_param`` (``[T, L, M]``, read
    through its :class:`PolicyForm`), the value table ``values`` (``Q``) and the options. The learner
    that ``variant`` names (:data:`WPL_LEARNERS`) turns episodes into a loss; see
    :class:`ProjectWPL`, :class:`PublicCodeWPL` and :class:`CorrectedPublicCodeWPL` for each one's
    formulas. A probability table is projected functionally in :meth:`probabilities`, so every read
    sees a point of the simplex, and in place (Algorithm 3's clip) at the start of every
    :meth:`loss` and by :meth:`after_update` where the learner does so or ``in_place_projection``
    asks for it.
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
        learner_cls = choose(WPL_LEARNERS, "variant", variant)
        update_terms = choose(UPDATE_RULES, "update", update)
        form_cls = choose(POLICY_FORMS, "parameterization", parameterization)
        learner_cls.check_options(form_cls, update_terms, per_sample_loss)
        if not 0.0 < value_rate <= 1.0:
            raise RouterConfigError(f"value_rate must be in (0, 1], got {value_rate}")
        if in_place_projection and not (learner_cls.offers_in_place_projection and issubclass(form_cls, ProbabilityTable)):
            raise RouterConfigError("in_place_projection applies to variant=public-code-corrected with parameterization=table")
        check_discount(discount)
        self.learner = learner_cls()
        self.form = form_cls()
        self.update_terms = update_terms
        self.in_place_projection = learner_cls.projects_in_place or in_place_projection
        # the options as given, for whoever inspects a router; what they select acts through the three above
        self.variant = variant
        self.update = update
        self.parameterization = parameterization
        self.discount = discount
        self.per_sample_loss = per_sample_loss
        self.value_rate = value_rate
        shape = (num_tasks, num_layers, num_blocks)
        self.policy_param = nn.Parameter(self.form.initial(shape))
        self._acting_cache: tuple[tuple[object, ...], torch.Tensor] | None = None
        values = self.learner.initial_values(shape)
        if learner_cls.learns_values_by_loss:
            self.values = nn.Parameter(values)
        else:
            self.register_buffer("values", values)

    # ---- the policy ------------------------------------------------------------------------
    def probabilities(self) -> torch.Tensor:
        """The routing distribution of every task and layer, ``[T, L, M]`` (differentiable)."""
        return self.form.probabilities(self.policy_param, self.learner.project)

    def policy(self, depth: int) -> torch.Tensor:
        return self._acting_probabilities()[:, depth].clone()

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        return categorical_decision(self.exploring_probabilities(obs), explore, self.generator)

    def exploring_probabilities(self, obs: RoutingObservation) -> torch.Tensor:
        return self._acting_probabilities()[obs.task_ids, obs.depth]

    def _acting_probabilities(self) -> torch.Tensor:
        """:meth:`probabilities`, detached, computed once per state of the table: a step's routed
        layers (and a whole evaluation) read one table, and its projection is most of an act. The
        table's version counter moves with every in-place change (an optimizer step, a projection,
        a loaded checkpoint), so a cached table is never stale; the numbers are those of a fresh read."""
        table = self.policy_param
        key = (table.data_ptr(), table._version, table.device, table.dtype)
        if self._acting_cache is None or self._acting_cache[0] != key:
            with torch.no_grad():
                self._acting_cache = (key, self.probabilities().detach())
        return self._acting_cache[1]

    def project_(self) -> None:
        """Put a probability table back onto the simplex in place (clip projection) where the learner
        does so: the default variant, and the corrected one with ``in_place_projection``."""
        if self.in_place_projection:
            self.form.project_(self.policy_param)

    def after_update(self) -> None:
        """Post-optimiser-step hook: the projection step of WPL (Algorithm 3's last line)."""
        self.project_()

    # ---- learning --------------------------------------------------------------------------
    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        if episodes.num_steps == 0:
            return None  # a network without routed layers: nothing to learn
        steps = episode_steps(episodes, self.discount)
        self.project_()
        return self.learner.loss(self, steps)

    def together_key(self, episodes: EpisodeBatch) -> tuple[object, ...] | None:
        """The project's WPL learns together with routers of the same options (the public-code
        learners, kept as shipped, learn alone)."""
        shape = stackable_episodes(episodes)
        if shape is None or type(self.learner) is not ProjectWPL:
            return None
        return (type(self), shape, table_key(self.policy_param), table_key(self.values), type(self.form), self.update_terms,
                self.discount, self.value_rate, self.per_sample_loss, self.in_place_projection)  # fmt: skip

    @classmethod
    def stacked_losses(cls, routers: Sequence[Any], episodes: Sequence[EpisodeBatch]) -> list[torch.Tensor]:
        """Every router's :meth:`loss` from one pass over their tables side by side
        (:class:`SideBySideTables`): the in-place projection, ``Q``'s average and the surrogate;
        each router's table and ``Q`` get their own updates back."""
        first: WPLRouter = routers[0]
        steps = population_steps(episodes, first.discount, first.num_tasks)
        if first.in_place_projection and isinstance(first.form, ProbabilityTable):
            with torch.no_grad():  # ProbabilityTable.project_ of every table, at once
                projected = clip_projection(torch.cat([router.policy_param for router in routers]))
                for router, table in zip(routers, projected.split(first.num_tasks)):
                    router.policy_param.copy_(table)
        else:
            for router in routers:
                router.project_()
        tables = SideBySideTables.of(routers)
        assert isinstance(first.learner, ProjectWPL)
        per_episode = first.learner.episode_terms(tables, steps)
        with torch.no_grad():
            for router, values in zip(routers, tables.values.split(first.num_tasks)):
                router.values.copy_(values)
        return [first.learner.reduce(first, terms) for terms in per_episode.split(steps.batch_size // len(routers))]

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
:mod:`routing_rl.agents._wpl_parts`, the learners in :mod:`routing_rl.agents._wpl_learners`, the
router here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from routing_rl.agents._policy_tables import (
    LearnsTogether,
    SamplesCategorically,
    categorical_decision,
    check_discount,
    episode_steps,
    population_steps,
    stackable_episodes,
    table_key,
)
from routing_rl.agents._wpl_parts import POLICY_FORMS, UPDATE_RULES, ProbabilityTable
from routing_rl.agents._wpl_learners import WPL_LEARNERS, ProjectWPL, SideBySideTables
from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation

Variant = Literal["wpl", "public-code", "public-code-corrected"]
Update = Literal["sampled", "all-actions"]
Parameterization = Literal["table", "softmax"]

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
        if first.in_place_projection:  # each router's project_, in one pass
            first.form.project_(*(router.policy_param for router in routers))
        tables = SideBySideTables.of(routers)
        assert isinstance(first.learner, ProjectWPL)
        per_episode = first.learner.episode_terms(tables, steps)
        with torch.no_grad():
            for router, values in zip(routers, tables.values.split(first.num_tasks)):
                router.values.copy_(values)
        return [first.learner.reduce(tables, terms) for terms in per_episode.split(steps.batch_size // len(routers))]

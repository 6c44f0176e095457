"""The parts of the WPL learners that are formulas: projections, step weights, the public code's
step loss, the two policy forms (``-o parameterization=``) and the two update rules (``-o update=``).

Kept apart from the learners and the router (:mod:`routing_rl.agents.wpl`) so that each formula
can be read, and tested on a hand-made batch, on its own; the module is private to the WPL router
(its name starts with ``_``, so the agents package does not import it as a router module).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch.nn import functional as F

from routing_rl.agents._policy_tables import EpisodeSteps, per_cell, taken, uniform_table


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



# ---- the parameterization: what the router's table holds (-o parameterization=) ----------------
class PolicyForm(ABC):
    """What the router's learnable table ``policy_param`` holds, and so how it becomes a policy.

    The learner decides how a probability table is projected onto the simplex (the public code's
    min-shift or Algorithm 3's clip); the form decides whether there is a probability table to
    project at all, and which tensor a WPL step is the gradient on.
    """

    name: ClassVar[str]
    """The ``parameterization`` option's value that selects this form."""

    @abstractmethod
    def initial(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """The table at the start, ``[T, L, M]``: a uniform policy."""

    @abstractmethod
    def probabilities(self, param: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The routing distribution ``[T, L, M]``, differentiable in ``param``; ``project`` is the
        learner's projection of a probability table onto the simplex."""

    @abstractmethod
    def wpl_surrogate(self, param: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """The tensor that the WPL surrogate multiplies by its (detached) step, so that minus the
        surrogate's gradient is the WPL step on the probabilities."""

    def project_(self, *params: torch.Tensor) -> None:
        """Put each table back onto the simplex in place (several routers' tables of one shape: a
        population's, in one pass); nothing to do where every table is a policy."""


class ProbabilityTable(PolicyForm):
    """``parameterization=table``: the parameters are the probabilities (Rosenbaum et al. 2018).

    An update can leave the simplex, so every read goes through the learner's projection, and the
    learners that project in place use Algorithm 3's clip.
    """

    name = "table"

    def initial(self, shape: tuple[int, int, int]) -> torch.Tensor:
        return uniform_table(*shape)

    def probabilities(self, param: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return project(param)

    def wpl_surrogate(self, param: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return param  # the step moves the table itself: a plain SGD step at rate eta is the WPL step

    def project_(self, *params: torch.Tensor) -> None:
        with torch.no_grad():  # the tables concatenated: each row's clip and sum are its own, so each table's are
            projected = clip_projection(params[0] if len(params) == 1 else torch.cat(params))
            for param, table in zip(params, projected.split(params[0].shape[0])):
                param.copy_(table)


class SoftmaxLogits(PolicyForm):
    """``parameterization=softmax``, the Re-examining paper's improvement: the policy is
    ``softmax(logits)`` of a logit table (uniform at zero). Every table is a policy, so nothing is
    projected, and the WPL step on the probabilities backpropagates through the softmax."""

    name = "softmax"

    def initial(self, shape: tuple[int, int, int]) -> torch.Tensor:
        return torch.zeros(shape)

    def probabilities(self, param: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return torch.softmax(param, dim=-1)

    def wpl_surrogate(self, param: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return probs


POLICY_FORMS: dict[str, type[PolicyForm]] = {form.name: form for form in (ProbabilityTable, SoftmaxLogits)}
"""Every ``parameterization`` value and its form."""


# ---- which blocks a step of the project's WPL moves (-o update=) -------------------------------
UpdateTerms = Callable[[torch.Tensor, torch.Tensor, EpisodeSteps], torch.Tensor]
"""``(step, surrogate, steps) -> [L, B]``: the per-step WPL surrogate from the ``[T, L, M]`` step
(detached) and the tensor it moves (see :meth:`PolicyForm.wpl_surrogate`)."""


def sampled_block_terms(step: torch.Tensor, surrogate: torch.Tensor, steps: EpisodeSteps) -> torch.Tensor:
    """``update=sampled``: each step moves its sampled block only, so a batch moves block ``a`` by
    ``count(a) * eta * delta(a) * w(a)`` and leaves the others."""
    return -(taken(step, steps) * taken(surrogate, steps))


def all_block_terms(step: torch.Tensor, surrogate: torch.Tensor, steps: EpisodeSteps) -> torch.Tensor:
    """``update=all-actions``, Abdallah & Lesser's form: each step moves every block of its state
    with its own advantage, so a state visited ``n`` times moves each block by ``n * eta * delta(b) * w(b)``."""
    return -(per_cell(step, steps) * per_cell(surrogate, steps)).sum(dim=-1)


UPDATE_RULES: dict[str, UpdateTerms] = {"sampled": sampled_block_terms, "all-actions": all_block_terms}
"""Every ``update`` value and its per-step surrogate."""



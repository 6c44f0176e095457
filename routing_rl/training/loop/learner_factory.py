"""The one place a run's learner is made: a routed network with its router, or a multi-task model.

It sits outside the learner classes and the composition so that neither imports the other's
subclasses: the learners take a :class:`~routing_rl.training.setup.composition.Composition`, and the
composition knows no learner.
"""

from __future__ import annotations

import torch

from routing_rl.training.setup.composition import Composition
from routing_rl.data.families import TaskFamily
from routing_rl.training.loop.learner import Learner
from routing_rl.training.loop.model_learner import ModelLearner
from routing_rl.training.loop.routed_learner import RoutedLearner


def make_learner(parts: Composition, family: TaskFamily, device: torch.device) -> Learner:
    """The learner of ``parts``' agent: a router trains in its routed network, a model is its own network."""
    if parts.is_router:
        return RoutedLearner(parts, family, device)
    return ModelLearner(parts, family, device)


__all__ = ["make_learner"]

"""Routing environments: the per-task Gymnasium env, the batched training env, and registration.

Importing this package (and so ``import routing_rl``) registers one Gymnasium id per single-label
task suite (``routing_rl/<Name>-v0``), so ``gymnasium.make("routing_rl/SyntheticGroups-v0", task=0)``
works after ``import routing_rl``; ``gymnasium.make("routing_rl:routing_rl/SyntheticGroups-v0")``
imports the package itself.
"""

from __future__ import annotations

import gymnasium as gym

from routing_rl.data import Suite
from routing_rl.envs.batched import BatchedRoutingEnv
from routing_rl.core.contracts import EpisodeBatch, RoutingObservation
from routing_rl.envs.task_env import TaskRoutingEnv


def register_gym_envs() -> list[str]:
    """Register a Gymnasium id for every suite that declares one (call again after loading plugins)."""
    ids = []
    for name, suite in Suite.registry.items():
        gym_id = getattr(suite, "gym_id", "")
        if gym_id and gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=TaskRoutingEnv, kwargs={"suite": suite})  # the class: make() looks up no name
        if gym_id:
            ids.append(gym_id)
    return ids


register_gym_envs()

__all__ = ["BatchedRoutingEnv", "EpisodeBatch", "RoutingObservation", "TaskRoutingEnv", "register_gym_envs"]

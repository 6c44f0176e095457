"""Routing environments: the per-task Gymnasium env, the batched training env, and registration.

Importing this package registers one Gymnasium id per task suite (``routing_rl/<Name>-v0``), so
``gymnasium.make("routing_rl/SyntheticGroups-v0", task=0)`` works after ``import routing_rl.envs``.
"""

from __future__ import annotations

import gymnasium as gym

from routing_rl.data import TaskSuite
from routing_rl.envs.batched import BatchedRoutingEnv
from routing_rl.envs.episodes import EpisodeBatch, RoutingObservation
from routing_rl.envs.task_env import TaskRoutingEnv


def register_gym_envs() -> list[str]:
    """Register a Gymnasium id for every task suite known now (call again after loading plugins)."""
    ids = []
    for name, suite in TaskSuite.registry.items():
        if suite.gym_id and suite.gym_id not in gym.registry:
            gym.register(id=suite.gym_id, entry_point=TaskRoutingEnv, kwargs={"suite": name})
        if suite.gym_id:
            ids.append(suite.gym_id)
    return ids


register_gym_envs()

__all__ = ["BatchedRoutingEnv", "EpisodeBatch", "RoutingObservation", "TaskRoutingEnv", "register_gym_envs"]

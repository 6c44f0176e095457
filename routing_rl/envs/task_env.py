"""The per-task routing environment as a real ``gymnasium.Env``.

One episode routes one sample of one task through the network: the observation is the task id
and the depth (and optionally a summary of the hidden state), an action is a block index at the
current routed layer, and the episode terminates after the last routed layer with a reward from
the prediction (+1 right / -1 wrong, or minus the loss).

Determinism: the network's weights are frozen inside the env (eval mode, no gradients), so the
same seed gives the same samples, observations and rewards, and ``check_env`` passes. Training
happens in the batched env (:mod:`routing_rl.envs.batched`); pass a trained network (or a run's
checkpoint) here to interact with a trained model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from routing_rl.core.contracts import RoutingDecision
from routing_rl.core.objectives import final_reward
from routing_rl.data import SingleLabelData, Suite
from routing_rl.envs.batched import hidden_summary
from routing_rl.envs.frozen import frozen_routing_problem
from routing_rl.network import RoutingNetwork

ObsType = dict[str, Any]


class TaskRoutingEnv(gym.Env[ObsType, np.int64]):
    """Route samples of task ``task`` of a task suite, one routed layer per step."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        suite: str | type[Suite] = "synthetic-groups",
        task: int = 0,
        split: str = "test",
        routed: str = "fc",
        blocks: int | None = None,
        reward: str = "correct",
        observe_hidden: bool = False,
        data_dir: str | Path | None = None,
        data_seed: int = 0,
        network_seed: int = 0,
        data: SingleLabelData | None = None,
        network: RoutingNetwork | None = None,
        render_mode: str | None = None,
    ) -> None:
        problem = frozen_routing_problem(suite, split, routed, blocks, data_dir, data_seed, network_seed, data, network)
        self.data, self.network, self._split = problem.data, problem.network, problem.split
        network = self.network
        if not 0 <= task < self.data.num_tasks:
            raise ValueError(f"task must be in [0, {self.data.num_tasks}), got {task}")
        self.task = task
        self.reward_kind = reward
        self.observe_hidden = observe_hidden
        self.render_mode = render_mode
        self._rows = self._split.task_rows(task)
        if self._rows.numel() == 0:
            raise ValueError(f"task {task} has no samples in the {split} split")
        self.num_blocks = problem.num_blocks
        self.hidden_dim = problem.hidden_dim
        self.action_space = spaces.Discrete(self.num_blocks)
        obs_spaces: dict[str, spaces.Space[Any]] = {
            "task": spaces.Discrete(self.data.num_tasks),
            "depth": spaces.Discrete(network.num_routed),
        }
        if observe_hidden:
            obs_spaces["hidden"] = spaces.Box(-np.inf, np.inf, (self.hidden_dim,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)
        self._tasks = torch.tensor([task])
        self._h: torch.Tensor | None = None
        self._depth = 0
        self._row = -1
        self._target = 0
        self._route: list[int] = []

    def _obs(self) -> ObsType:
        obs: ObsType = {"task": self.task, "depth": self._depth}
        if self.observe_hidden:
            assert self._h is not None
            summary = hidden_summary(self._h)[0].numpy().astype(np.float32)
            padded = np.zeros(self.hidden_dim, dtype=np.float32)
            padded[: summary.shape[0]] = summary
            obs["hidden"] = padded
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "row" in options:
            self._row = int(options["row"])
        else:
            self._row = int(self._rows[int(self.np_random.integers(self._rows.numel()))])
        x, y, _ = self._split.gather(torch.tensor([self._row]))
        self._target = int(y[0])
        self._depth = 0
        self._route = []
        with torch.no_grad():
            self._h = self.network.begin(x, self._tasks)
        return self._obs(), {"row": self._row, "label": self._target}

    def step(self, action: Any) -> tuple[ObsType, float, bool, bool, dict[str, Any]]:
        if self._h is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action) or int(action) >= self.network.blocks_per_layer[self._depth]:
            raise ValueError(f"action must be a block index in [0, {self.network.blocks_per_layer[self._depth]}), got {action!r}")
        self._route.append(int(action))
        with torch.no_grad():
            self._h = self.network.advance(self._depth, self._h, self._tasks, RoutingDecision(torch.tensor([int(action)])))
        if self._depth < self.network.num_routed - 1:
            self._depth += 1
            return self._obs(), 0.0, False, False, {"route": list(self._route)}
        logits = self._h
        target = torch.tensor([self._target])
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        reward = float(final_reward(self.reward_kind, logits, target, loss)[0])
        prediction = int(logits.argmax(dim=1)[0])
        info = {"route": list(self._route), "prediction": prediction, "label": self._target, "loss": float(loss[0])}
        self._h = None
        return self._obs_terminal(), reward, True, False, info

    def _obs_terminal(self) -> ObsType:
        """The last observation repeats the last routed depth: there is no layer after it to route."""
        obs: ObsType = {"task": self.task, "depth": self._depth}
        if self.observe_hidden:
            obs["hidden"] = np.zeros(self.hidden_dim, dtype=np.float32)
        return obs

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return f"task {self.task} row {self._row} depth {self._depth} route {self._route}"
        return None

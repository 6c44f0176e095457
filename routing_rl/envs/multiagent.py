"""The whole multi-task routing problem as a PettingZoo ``ParallelEnv``: one agent per task.

Rosenbaum et al. (2018) cast routing as collaborative multi-agent RL: every task is an agent that
picks blocks in the shared network, and the agents interact because their choices decide which
tasks share (and train) which blocks. :class:`~routing_rl.envs.task_env.TaskRoutingEnv` shows one
task's view; this env shows all of them at once, so multi-agent RL libraries can be pointed at the
problem. Each episode draws one sample per task, all agents choose a block at the same routed
layer simultaneously (one ``step``), and the episode ends after the last routed layer with a reward
of +1 (right) / -1 (wrong) for each agent's own prediction (or minus its loss, ``reward="neg-loss"``).

As in the per-task env the network weights are frozen (eval mode, no gradients), so an episode is
a deterministic function of the seed and the actions. PettingZoo is an optional dependency: this
module raises an ImportError with the install command when it is missing, and nothing else in
:mod:`routing_rl` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

try:
    from pettingzoo import ParallelEnv  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "routing_rl.envs.multiagent needs PettingZoo; install it with `pip install routing-rl[multiagent]`"
    ) from exc

from routing_rl.core.contracts import RoutingDecision
from routing_rl.core.objectives import final_reward
from routing_rl.core.seeding import numpy_rng
from routing_rl.data import SingleLabelData, Suite
from routing_rl.envs.batched import hidden_summary
from routing_rl.envs.frozen import frozen_routing_problem
from routing_rl.network import RoutingNetwork

AgentID = str
ObsType = dict[str, Any]
StepResult = tuple[
    dict[AgentID, ObsType], dict[AgentID, float], dict[AgentID, bool], dict[AgentID, bool], dict[AgentID, dict[str, Any]]
]
"""``(observations, rewards, terminations, truncations, infos)``, each keyed by agent."""


def agent_name(task: int) -> AgentID:
    """The PettingZoo agent id of task ``task``: ``task_<k>``."""
    return f"task_{task}"


class MultiTaskRoutingEnv(ParallelEnv[AgentID, ObsType, np.int64]):
    """Route one sample of every task of a suite at once; agent ``task_k`` routes task ``k``.

    Observations are ``{"task": k, "depth": d}`` (plus ``"hidden"``, the summarised hidden state of
    the agent's sample padded to the widest routed input, with ``observe_hidden``); actions are
    block indices of the current routed layer. Rewards are 0 before the last layer. ``infos`` carry
    the route so far and, at the end, each agent's prediction, label and loss. Building the env
    from ``suite`` generates/loads that suite; pass ``data`` / ``network`` to reuse existing ones
    (e.g. a trained network from a run's checkpoint).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "routing_rl_multitask_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        suite: str | type[Suite] = "synthetic-groups",
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
        self.reward_kind = reward
        self.observe_hidden = observe_hidden
        self.render_mode = render_mode
        self._task_rows = [self._split.task_rows(t) for t in range(self.data.num_tasks)]
        empty = [t for t, rows in enumerate(self._task_rows) if rows.numel() == 0]
        if empty:
            raise ValueError(f"tasks {empty} have no samples in the {split} split")
        self.possible_agents = [agent_name(t) for t in range(self.data.num_tasks)]
        self.agents: list[AgentID] = []
        self.num_blocks = problem.num_blocks
        self.hidden_dim = problem.hidden_dim
        self._observation_spaces = {a: self._make_observation_space() for a in self.possible_agents}
        self._action_spaces = {a: spaces.Discrete(self.num_blocks) for a in self.possible_agents}
        self._tasks = torch.arange(self.data.num_tasks)
        self._np_random = numpy_rng(None)
        self._h: torch.Tensor | None = None
        self._depth = 0
        self._rows = torch.zeros(self.data.num_tasks, dtype=torch.long)
        self._targets = torch.zeros(self.data.num_tasks, dtype=torch.long)
        self._routes: list[list[int]] = []

    # ---- spaces ------------------------------------------------------------------------------
    def _make_observation_space(self) -> spaces.Dict:
        parts: dict[str, spaces.Space[Any]] = {
            "task": spaces.Discrete(self.data.num_tasks),
            "depth": spaces.Discrete(self.network.num_routed),
        }
        if self.observe_hidden:
            parts["hidden"] = spaces.Box(-np.inf, np.inf, (self.hidden_dim,), np.float32)
        return spaces.Dict(parts)

    def observation_space(self, agent: AgentID) -> spaces.Space[Any]:
        return self._observation_spaces[agent]

    def action_space(self, agent: AgentID) -> spaces.Space[Any]:
        return self._action_spaces[agent]

    # ---- observations ------------------------------------------------------------------------
    def _observations(self) -> dict[AgentID, ObsType]:
        hidden = self._hidden_rows() if self.observe_hidden else None
        out: dict[AgentID, ObsType] = {}
        for task, agent in enumerate(self.possible_agents):
            obs: ObsType = {"task": task, "depth": self._depth}
            if hidden is not None:
                obs["hidden"] = hidden[task]
            out[agent] = obs
        return out

    def _hidden_rows(self) -> np.ndarray:
        """``[T, hidden_dim]`` float32 summaries of every agent's hidden state (zeros after the end)."""
        padded = np.zeros((self.data.num_tasks, self.hidden_dim), dtype=np.float32)
        if self._h is not None and self._depth < self.network.num_routed:
            summary = hidden_summary(self._h).numpy().astype(np.float32)
            padded[:, : summary.shape[1]] = summary
        return padded

    # ---- the ParallelEnv API -----------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[AgentID, ObsType], dict[AgentID, dict[str, Any]]]:
        """Draw one sample per task (``options={"rows": [...]}`` picks them) and start at layer 0."""
        if seed is not None:
            self._np_random = numpy_rng(seed)
            for agent in self.possible_agents:
                self._action_spaces[agent].seed(seed)
        self._rows = self._pick_rows(options)
        x, y, _ = self._split.gather(self._rows)
        self._targets = y
        with torch.no_grad():
            self._h = self.network.begin(x, self._tasks)
        self.agents = list(self.possible_agents)
        self._depth = 0
        self._routes = [[] for _ in self.possible_agents]
        infos = {a: {"row": int(self._rows[t]), "label": int(y[t])} for t, a in enumerate(self.possible_agents)}
        return self._observations(), infos

    def _pick_rows(self, options: dict[str, Any] | None) -> torch.Tensor:
        if options and "rows" in options:
            rows = torch.as_tensor(options["rows"], dtype=torch.long)
            if rows.shape != (self.data.num_tasks,):
                raise ValueError(f"options['rows'] needs one row per task ({self.data.num_tasks})")
            return rows
        picks = [int(rows[int(self._np_random.integers(rows.numel()))]) for rows in self._task_rows]
        return torch.tensor(picks, dtype=torch.long)

    def _blocks(self, actions: dict[AgentID, Any]) -> torch.Tensor:
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"every live agent must act at once; missing actions for {missing}")
        limit = self.network.blocks_per_layer[self._depth]
        blocks = []
        for agent in self.possible_agents:
            action = actions[agent]
            if not self._action_spaces[agent].contains(action) or int(action) >= limit:
                raise ValueError(f"{agent}: action must be a block index in [0, {limit}), got {action!r}")
            blocks.append(int(action))
        return torch.tensor(blocks, dtype=torch.long)

    def step(self, actions: dict[AgentID, Any]) -> StepResult:
        if self._h is None or not self.agents:
            raise RuntimeError("call reset() before step(): the episode is over")
        blocks = self._blocks(actions)
        for route, block in zip(self._routes, blocks.tolist()):
            route.append(block)
        with torch.no_grad():
            self._h = self.network.advance(self._depth, self._h, self._tasks, RoutingDecision(blocks))
        agents = list(self.agents)
        if self._depth < self.network.num_routed - 1:
            self._depth += 1
            infos = {a: {"route": list(self._routes[t])} for t, a in enumerate(self.possible_agents)}
            flags = dict.fromkeys(agents, False)
            return self._observations(), dict.fromkeys(agents, 0.0), flags, dict(flags), infos
        return self._finish(agents)

    def _finish(self, agents: list[AgentID]) -> StepResult:
        """Score every agent's prediction, end the episode (``agents`` becomes empty)."""
        assert self._h is not None
        logits = self._h
        loss = torch.nn.functional.cross_entropy(logits, self._targets, reduction="none")
        rewards = final_reward(self.reward_kind, logits, self._targets, loss)
        predictions = logits.argmax(dim=1)
        infos = {
            a: {
                "route": list(self._routes[t]), "prediction": int(predictions[t]),
                "label": int(self._targets[t]), "loss": float(loss[t]),
            }
            for t, a in enumerate(self.possible_agents)
        }
        self._h = None
        self.agents = []
        scores = {a: float(rewards[t]) for t, a in enumerate(agents)}
        return self._observations(), scores, dict.fromkeys(agents, True), dict.fromkeys(agents, False), infos

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            routes = ", ".join(f"{a}: {r}" for a, r in zip(self.possible_agents, self._routes))
            return f"depth {self._depth} routes {routes}"
        return None

    def close(self) -> None:
        """Nothing to release: the env holds tensors only."""

    def state(self) -> np.ndarray:
        """Global state: the current depth and every agent's route so far (-1 for layers not yet routed)."""
        table = np.full((self.data.num_tasks, self.network.num_routed), -1, dtype=np.int64)
        for task, route in enumerate(self._routes):
            table[task, : len(route)] = route
        return np.concatenate([[self._depth], table.reshape(-1)])


def parallel_env(**kwargs: Any) -> MultiTaskRoutingEnv:
    """PettingZoo-style constructor: ``parallel_env(suite="synthetic-groups", routed="fc")``."""
    return MultiTaskRoutingEnv(**kwargs)


__all__ = ["MultiTaskRoutingEnv", "agent_name", "parallel_env"]

"""A mini-batch as a batch of routing episodes over one shared network (the trainer's env).

This is the vector-env idiom specialised to routing: ``reset`` starts one episode per sample,
``step`` takes one decision per sample for the current routed layer, and the episode terminates
after the last routed layer with a reward from the prediction. Unlike the per-task Gymnasium env,
it keeps the autograd graph so that the trainer can backpropagate the task loss through the blocks
that were chosen (and through soft gates, for differentiable routers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation
from routing_rl.core.objectives import ClassificationObjective, EpisodeObjective, StepReward
from routing_rl.network.model import RoutingNetwork

Policy = Callable[[RoutingObservation], RoutingDecision]


def hidden_summary(h: torch.Tensor) -> torch.Tensor:
    """A fixed-size view of a hidden state for routers that look at it: channel means for images."""
    return h.mean(dim=(2, 3)) if h.dim() == 4 else h.flatten(1)


class BatchedRoutingEnv:
    """Runs routing episodes for a batch of samples on ``network``.

    ``observe_hidden`` adds the (summarised) hidden state to observations; ``reward`` is the final
    reward kind of single-label episodes, and ``objective`` (default: cross-entropy with that
    reward) computes each episode's loss and final reward; ``step_rewards`` are added to each
    step's reward.
    """

    def __init__(
        self,
        network: RoutingNetwork,
        reward: str = "correct",
        step_rewards: Sequence[StepReward] = (),
        observe_hidden: bool = False,
        objective: EpisodeObjective | None = None,
    ) -> None:
        self.network = network
        self.objective = objective if objective is not None else ClassificationObjective(reward)
        self.step_rewards = list(step_rewards)
        self.observe_hidden = observe_hidden
        self._h: torch.Tensor | None = None
        self._tasks: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self._depth = 0

    @property
    def num_steps(self) -> int:
        return self.network.num_routed

    def _observation(self) -> RoutingObservation:
        assert self._h is not None and self._tasks is not None
        hidden = hidden_summary(self._h) if self.observe_hidden else None
        return RoutingObservation(self._tasks, self._depth, hidden)

    def reset(self, x: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor) -> RoutingObservation:
        """Start one episode per sample; returns the observation before the first routed layer."""
        if self.num_steps == 0:
            raise ValueError("the network has no routed layer; use run() for a plain network")
        self._h = self.network.begin(x, tasks)
        self._tasks, self._targets, self._depth = tasks, targets, 0
        return self._observation()

    def step(
        self, decision: RoutingDecision
    ) -> tuple[RoutingObservation | None, torch.Tensor, bool, dict[str, torch.Tensor]]:
        """Apply the current routed layer; returns ``(obs, reward, terminated, info)``.

        On the last step ``obs`` is None, ``reward`` includes the final reward, and ``info`` holds
        ``logits``, ``loss`` (per sample, attached to the graph) and ``final_reward``; every step's
        ``info["step_reward"]`` is the reward without the final term. A term scaled by the final
        reward's magnitude (``scaled_by_final``, the public code's collaboration reward) is left out
        of an earlier step's reward, which cannot know it yet, and given as
        ``info["scaled_step_reward"]``; :meth:`run` completes those rewards at the episode's end.
        """
        assert self._h is not None and self._tasks is not None and self._targets is not None
        obs = self._observation()
        reward = torch.zeros(obs.batch_size, device=self._tasks.device)
        scaled = torch.zeros_like(reward)
        for term in self.step_rewards:
            if getattr(term, "scaled_by_final", False):
                scaled = scaled + term(obs, decision)
            else:
                reward = reward + term(obs, decision)
        self._h = self.network.advance(self._depth, self._h, self._tasks, decision)
        self._depth += 1
        if self._depth < self.num_steps:
            info = {"step_reward": reward}
            if any(getattr(term, "scaled_by_final", False) for term in self.step_rewards):
                info["scaled_step_reward"] = scaled  # multiplied by |final reward| in run()
            return self._observation(), reward, False, info
        logits = self._h
        loss = self.objective.loss(logits, self._targets, self._tasks)
        final = self.objective.reward(logits, self._targets, self._tasks, loss)
        reward = reward + scaled * final.abs()
        return None, reward + final, True, {"logits": logits, "loss": loss, "step_reward": reward, "final_reward": final}

    def run(self, x: torch.Tensor, targets: torch.Tensor, tasks: torch.Tensor, policy: Policy) -> EpisodeBatch:
        """Play a whole batch of episodes with ``policy`` (usually ``router.act``) and return the trace."""
        if self.num_steps == 0:
            logits = self.network.begin(x, tasks)
            loss = self.objective.loss(logits, targets, tasks)
            final = self.objective.reward(logits, targets, tasks, loss)
            obs0 = RoutingObservation(tasks, 0)
            return EpisodeBatch([obs0], [], [], final, loss, logits, targets)
        observations, decisions = [], []
        h = self.network.begin(x, tasks)
        for depth in range(self.num_steps):
            obs = RoutingObservation(tasks, depth, hidden_summary(h) if self.observe_hidden else None)
            decision = policy(obs)
            observations.append(obs)
            decisions.append(decision)
            h = self.network.advance(depth, h, tasks, decision)
        return self.episodes(observations, decisions, h, targets, tasks)

    def episodes(self, observations: list[RoutingObservation], decisions: list[RoutingDecision], logits: torch.Tensor,
                 targets: torch.Tensor, tasks: torch.Tensor) -> EpisodeBatch:  # fmt: skip
        """The trace of episodes whose decisions were taken and whose network gave ``logits``: each
        sample's loss and final reward, and every step's reward (the step-reward terms are called
        step by step in order, as :meth:`step` calls them). A population of runs trained together
        plays its members' episodes on one network and has each member's env make its trace here."""
        loss = self.objective.loss(logits, targets, tasks)
        final = self.objective.reward(logits, targets, tasks, loss)
        magnitude = final.abs()
        rewards = []
        for obs, decision in zip(observations, decisions):
            reward = torch.zeros(obs.batch_size, device=tasks.device)
            scaled = torch.zeros_like(reward)
            for term in self.step_rewards:
                if getattr(term, "scaled_by_final", False):  # the public code's collaboration reward: known only now
                    scaled = scaled + term(obs, decision)
                else:
                    reward = reward + term(obs, decision)
            rewards.append(reward + scaled * magnitude if any(getattr(t, "scaled_by_final", False) for t in self.step_rewards) else reward)
        return EpisodeBatch(observations, decisions, rewards, final, loss, logits, targets)

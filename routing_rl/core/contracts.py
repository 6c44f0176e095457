"""The contracts between the floors: what agents, networks, envs, models and the trainer hand each other.

These are plain data, with no behaviour beyond a few derived properties, so every floor of the
package imports them from here and none has to import a floor above it to speak to another:

* :class:`RoutingDecision`: a router's choice at one routed layer (hard or soft routing), read by
  the routed layer's dispatch;
* :class:`RoutingObservation` and :class:`EpisodeBatch`: what the batched routing env shows a
  router and hands back after a batch of episodes;
* :class:`Batch` and :class:`SplitScore`: a mini-batch as the trainer feeds it, and the per-task
  scores of one split as the results record keeps them;
* :func:`metric_label`: how tables and figures print a metric's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class RoutingDecision:
    """Which block(s) each sample goes through at one routed layer.

    Hard routing: ``blocks`` is ``[B]`` (one block per sample) and ``weights`` is None.
    Soft routing (differentiable gates): ``blocks`` is ``[B, K]`` and ``weights`` is ``[B, K]``;
    the layer output is ``sum_k weights[b, k] * block_{blocks[b, k]}(x_b)`` and pairs whose
    weight is exactly zero are skipped. ``log_probs`` (``[B]``) is filled by stochastic routers.
    """

    blocks: torch.Tensor
    weights: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None

    @property
    def is_hard(self) -> bool:
        return self.weights is None


@dataclass
class RoutingObservation:
    """What a router sees before routed layer ``depth``: the task of each sample (and its hidden state)."""

    task_ids: torch.Tensor
    depth: int
    hidden: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.task_ids.shape[0])


@dataclass
class EpisodeBatch:
    """A finished batch of routing episodes: one per sample, one step per routed layer.

    ``step_rewards[d]`` is the per-sample reward of step ``d`` (collaboration rewards and the
    like; zeros when none are configured); ``final_reward`` arrives after the last step and is
    computed from the prediction. ``loss`` is the per-sample task loss, still attached to the graph.
    """

    observations: list[RoutingObservation]
    decisions: list[RoutingDecision]
    step_rewards: list[torch.Tensor]
    final_reward: torch.Tensor
    loss: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    info: dict[str, object] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return len(self.decisions)

    @property
    def task_ids(self) -> torch.Tensor:
        return self.observations[0].task_ids

    def returns(self, discount: float = 1.0) -> list[torch.Tensor]:
        """Discounted return from each step: G_d = sum_{k>=d} discount^(k-d) r_k + discount^(L-1-d) R_final."""
        running = self.final_reward.detach()
        out: list[torch.Tensor] = [running] * self.num_steps
        for d in reversed(range(self.num_steps)):
            if d < self.num_steps - 1:
                running = running * discount
            running = self.step_rewards[d].detach() + running
            out[d] = running
        return out


@dataclass
class Batch:
    """One mini-batch: inputs, targets, and the task of each row (None: every example has every task)."""

    x: Tensor
    y: Tensor
    tasks: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


@dataclass
class SplitScore:
    """Per-task scores of one split. ``mean`` averages the tasks uniformly (macro); ``micro`` weights
    them by ``counts`` (rows of the task; MAP: examples with a positive in it; MSE: output entries);
    ``loss`` is the mean training loss per example (without regularisation)."""

    metric: str
    per_task: list[float]
    mean: float
    micro: float
    loss: float
    examples: int
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_label(metric: str) -> str:
    """How tables and figures print a metric name: ``MAP@10``, ``MSE``, ``accuracy``."""
    return metric.upper() if metric.startswith(("map", "mse")) else metric

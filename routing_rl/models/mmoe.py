"""MMoE: a shared FC layer, then experts mixed by one softmax gate per task (Ma et al. 2018, KDD).

SNR paper, section "Methods": "One fully-connected hidden layer followed by a MMoE layer with 8
experts, each expert being a one-layer fully-connected sub-network. [...] The gating networks are
linear transformations". Task ``t`` reads ``f_t(h) = sum_e g_t(h)_e E_e(h)`` with
``g_t(h) = softmax(G_t h)``, where ``h`` is the output of the shared layer (the MMoE layer's input,
as in the MMoE paper where gates read the layer's input).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import ParallelDense, TaskTowers


class MMoE(MultiTaskModel):
    """Shared FC(``shared_hidden``) + ReLU, ``num_experts`` FC(``expert_hidden``) + ReLU experts,
    a linear softmax gate per task over the experts, then the towers."""

    name = "mmoe"
    description = "MMoE: shared FC layer + multi-gate mixture of experts (Ma et al. 2018)"
    option_help = {
        "shared_hidden": "units of the shared FC layer before the experts",
        "expert_hidden": "units of each expert",
        "num_experts": "number of experts",
    }

    def __init__(
        self,
        input_dim: int,
        labels_per_task: Sequence[int],
        shared_hidden: int = 128,
        expert_hidden: int = 32,
        num_experts: int = 8,
        tower_hidden: int = 16,
    ) -> None:
        super().__init__(input_dim, labels_per_task, tower_hidden)
        if shared_hidden <= 0 or expert_hidden <= 0 or num_experts <= 0:
            raise ValueError(f"sizes must be positive, got {shared_hidden=}, {expert_hidden=}, {num_experts=}")
        self.num_experts = num_experts
        self.shared = nn.Sequential(nn.Linear(self.input_dim, shared_hidden), nn.ReLU())
        self.experts = ParallelDense(num_experts, shared_hidden, expert_hidden)
        self.gate = nn.Linear(shared_hidden, self.num_tasks * num_experts)
        self.towers = TaskTowers(expert_hidden, self.labels_per_task, tower_hidden)

    def gate_weights(self, h: Tensor) -> Tensor:
        """Softmax gates ``[B, T, num_experts]`` for shared-layer outputs ``h``."""
        return F.softmax(self.gate(h).view(h.shape[0], self.num_tasks, self.num_experts), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.shared(x)
        mixed = torch.einsum("bte,bed->btd", self.gate_weights(h), self.experts(h))
        return self.towers(mixed)

    def utilization(self, x: Tensor | None = None) -> np.ndarray | None:
        """Mean gate weight of each expert per task over the batch ``x`` (``[T, num_experts]``)."""
        if x is None:
            return None
        with torch.no_grad():
            return self.gate_weights(self.shared(x)).mean(dim=0).cpu().numpy()

"""ML-MMoE: two stacked MMoE layers whose gates all read the model input (SNR paper, "Methods").

"This model extends MMoE by adding multiple layers of sub-networks. [...] Each higher-level
sub-network can be viewed as an internal task. All the gating networks share the same input,
which is the input of the whole model." So: ``E1`` first-layer experts read ``x``; second-layer
expert ``k`` reads ``sum_e softmax(G1_k x)_e E1_e(x)``; task ``t`` reads
``sum_k softmax(G2_t x)_k E2_k(.)``; then the towers. The paper notes this model trained worst,
plausibly because the input is a poor signal for routing higher layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import ParallelDense, TaskTowers


class MLMMoE(MultiTaskModel):
    """Two MMoE layers of ``num_experts`` one-layer FC+ReLU experts (sizes ``hidden_sizes``)."""

    name = "ml-mmoe"
    description = "ML-MMoE: two stacked MMoE layers, every gate fed by the model input"
    option_help = {
        "hidden_sizes": "units of the experts of the two layers",
        "num_experts": "experts per layer (one number, or one per layer)",
    }

    def __init__(
        self,
        input_dim: int,
        labels_per_task: Sequence[int],
        hidden_sizes: Sequence[int] = (32, 32),
        num_experts: int | Sequence[int] = 8,
        tower_hidden: int = 16,
    ) -> None:
        super().__init__(input_dim, labels_per_task, tower_hidden)
        sizes = [int(h) for h in hidden_sizes]
        experts = [num_experts, num_experts] if isinstance(num_experts, int) else [int(n) for n in num_experts]
        if len(sizes) != 2 or len(experts) != 2 or min(sizes + experts) <= 0:
            raise ValueError(f"need two positive hidden sizes and expert counts, got {hidden_sizes}, {num_experts}")
        self.hidden_sizes = sizes
        self.num_experts = experts
        self.experts1 = ParallelDense(experts[0], self.input_dim, sizes[0])
        self.experts2 = ParallelDense(experts[1], sizes[0], sizes[1])
        self.gate1 = nn.Linear(self.input_dim, experts[1] * experts[0])
        self.gate2 = nn.Linear(self.input_dim, self.num_tasks * experts[1])
        self.towers = TaskTowers(sizes[1], self.labels_per_task, tower_hidden)

    def gate_weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Softmax gates: layer 1 ``[B, E2, E1]`` (one per second-layer expert), layer 2 ``[B, T, E2]``."""
        b = x.shape[0]
        g1 = F.softmax(self.gate1(x).view(b, self.num_experts[1], self.num_experts[0]), dim=-1)
        g2 = F.softmax(self.gate2(x).view(b, self.num_tasks, self.num_experts[1]), dim=-1)
        return g1, g2

    def forward(self, x: Tensor) -> Tensor:
        g1, g2 = self.gate_weights(x)
        inner = torch.einsum("bke,bed->bkd", g1, self.experts1(x))
        mixed = torch.einsum("btk,bkd->btd", g2, self.experts2(inner))
        return self.towers(mixed)

    def utilization(self, x: Tensor | None = None) -> np.ndarray | None:
        """Mean task-gate weight of each second-layer expert over the batch ``x`` (``[T, E2]``)."""
        if x is None:
            return None
        with torch.no_grad():
            return self.gate_weights(x)[1].mean(dim=0).cpu().numpy()

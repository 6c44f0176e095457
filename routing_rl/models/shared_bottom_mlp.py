"""Shared-Bottom (SB): the classic multi-task network, the baseline of the SNR paper (Figure 1(a)).

Shared part: "Two fully-connected hidden layers with the hidden layer sizes as hyper-parameters"
(SNR paper, section "Methods"), then one tower per task. It is named ``shared-bottom-mlp`` so it
does not clash with the router named ``shared-bottom`` of the routing toolkit.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import TaskTowers


class SharedBottomMLP(MultiTaskModel):
    """Two shared FC+ReLU layers of sizes ``hidden_sizes`` feeding every task's tower."""

    name = "shared-bottom-mlp"
    description = "Shared-Bottom: two shared FC layers + per-task towers (Caruana 1998)"
    option_help = {"hidden_sizes": "units of the shared FC layers"}

    def __init__(
        self,
        input_dim: int,
        labels_per_task: Sequence[int],
        hidden_sizes: Sequence[int] = (128, 64),
        tower_hidden: int = 16,
    ) -> None:
        super().__init__(input_dim, labels_per_task, tower_hidden)
        sizes = [int(h) for h in hidden_sizes]
        if not sizes or min(sizes) <= 0:
            raise ValueError(f"hidden_sizes must be positive sizes, got {list(hidden_sizes)}")
        self.hidden_sizes = sizes
        layers: list[nn.Module] = []
        width = self.input_dim
        for h in sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.shared = nn.Sequential(*layers)
        self.towers = TaskTowers(width, self.labels_per_task, tower_hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.towers(self.shared(x))

"""What SNR-Trans and SNR-Aver share: the bottom sub-networks, the hard-concrete coding variables
between layers, the L0 penalty, serving gates and per-task utilisation.

The two models differ only in what a connection carries (``z_ij W_ij u_j`` or ``z_ij u_j``) and in
how they are pruned, so each subclass builds its connection layers and the task towers and
implements ``forward`` and ``serving_model``. This class is not registered (it has no ``name``).
"""

from __future__ import annotations

from collections.abc import Sequence
from abc import abstractmethod
from typing import ClassVar
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import ParallelDense
from routing_rl.models.snr_graph import check_layer_sizes, task_reachability
from routing_rl.network.hard_concrete import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    DEFAULT_LOG_ALPHA_INIT,
    DEFAULT_ZETA,
    HardConcreteGate,
)


class SNRModel(MultiTaskModel):
    """The layered sub-network graph with one :class:`HardConcreteGate` matrix per routing layer."""

    option_help: ClassVar[dict[str, str]] = {
        "num_subnetworks": "sub-networks per layer (one number for all layers, or one per layer, e.g. 4,4)",
        "hidden_sizes": "units of the sub-networks, one per sub-network layer (e.g. 64,32)",
        "l0_lambda": "weight of the expected-L0 penalty on the coding variables",
        "beta": "hard concrete temperature",
        "gamma": "lower end of the stretched interval (< 0)",
        "zeta": "upper end of the stretched interval (> 1)",
        "log_alpha_init": "initial gate logit (larger: connections start open)",
        "per_example_gates": "draw gate noise per example instead of once per mini-batch",
    }

    def __init__(
        self,
        input_dim: int,
        labels_per_task: Sequence[int],
        num_subnetworks: int | Sequence[int] = 4,
        hidden_sizes: int | Sequence[int] = (64, 32),
        tower_hidden: int = 16,
        l0_lambda: float = 1e-5,
        beta: float = DEFAULT_BETA,
        gamma: float = DEFAULT_GAMMA,
        zeta: float = DEFAULT_ZETA,
        log_alpha_init: float = DEFAULT_LOG_ALPHA_INIT,
        per_example_gates: bool = False,
        gate_generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(input_dim, labels_per_task, tower_hidden)
        if l0_lambda < 0:
            raise ValueError(f"l0_lambda must be >= 0, got {l0_lambda}")
        counts, sizes = check_layer_sizes(num_subnetworks, hidden_sizes)
        self.layer_counts = [*counts, self.num_tasks]
        self.hidden_sizes = sizes
        self.l0_lambda = float(l0_lambda)
        self.per_example_gates = per_example_gates
        self.bottom = ParallelDense(counts[0], self.input_dim, sizes[0])
        self.gates = nn.ModuleList(
            HardConcreteGate(
                (self.layer_counts[layer + 1], self.layer_counts[layer]),
                beta, gamma, zeta, log_alpha_init, generator=gate_generator,
            )
            for layer in range(len(counts))
        )
        self.build_connections(tower_hidden)

    @abstractmethod
    def build_connections(self, tower_hidden: int) -> None:
        """The model's connection layers between the sub-network layers (``self.layer_counts``,
        ``self.hidden_sizes``) and its task towers; called once the bottom and the gates exist, so
        that every parameter is drawn in the same order."""

    def sample_gates(self, gate: nn.Module, batch_size: int) -> Tensor:
        """Coding variables of one layer: one sample per mini-batch, or per example if configured."""
        return gate(batch_size=batch_size if self.per_example_gates else None)

    def gate_modules(self) -> list[HardConcreteGate]:
        """The routing layers' gates, bottom layer first (a typed view of ``self.gates``)."""
        return [cast(HardConcreteGate, g) for g in self.gates]

    def regularization(self) -> Tensor:
        """``lambda * sum_l E||z_l||_0`` (SNR paper, "Applying L0 Regularization on Latent Variables")."""
        return self.l0_lambda * self.expected_l0()

    def expected_l0(self) -> Tensor:
        """Expected number of open connections over all routing layers."""
        return torch.stack([g.expected_l0() for g in self.gate_modules()]).sum()

    def serving_gates(self) -> list[Tensor]:
        """``z_hat`` of each routing layer, ``[n_{layer+1}, n_l]``, detached."""
        return [g.serving_gates().detach() for g in self.gate_modules()]

    def utilization(self, x: Tensor | None = None) -> np.ndarray:
        """``[T, sum_l n_l]``: 1 where a task reaches a sub-network through non-zero serving gates."""
        return task_reachability([g.serving_mask() for g in self.gate_modules()])

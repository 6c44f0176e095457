"""The serving form of SNR-Aver: whole sub-networks removed where no open gate reads them.

SNR paper, "Additional Details of Model Training and Serving": "To reduce serving model parameter
size in SNR-Aver model, we need to remove at least a whole sub-network from the model, which means
we need to have ``z_hat_ij = 0`` for all ``i`` to eliminate the ``j``th sub-network." The averaging
weights become the constants ``z_hat`` (a buffer: coding variables, not trained parameters, and
not counted as parameters). Outputs equal the gated model's eval-mode outputs.
"""

from __future__ import annotations

import copy
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import ParallelDense
from routing_rl.models.snr_base import SNRModel
from routing_rl.models.snr_graph import alive_subnetworks, task_reachability


class SNRAverServing(MultiTaskModel):
    """A pruned SNR-Aver with fixed averaging weights, built from a trained :class:`SNRAver`.

    ``kept_subnetworks[l]`` lists the original indices of the sub-networks kept in layer ``l``.
    """

    def __init__(self, source: SNRModel, uppers: nn.ModuleList) -> None:
        """``source`` is the trained SNR-Aver (its gates, bottom and towers), ``uppers`` its routing
        layers' sub-networks (given apart so this module needs only the SNR base)."""
        super().__init__(source.input_dim, source.labels_per_task, source.tower_hidden)
        masks = [g.serving_mask().cpu() for g in source.gate_modules()]
        z_hats = source.serving_gates()
        alive = alive_subnetworks(masks)
        self.hidden_sizes = list(source.hidden_sizes)
        self.full_masks = masks
        self.kept_subnetworks = [torch.nonzero(a).flatten().tolist() for a in alive]
        self.bottom = source.bottom.subset(self.kept_subnetworks[0]) if self.kept_subnetworks[0] else None
        self.uppers = nn.ModuleList()
        for layer, upper in enumerate(uppers):
            lows, ups = self.kept_subnetworks[layer], self.kept_subnetworks[layer + 1]
            # A middle layer may lose every sub-network; nn.Identity marks it (its output is empty).
            self.uppers.append(cast(ParallelDense, upper).subset(ups) if ups else nn.Identity())
            weights = z_hats[layer].cpu()[ups][:, lows] if lows else torch.zeros(len(ups), 0)
            self.register_buffer(f"z_hat_{layer}", weights.clone().to(z_hats[layer].device))
        self.towers = copy.deepcopy(source.towers)

    def averaging_weights(self) -> list[Tensor]:
        """The fixed ``z_hat`` of each routing layer restricted to the kept sub-networks."""
        return [getattr(self, f"z_hat_{layer}") for layer in range(len(self.uppers))]

    def forward(self, x: Tensor) -> Tensor:
        if self.bottom is not None:
            u = self.bottom(x)
        else:
            u = x.new_zeros(x.shape[0], 0, self.hidden_sizes[0])
        for layer, (upper, z) in enumerate(zip(self.uppers, self.averaging_weights())):
            if isinstance(upper, nn.Identity):
                u = x.new_zeros(x.shape[0], 0, self.hidden_sizes[layer + 1])
            else:
                u = upper(torch.einsum("bjd,ij->bid", u, z))
        return self.towers(u)

    def serving_model(self) -> MultiTaskModel:
        """Already pruned: returns an eval-mode copy."""
        return copy.deepcopy(self).eval()

    def utilization(self, x: Tensor | None = None) -> np.ndarray:
        """Same as the source model's: reachability of the original sub-networks by task."""
        return task_reachability(self.full_masks)

"""The serving form of SNR-Trans: only the transformation matrices whose gate is open are kept.

SNR paper, "Additional Details of Model Training and Serving": at serving time
``z_hat = min(1, max(0, sigmoid(log alpha)(zeta - gamma) + gamma))`` and "any ``z_hat_ij = 0``
will eliminate the corresponding ``W_ij`` from the model". This module stores the surviving
``z_hat_ij W_ij`` as separate parameters (so a parameter count is the serving size), drops
sub-networks that no surviving connection reads (with their weights), and has no gates left.
Its outputs equal the gated model's eval-mode outputs.
"""

from __future__ import annotations

import copy
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.snr_base import SNRModel
from routing_rl.models.snr_graph import alive_subnetworks, task_reachability


class SNRTransServing(MultiTaskModel):
    """A pruned, gate-free SNR-Trans built from a trained :class:`SNRTrans` (not registered).

    ``kept_connections[l]`` lists the ``(i, j)`` pairs (indices of the original model) whose
    ``W_ij`` survived in routing layer ``l``; ``kept_subnetworks[l]`` the original indices of the
    sub-networks kept in layer ``l`` (the task layer always keeps all ``T``).
    """

    def __init__(self, source: SNRModel, transforms: nn.ParameterList, biases: nn.ParameterList) -> None:
        """``source`` is the trained SNR-Trans (its gates, bottom and towers), ``transforms`` and
        ``biases`` its per-layer ``W_ij`` and biases (given apart so this module needs only the SNR base)."""
        super().__init__(source.input_dim, source.labels_per_task, source.tower_hidden)
        masks = [g.serving_mask().cpu() for g in source.gate_modules()]
        z_hats = source.serving_gates()
        alive = alive_subnetworks(masks)
        self.hidden_sizes = list(source.hidden_sizes)
        self.kept_subnetworks = [torch.nonzero(a).flatten().tolist() for a in alive]
        self.full_masks = masks
        self.bottom = source.bottom.subset(self.kept_subnetworks[0]) if self.kept_subnetworks[0] else None
        self.weights = nn.ModuleList()
        self.biases = nn.ParameterList()
        self.kept_connections: list[list[tuple[int, int]]] = []
        self.local_connections: list[list[tuple[int, int]]] = []
        for layer, mask in enumerate(masks):
            self._keep_layer(layer, mask, z_hats[layer], transforms[layer], biases[layer])
        self.towers = copy.deepcopy(source.towers)

    def _keep_layer(self, layer: int, mask: Tensor, z_hat: Tensor, W: Tensor, bias: Tensor) -> None:
        """Store ``z_hat_ij W_ij`` for each open edge between the kept sub-networks of ``layer`` and ``layer + 1``."""
        lows, ups = self.kept_subnetworks[layer], self.kept_subnetworks[layer + 1]
        kept: list[tuple[int, int]] = []
        local: list[tuple[int, int]] = []
        params = nn.ParameterList()
        for i_new, i in enumerate(ups):
            for j_new, j in enumerate(lows):
                if bool(mask[i, j]):
                    params.append(nn.Parameter((z_hat[i, j] * W[i, j]).detach().clone()))
                    kept.append((i, j))
                    local.append((i_new, j_new))
        self.weights.append(params)
        self.biases.append(nn.Parameter(bias.detach()[ups].clone()))
        self.kept_connections.append(kept)
        self.local_connections.append(local)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        if self.bottom is not None:
            u = self.bottom(x)
        else:
            u = x.new_zeros(batch, 0, self.hidden_sizes[0])
        for k, (bias, local) in enumerate(zip(self.biases, self.local_connections)):
            params = cast(nn.ParameterList, self.weights[k])
            v = bias.unsqueeze(0).expand(batch, -1, -1).clone()
            for W, (i, j) in zip(params, local):
                v[:, i] = v[:, i] + u[:, j] @ W
            u = F.relu(v)
        return self.towers(u)

    def serving_model(self) -> MultiTaskModel:
        """Already pruned: returns an eval-mode copy."""
        return copy.deepcopy(self).eval()

    def utilization(self, x: Tensor | None = None) -> np.ndarray:
        """Same as the source model's: reachability of the original sub-networks by task."""
        return task_reachability(self.full_masks)

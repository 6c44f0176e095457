"""SNR-Aver: sub-networks connected by gated identity maps, a weighted sum (SNR paper, Figure 1(c)).

The input of upper sub-network ``i`` is (SNR paper, section "Sub-Network Modularization and
Routing")::

    v_i = sum_j z_ij I u_j

so the connections carry no parameters and, at equal model size, SNR-Aver spends its budget on
the sub-networks themselves: every sub-network is a one-layer FC+ReLU network (section
"Methods"). Layout: ``n_0`` bottom sub-networks read the model input; each routing layer's
sub-network ``i`` applies FC+ReLU to ``v_i``; the last routing layer has one sub-network per task,
feeding that task's tower. Because the sum is unnormalised the lower sub-networks of a layer must
all have the same output size.

Pruning can only remove a whole sub-network, and only when all its outgoing ``z_hat_ij`` are 0
(section "Additional Details of Model Training and Serving").
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import ParallelDense, TaskTowers
from routing_rl.models.snr_base import SNRModel
from routing_rl.models.snr_aver_serving import SNRAverServing


class SNRAver(SNRModel):
    """Sub-Network Routing with gated (unnormalised) averages of lower sub-network outputs.

    Arguments as :class:`~routing_rl.models.snr_trans.SNRTrans`: ``num_subnetworks`` counts the
    sub-networks of each layer below the task layer, ``hidden_sizes`` gives one sub-network's
    output size per layer including the task layer.
    """

    name = "snr-aver"
    description = "SNR-Aver: sub-networks joined by gated sums z_ij u_j (Ma et al.)"

    def build_connections(self, tower_hidden: int) -> None:
        """One FC+ReLU sub-network per upper sub-network (it reads the gated sum of the layer below), then the towers."""
        counts, sizes = self.layer_counts[:-1], self.hidden_sizes
        self.uppers = nn.ModuleList(
            ParallelDense(self.layer_counts[layer + 1], sizes[layer], sizes[layer + 1]) for layer in range(len(counts))
        )
        self.towers = TaskTowers(sizes[-1], self.labels_per_task, tower_hidden)

    def forward(self, x: Tensor) -> Tensor:
        u = self.bottom(x)
        for upper, gate in zip(self.uppers, self.gates):
            u = upper(self.route(u, self.sample_gates(gate, x.shape[0])))
        return self.towers(u)

    @staticmethod
    def route(u: Tensor, z: Tensor) -> Tensor:
        """``v_i = sum_j z_ij u_j``: u ``[B, n_low, h]``, z ``[n_up, n_low]`` or ``[B, n_up, n_low]``."""
        if z.dim() == 2:
            return torch.einsum("bjd,ij->bid", u, z)
        return torch.einsum("bjd,bij->bid", u, z)

    def serving_model(self) -> MultiTaskModel:
        """Pruned copy: sub-networks whose outgoing ``z_hat`` are all 0 removed, gates fixed to ``z_hat``."""
        return SNRAverServing(self, self.uppers).to(self.bottom.weight.device).eval()

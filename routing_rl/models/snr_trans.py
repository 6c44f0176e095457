"""SNR-Trans: sub-networks connected by gated transformation matrices (SNR paper, Figure 1(b)).

The shared part of a shared-bottom network is split into layers of parallel sub-networks, and the
input ``v_i`` of upper sub-network ``i`` is (SNR paper, section "Sub-Network Modularization and
Routing")::

    v_i = sum_j z_ij W_ij u_j

where ``u_j`` is the output of lower sub-network ``j``, ``W_ij`` a learned transformation matrix
and ``z_ij`` a hard concrete coding variable. Layout here: the bottom layer is ``n_0`` FC+ReLU
sub-networks reading the model input; each routing layer computes ``ReLU(sum_j z_ij W_ij u_j +
b_i)``; the last routing layer has one sub-network per task, which feeds that task's tower (FC 16
+ ReLU + FC C_t, section "Methods"). ``num_subnetworks=(n0, n1)`` stacks two routing layers.

"Shared part: Two subsequent transformation layers" (section "Methods") is read as the default's
two weight layers: the bottom sub-networks' weights on the input, then the gated matrices
``z_ij W_ij`` into the task sub-networks. That is the depth every model of the comparison has,
and what its Figure 3 varies: "the total hidden size of the first shared layer ... and of the
second shared layer" (here ``n_0 * hidden_sizes[0]`` and ``T * hidden_sizes[1]``), as in
Shared-Bottom's two hidden layers, MMoE's shared layer and expert layer, ML-MMoE's "two subsequent
MMoE layers" and SNR-Aver's "two subsequent sub-network layers" (its bottom and task
sub-networks). Two gated layers, ``num_subnetworks=(4, 4)`` with three ``hidden_sizes``, would
give SNR-Trans a third shared layer that no other model of the paper has.

The loss adds ``lambda * E||z||_0`` (:meth:`regularization`). At serving time every ``W_ij`` with
``z_hat_ij == 0`` is removed (:meth:`serving_model`), which is why SNR-Trans can shrink its
serving size more easily than SNR-Aver.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import TaskTowers, uniform_fan_in_
from routing_rl.models.snr_base import SNRModel
from routing_rl.models.snr_trans_serving import SNRTransServing


class SNRTrans(SNRModel):
    """Sub-Network Routing with transformation matrices and L0-regularised hard concrete gates.

    ``num_subnetworks``: sub-network counts of the layers below the task layer (bottom first).
    ``hidden_sizes``: output size of one sub-network per layer, task layer included (so the
    transformation ``W_ij`` of routing layer ``l`` is ``hidden_sizes[l] x hidden_sizes[l+1]``).
    ``l0_lambda``: weight of the expected-L0 penalty (the paper grid-searches 1e-3, 1e-4, 1e-5;
    1e-5 gave dense, 1e-4 sparse architectures). ``per_example_gates``: one gate sample per
    example instead of one per mini-batch (the paper's choice).
    """

    name = "snr-trans"
    description = "SNR-Trans: sub-networks joined by gated transformation matrices z_ij W_ij (Ma et al.)"

    def build_connections(self, tower_hidden: int) -> None:
        """One transformation ``W_ij`` (and a bias per upper sub-network) for every pair of adjacent layers, then the towers."""
        counts, sizes = self.layer_counts[:-1], self.hidden_sizes
        self.transforms = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer in range(len(counts)):
            n_low, n_up, h_low, h_up = (
                self.layer_counts[layer],
                self.layer_counts[layer + 1],
                sizes[layer],
                sizes[layer + 1],
            )
            fan_in = n_low * h_low
            self.transforms.append(nn.Parameter(uniform_fan_in_(torch.empty(n_up, n_low, h_low, h_up), fan_in)))
            self.biases.append(nn.Parameter(uniform_fan_in_(torch.empty(n_up, h_up), fan_in)))
        self.towers = TaskTowers(sizes[-1], self.labels_per_task, tower_hidden)

    def forward(self, x: Tensor) -> Tensor:
        u = self.bottom(x)
        for W, b, gate in zip(self.transforms, self.biases, self.gates):
            u = F.relu(self.route(u, W, self.sample_gates(gate, x.shape[0])) + b)
        return self.towers(u)

    @staticmethod
    def route(u: Tensor, W: Tensor, z: Tensor) -> Tensor:
        """``v_i = sum_j z_ij W_ij u_j``: u ``[B, n_low, h_low]``, W ``[n_up, n_low, h_low, h_up]``,
        z ``[n_up, n_low]`` or per example ``[B, n_up, n_low]``; returns ``[B, n_up, h_up]``."""
        if z.dim() == 2:
            return torch.einsum("bjd,ijdh->bih", u, W * z[:, :, None, None])
        per_pair = torch.einsum("bjd,ijdh->bijh", u, W)
        return (per_pair * z.unsqueeze(-1)).sum(dim=2)

    def serving_model(self) -> MultiTaskModel:
        """Pruned copy: ``W_ij`` with ``z_hat_ij == 0`` removed, the other ``z_hat_ij`` folded into ``W_ij``."""
        return SNRTransServing(self, self.transforms, self.biases).to(self.bottom.weight.device).eval()

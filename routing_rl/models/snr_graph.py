"""Graph bookkeeping for SNR models: which sub-networks survive pruning and which tasks use them.

An SNR model is a layered graph: sub-network layers ``0 .. L-1`` and a top layer of ``T`` task
sub-networks, with a gate matrix ``z_l`` of shape ``[n_{l+1}, n_l]`` between layer ``l`` and
``l + 1``. At serving time an edge exists iff ``z_hat_ij != 0`` (SNR paper, "Additional Details of
Model Training and Serving"). A sub-network whose outgoing edges all lead nowhere is never read and
can be removed with everything feeding it; that is the SNR-Aver pruning rule ("``z_hat_ij = 0``
for all ``i`` to eliminate the ``j``th sub-network"), applied layer by layer from the top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def check_layer_sizes(
    num_subnetworks: int | Sequence[int], hidden_sizes: int | Sequence[int]
) -> tuple[list[int], list[int]]:
    """Normalise ``(num_subnetworks, hidden_sizes)`` and check that they describe the same layers.

    ``num_subnetworks`` lists the sub-network counts of the layers below the task layer (bottom
    first); ``hidden_sizes`` the output size of one sub-network in each layer *including* the task
    layer, so it has one more entry.
    """
    counts = [num_subnetworks] if isinstance(num_subnetworks, int) else [int(n) for n in num_subnetworks]
    sizes = [hidden_sizes] if isinstance(hidden_sizes, int) else [int(h) for h in hidden_sizes]
    if not counts or min(counts) <= 0:
        raise ValueError(f"num_subnetworks must be positive counts, bottom layer first, got {num_subnetworks}")
    if len(sizes) != len(counts) + 1:
        raise ValueError(
            f"hidden_sizes needs one size per sub-network layer plus one for the task layer "
            f"({len(counts) + 1} values), got {list(sizes)}"
        )
    if min(sizes) <= 0:
        raise ValueError(f"hidden_sizes must be positive, got {list(sizes)}")
    return counts, sizes


def alive_subnetworks(masks: Sequence[Tensor]) -> list[Tensor]:
    """``alive[l]`` (bool ``[n_l]``) for layers ``0 .. L``; the task layer ``L`` is always alive.

    ``masks[l]`` is the bool serving mask ``[n_{l+1}, n_l]`` of the gates from layer ``l`` to
    ``l + 1``. Sub-network ``j`` of layer ``l`` is alive iff an alive sub-network of layer ``l + 1``
    reads it through a non-zero gate.
    """
    alive: list[Tensor] = [torch.ones(masks[-1].shape[0], dtype=torch.bool)]
    for mask in reversed(masks):
        alive.insert(0, (mask.cpu() & alive[0].unsqueeze(1)).any(dim=0))
    return alive


def task_reachability(masks: Sequence[Tensor]) -> np.ndarray:
    """``[T, sum_{l<L} n_l]`` float 0/1: 1 where task ``t`` reads sub-network ``j`` through some path.

    Columns enumerate the sub-networks layer by layer, bottom layer first. The row mean is the
    "relative proportion of sub-networks utilized" by a task (SNR paper, Figure 5).
    """
    reach = torch.eye(masks[-1].shape[0], dtype=torch.float32)  # as the masks are read, whatever the default dtype
    columns: list[Tensor] = []
    for mask in reversed(masks):
        reach = ((reach @ mask.cpu().float()) > 0).float()
        columns.insert(0, reach)
    return torch.cat(columns, dim=1).numpy()

"""Building blocks shared by the multi-task models: parallel sub-networks and per-task towers.

Every model of the SNR paper (section "Methods") differs only in its shared low-level part and
ends in the same task-specific part, "a one-layer fully-connected hidden layer with hidden size 16
for each task", so the towers live here once. Sub-networks (SNR) and experts (MMoE) are both "n
parallel one-layer FC+ReLU networks"; :class:`ParallelDense` computes all of them in one einsum
instead of a Python loop over modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def uniform_fan_in_(tensor: Tensor, fan_in: int) -> Tensor:
    """In-place U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the scale ``nn.Linear`` uses by default."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class ParallelDense(nn.Module):
    """``n`` independent one-layer FC sub-networks ``u_j = act(x_j A_j + a_j)`` evaluated together.

    The input is either one tensor ``[B, d_in]`` fed to every sub-network (the bottom layer of SNR,
    MMoE experts) or one input per sub-network ``[B, n, d_in]`` (upper SNR-Aver sub-networks,
    second-layer ML-MMoE experts). The output is ``[B, n, d_out]``.
    """

    def __init__(self, num: int, in_features: int, out_features: int, activation: bool = True) -> None:
        super().__init__()
        if num <= 0 or in_features <= 0 or out_features <= 0:
            raise ValueError(f"ParallelDense sizes must be positive, got {num=}, {in_features=}, {out_features=}")
        self.num = num
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(uniform_fan_in_(torch.empty(num, in_features, out_features), in_features))
        self.bias = nn.Parameter(uniform_fan_in_(torch.empty(num, out_features), in_features))

    def extra_repr(self) -> str:
        return f"num={self.num}, in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            out = torch.einsum("bd,ndh->bnh", x, self.weight)
        elif x.dim() == 3 and x.shape[1] == self.num:
            out = torch.einsum("bnd,ndh->bnh", x, self.weight)
        else:
            raise ValueError(
                f"expected input [B, {self.in_features}] or [B, {self.num}, {self.in_features}], got {tuple(x.shape)}"
            )
        out = out + self.bias
        return F.relu(out) if self.activation else out

    def subset(self, keep: Sequence[int] | Tensor) -> ParallelDense:
        """A copy holding only the sub-networks ``keep`` (in that order); used when pruning."""
        idx = torch.as_tensor(keep, dtype=torch.long)
        if idx.numel() == 0:
            raise ValueError("cannot keep zero sub-networks")
        out = ParallelDense(int(idx.numel()), self.in_features, self.out_features, self.activation)
        out = out.to(device=self.weight.device, dtype=self.weight.dtype)
        idx = idx.to(self.weight.device)
        with torch.no_grad():
            out.weight.copy_(self.weight[idx])
            out.bias.copy_(self.bias[idx])
        return out


class TaskTowers(nn.Module):
    """One tower per task: FC(``in_features`` -> ``hidden``) + ReLU, then FC(``hidden`` -> C_t).

    Input ``[B, in_features]`` (the same representation for every task, shared-bottom) or
    ``[B, T, in_features]`` (one representation per task). Output ``[B, T, C_max]``: task ``t``
    fills its first ``labels_per_task[t]`` columns, the rest are 0 and must be ignored through
    the label mask (see :func:`routing_rl.data.multilabel.make_label_mask`). The output layers have exactly C_t columns each so
    that parameter counts do not include padding.
    """

    def __init__(self, in_features: int, labels_per_task: Sequence[int], hidden: int = 16) -> None:
        super().__init__()
        self.labels_per_task = [int(c) for c in labels_per_task]
        if not self.labels_per_task or min(self.labels_per_task) <= 0:
            raise ValueError(f"labels_per_task must be non-empty positive counts, got {labels_per_task}")
        self.num_tasks = len(self.labels_per_task)
        self.max_labels = max(self.labels_per_task)
        self.hidden = ParallelDense(self.num_tasks, in_features, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, c) for c in self.labels_per_task)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x)
        outs = [head(h[:, t]) for t, head in enumerate(self.heads)]
        return torch.stack([F.pad(o, (0, self.max_labels - o.shape[-1])) for o in outs], dim=1)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (trainable ones only by default)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

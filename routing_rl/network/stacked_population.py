"""A population of fully connected routed networks whose weights are stored with a member axis.

:class:`~routing_rl.network.population.PopulationNetwork` runs the members' own modules: every
step stacks their weights, and its backward pass, gradient accumulation and optimizer step are
paid per block of every member. For networks of linear blocks (the FC networks of tables and
synthetic data) that per-tensor work is most of a step; here each layer is one ``[P, in, B * out]``
weight and one ``[P, 1, B * out]`` bias (member ``p``'s block ``b`` in columns ``b * out`` to
``(b + 1) * out``), and a layer runs every member's samples, ``[P, N, in]``, in one batched
matmul. A sample's block is then picked from the layer's B outputs (hard routing, per-task layers
and heads) or its blocks' outputs weighed (soft routing): every block is computed for every
sample, which for the few blocks of these networks costs less than sorting samples by block. A
block without samples gets a gradient of exactly zero, and :mod:`routing_rl.training.loop.stacked_weights`
steps only the blocks that had samples, as torch leaves a parameter whose gradient is None.

The weights are the members' own, copied in when a population's epoch begins and written back
(with their Adam moments) when it ends, before each member evaluates and saves its checkpoint.
A member's numbers agree with its run alone to rounding (one batched matmul instead of one call per
block), not bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.model import RoutingNetwork, RoutingSteps
from routing_rl.network.routed_layer import linear_kind


def layer_blocks(network: RoutingNetwork) -> list[nn.ModuleList]:
    """The block lists the stacked form stores, in order: every layer's, then the heads' (if not routed)."""
    blocks = [layer.layer.blocks for layer in network.layers]
    return blocks + ([] if network.head_routed else [network.heads.blocks])


def stacked_problem(members: Sequence[RoutingNetwork]) -> str | None:
    """Why these networks (which :func:`~routing_rl.network.population.stacking_problem` accepts)
    cannot store their weights stacked (None when they can)."""
    first = members[0]
    if len(first.input_shape) != 1 or any(spec.kind == "conv" for spec in first.specs):
        return "their layers are convolutions"
    for member in members:
        for blocks in layer_blocks(member):
            if not isinstance(blocks, nn.ModuleList) or linear_kind(blocks) is None:
                return "a layer's blocks are not plain linear ones (padded heads, hooks or banks)"
    return None


class StackedLinear:
    """One layer of every member: ``weight`` ``[P, in, B * out]`` and ``bias`` ``[P, 1, B * out]`` (module docstring)."""

    def __init__(self, members: Sequence[Sequence[nn.Linear]], relu: bool) -> None:
        self.linears = [list(linears) for linears in members]
        self.blocks = len(self.linears[0])
        self.out_features, self.in_features = self.linears[0][0].weight.shape
        self.relu = relu
        with torch.no_grad():
            weight = torch.stack([torch.cat([lin.weight.t() for lin in linears], dim=1) for linears in self.linears])
            bias = torch.stack([torch.cat([lin.bias for lin in linears]) for linears in self.linears]).unsqueeze(1)
        self.weight = weight.contiguous().requires_grad_(True)
        self.bias = bias.contiguous().requires_grad_(True)

    def weight_of(self, tensor: torch.Tensor, p: int, b: int) -> torch.Tensor:
        """Member ``p``'s block ``b`` of a tensor shaped as ``weight``, as that block's ``[out, in]``."""
        return tensor[p, :, b * self.out_features : (b + 1) * self.out_features].t()

    def bias_of(self, tensor: torch.Tensor, p: int, b: int) -> torch.Tensor:
        """Member ``p``'s block ``b`` of a tensor shaped as ``bias``, as that block's ``[out]``."""
        return tensor[p, 0, b * self.out_features : (b + 1) * self.out_features]

    def __call__(self, h: torch.Tensor, choice: torch.Tensor | None = None, weights: torch.Tensor | None = None) -> torch.Tensor:
        """``h`` ``[P, N, in]`` through each sample's block: ``choice`` ``[P, N]`` (one block each),
        ``weights`` ``[P, N, B]`` (every block weighed), or neither (a layer of one block)."""
        out = torch.baddbmm(self.bias, h, self.weight)
        if self.blocks == 1 and weights is None:
            return torch.relu(out) if self.relu else out
        P, N = h.shape[:2]
        out = out.view(P, N, self.blocks, self.out_features)
        if weights is not None:
            if self.relu:
                out = torch.relu(out)
            return (out * weights.unsqueeze(-1)).sum(2)
        assert choice is not None
        picked = out.gather(2, choice.view(P, N, 1, 1).expand(P, N, 1, self.out_features)).squeeze(2)
        return torch.relu(picked) if self.relu else picked


class StackedPopulationNetwork(RoutingSteps):
    """The members' FC networks with stacked weights, walked as :class:`RoutingSteps` on inputs
    ``[P, N, features]`` with member-local task ids ``[P, N]``. Routed layers take a decision whose
    ``blocks`` is ``[P, N]`` (hard) or whose ``weights`` is ``[P, N, B]`` (soft, every block)."""

    def __init__(self, members: Sequence[RoutingNetwork]) -> None:
        if problem := stacked_problem(members):
            raise ValueError(f"these networks cannot be stacked: {problem}")
        first = members[0]
        self.specs = first.specs
        self.routed_positions = list(first.routed_positions)
        self.blocks_per_layer = list(first.blocks_per_layer)
        self.head_routed = first.head_routed
        per_member = [layer_blocks(m) for m in members]
        self.stacked: list[StackedLinear] = []
        for i in range(len(per_member[0])):
            linears, relu = zip(*(linear_kind(blocks[i]) for blocks in per_member))  # type: ignore[misc]
            self.stacked.append(StackedLinear(linears, relu[0]))
        self.layers = self.stacked[: len(first.layers)]
        self.heads = None if self.head_routed else self.stacked[-1]

    def parameters(self) -> list[torch.Tensor]:
        return [t for layer in self.stacked for t in (layer.weight, layer.bias)]

    def _run(self, start: int, stop: int, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        for i in range(start, stop):
            mode = self.specs[i].mode
            if mode == "routed":
                raise ValueError(f"routed layer {self.specs[i].name} needs a routing decision")
            h = self.layers[i](h, tasks if mode == "per-task" else None)
        return h

    def _routed(self, position: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        if decision.is_hard:
            return self.layers[position](h, decision.blocks)
        return self.layers[position](h, weights=decision.weights)

    def _head(self, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        return h if self.heads is None else self.heads(h, tasks)

"""Several routed networks of one shape run as one: the network of a population of trials.

A suite trains the same network many times (seeds, learning rates, routers); each trial alone pays
the trainer's per-batch overhead and runs matrix products far too small for the hardware. A
population runs its members' batches together: every layer's blocks of every member form one
layer of member x block blocks, and the routed layer's one sort / gather / run / scatter
(:func:`~routing_rl.network.routed_layer.dispatch`) sends each sample to its own member's block.
A member's shared layer is then block ``member`` of that layer, its per-task layer and heads the
blocks ``member * tasks + task``, and a routed layer's block ``b`` the block ``member * blocks + b``.

Nothing is copied: the population's layers hold the members' own modules, so a member's
gradient, optimizer step, checkpoint and BatchNorm statistics are its own, computed on its own
samples only. Where linear blocks in use reach the dispatcher's batched-matmul threshold they run
as one padded batched matmul (:data:`~routing_rl.network.routed_layer.STACKED_MIN_BLOCKS`), which
agrees with one call per block to rounding, not bit for bit.

Samples carry *population task ids* ``member * tasks + task``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.linear_bank import LinearBank
from routing_rl.network.model import RoutingNetwork, RoutingSteps
from routing_rl.network.routed_layer import STACKED_MIN_BLOCKS, dispatch, linear_kind


def stacking_problem(members: Sequence[RoutingNetwork]) -> str | None:
    """Why these networks cannot run as one population (None when they can)."""
    first = members[0]
    for other in members[1:]:
        if [s.to_dict() for s in other.specs] != [s.to_dict() for s in first.specs] or other.input_shape != first.input_shape:
            return "their networks differ in shape (layers, widths or blocks)"
        if other.head_sizes != first.head_sizes:
            return "their task heads differ"
    if any(m.dropout > 0 for m in members):
        return "dropout draws its masks from torch's global generator, which each trial seeds for itself"
    for m in members:
        layers = [layer.layer.blocks for layer in m.layers] + [m.heads.blocks]
        if any(isinstance(blocks, LinearBank) for blocks in layers):
            return "layers of 32 or more blocks are stored as banks, which a population does not stack yet"
    return None


class PopulationNetwork(RoutingSteps):
    """The members' networks as one, addressed by population task ids (module docstring).

    It offers what the routing episodes need of a :class:`RoutingNetwork`: ``begin`` and
    ``advance`` (with decisions whose blocks are already the population's), ``num_routed`` and
    ``blocks_per_layer`` (each member's)."""

    def __init__(self, members: Sequence[RoutingNetwork], stacked_min_blocks: int = STACKED_MIN_BLOCKS) -> None:
        if not members:
            raise ValueError("a population needs at least one member")
        if problem := stacking_problem(members):
            raise ValueError(f"these networks cannot run as one population: {problem}")
        first = members[0]
        self.stacked_min_blocks = stacked_min_blocks
        self.members = list(members)
        self.num_tasks = first.num_tasks
        self.specs = first.specs
        self.routed_positions = list(first.routed_positions)
        self.blocks_per_layer = list(first.blocks_per_layer)
        self.head_routed = first.head_routed
        self.layers = [nn.ModuleList([block for m in members for block in m.layers[i].layer.blocks]) for i in range(len(first.layers))]
        self.heads = nn.ModuleList([head for m in members for head in m.heads.blocks])
        # whether each layer's blocks are plain linear ones without hooks, asked once: a population
        # network lives one epoch (the trainer builds a new one when its members change or an epoch begins)
        self.kinds = [linear_kind(layer) for layer in self.layers]
        self.heads_kind = linear_kind(self.heads)

    def _layer(self, i: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision | None = None) -> torch.Tensor:
        spec = self.specs[i]
        if spec.kind != "conv" and h.dim() > 2:
            h = h.flatten(1)
        if spec.mode == "shared":
            decision = RoutingDecision(torch.div(tasks, self.num_tasks, rounding_mode="floor"))  # the member
        elif spec.mode == "per-task":
            decision = RoutingDecision(tasks)
        elif decision is None:
            raise ValueError(f"routed layer {spec.name} needs a routing decision")
        return dispatch(self.layers[i], h, decision, self.stacked_min_blocks, one_block_call=False, blocks_kind=self.kinds[i])

    def _run(self, start: int, stop: int, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        for i in range(start, stop):
            h = self._layer(i, h, tasks)
        return h

    def _routed(self, position: int, h: torch.Tensor, tasks: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        return self._layer(position, h, tasks, decision)

    def _head(self, h: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        if self.head_routed:
            return h
        return dispatch(self.heads, h.flatten(1), RoutingDecision(tasks), self.stacked_min_blocks, one_block_call=False, blocks_kind=self.heads_kind)


def population_decision(decisions: Sequence[RoutingDecision], blocks: int) -> RoutingDecision:
    """The members' decisions at one routed layer of ``blocks`` blocks as one, each member's blocks
    moved to its own: member ``p``'s block ``b`` is the population's ``p * blocks + b``."""
    moved = [d.blocks + p * blocks for p, d in enumerate(decisions)]
    if all(d.is_hard for d in decisions):
        return RoutingDecision(torch.cat(moved))
    if any(d.is_hard for d in decisions) or len({d.blocks.shape[1] for d in decisions}) != 1:
        raise ValueError("a population's members must all route hard, or all soft over as many blocks")
    return RoutingDecision(torch.cat(moved), torch.cat([d.weights for d in decisions]))  # type: ignore[misc]

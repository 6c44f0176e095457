"""Batched dispatch of samples to function blocks: the routed layer.

Each block runs once per mini-batch on the samples routed to it (group by block with one sort,
gather, run, scatter back), never a Python loop over samples, so a routed layer costs about what a
plain layer of the same width costs plus one permutation of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class RoutingDecision:
    """Which block(s) each sample goes through at one routed layer.

    Hard routing: ``blocks`` is ``[B]`` (one block per sample) and ``weights`` is None.
    Soft routing (differentiable gates): ``blocks`` is ``[B, K]`` and ``weights`` is ``[B, K]``;
    the layer output is ``sum_k weights[b, k] * block_{blocks[b, k]}(x_b)`` and pairs whose
    weight is exactly zero are skipped. ``log_probs`` (``[B]``) is filled by stochastic routers.
    """

    blocks: torch.Tensor
    weights: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None

    @property
    def is_hard(self) -> bool:
        return self.weights is None


def _run_grouped(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``blocks[index[i]]`` on ``x[i]`` for all i; returns outputs sorted by block and the order."""
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=len(blocks)).tolist()
    pieces = x.index_select(0, order).split(counts)
    outputs = [blocks[m](piece) for m, piece in enumerate(pieces) if counts[m] > 0]
    return torch.cat(outputs, dim=0), order


def dispatch(blocks: nn.ModuleList, x: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
    """Apply the routed blocks to a batch; see :class:`RoutingDecision` for the two modes."""
    if decision.is_hard:
        index = decision.blocks
        if index.dim() != 1 or index.shape[0] != x.shape[0]:
            raise ValueError(f"hard routing needs one block per sample, got blocks of shape {tuple(index.shape)}")
        first = int(index[0]) if index.numel() else 0
        if index.numel() and bool((index == first).all()):
            return blocks[first](x)  # every sample on one block: a plain layer call
        out_sorted, order = _run_grouped(blocks, x, index)
        return torch.empty_like(out_sorted).index_copy_(0, order, out_sorted)
    weights = decision.weights
    assert weights is not None
    if decision.blocks.shape != weights.shape or decision.blocks.dim() != 2:
        raise ValueError("soft routing needs blocks and weights of the same shape [B, K]")
    rows, slots = torch.nonzero(weights != 0, as_tuple=True)
    if rows.numel() == 0:
        probe = blocks[0](x[:1])
        return torch.zeros((x.shape[0],) + probe.shape[1:], dtype=probe.dtype, device=x.device) * probe.sum()
    index = decision.blocks[rows, slots]
    out_sorted, order = _run_grouped(blocks, x.index_select(0, rows), index)
    w = weights[rows, slots].index_select(0, order).view((-1,) + (1,) * (out_sorted.dim() - 1))
    out = torch.zeros((x.shape[0],) + out_sorted.shape[1:], dtype=out_sorted.dtype, device=x.device)
    return out.index_add(0, rows.index_select(0, order), out_sorted * w)


class RoutedLayer(nn.Module):
    """A layer of ``len(blocks)`` function blocks that samples are dispatched to by a decision."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        return dispatch(self.blocks, x, decision)

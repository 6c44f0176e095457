"""Batched dispatch of samples to function blocks: the routed layer.

Each block runs once per mini-batch on the samples routed to it (group by block with one sort,
gather, run, scatter back), never a Python loop over samples, so a routed layer costs about what a
plain layer of the same width costs plus one permutation of the batch.

Where many blocks each get a few samples (many tasks and blocks), one call per block costs more
than its arithmetic; linear blocks are then run together: the weights of the blocks in use are
stacked, their samples padded to the largest group, and one batched matmul runs them all
(``benchmarks/fc_dispatch.py`` measures both forms). Only blocks in use are stacked, so a block
without samples still gets no gradient, as in the grouped form. A layer of many linear blocks keeps
them stacked for good (:mod:`routing_rl.network.linear_bank`), so that neither the stacking nor the
gradients and optimizer updates are paid per block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from routing_rl.network.linear_bank import BANK_MIN_BLOCKS, LinearBank, maybe_bank

Blocks = nn.ModuleList | LinearBank
"""A layer's blocks: one module per block, or a bank of linear blocks stored stacked."""


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


STACKED_MIN_BLOCKS = 32
"""Blocks in use from which linear blocks run as one batched matmul (fewer: one call per block).

Kept above the 20 tasks of the papers' largest benchmark (CIFAR-100), whose runs keep the grouped
form and its numbers: the two forms agree to rounding, not bit for bit."""

STACKED_MAX_PADDING = 4
"""Largest ratio of padded rows (blocks in use x largest group) to samples for the batched matmul."""


def _unhooked(module: nn.Module) -> bool:
    """True if no forward hook or pre-hook would run on ``module`` (the batched form calls no module)."""
    return not (module._forward_hooks or module._forward_pre_hooks)


def _linear_kind(blocks: nn.ModuleList) -> tuple[tuple[nn.Linear, ...], bool] | None:
    """The blocks' ``Linear`` modules and whether a ReLU follows, if the batched matmul computes exactly
    what calling the blocks would: every block a plain ``Linear`` with bias, or a plain
    ``Sequential(Linear, ReLU)``, one kind for all, and no hooks (those of torch.nn.utils' pruning or
    weight norm rebuild the weight in a pre-hook)."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return None
    with_relu = type(blocks[0]) is nn.Sequential
    linears = []
    for block in blocks:
        parts = list(block) if with_relu and type(block) is nn.Sequential else [block]
        linear = parts[0]
        if (with_relu and (len(parts) != 2 or type(parts[1]) is not nn.ReLU)) or type(linear) is not nn.Linear:
            return None
        if linear.bias is None or not all(_unhooked(m) for m in (block, *parts)):
            return None
        linears.append(linear)
    return tuple(linears), with_relu


def _run_stacked(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, index: torch.Tensor, order: torch.Tensor,
                 counts: torch.Tensor, largest: int) -> torch.Tensor:  # fmt: skip
    """Outputs sorted by block of the blocks in use (weights ``[K, out, in]``, biases ``[K, out]``, in
    block order), as one padded batched matmul; no activation."""
    slot = torch.cumsum(counts > 0, 0) - 1  # block -> its row among the blocks in use
    sorted_index = index.index_select(0, order)
    position = torch.arange(index.shape[0], device=x.device) - (torch.cumsum(counts, 0) - counts)[sorted_index]
    group = slot[sorted_index]
    padded = x.new_zeros(weight.shape[0], largest, x.shape[1]).index_put((group, position), x.index_select(0, order))
    return torch.baddbmm(bias.unsqueeze(1), padded, weight.transpose(1, 2))[group, position]


def _same_layout(gathered: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``gathered`` in ``source``'s channels_last layout: ``index_select`` returns the default layout,
    which would run conv blocks of a ``--channels-last`` network in the slow one."""
    if source.dim() == 4 and not source.is_contiguous() and source.is_contiguous(memory_format=torch.channels_last):
        return gathered.contiguous(memory_format=torch.channels_last)
    return gathered


def _run_grouped(
    blocks: Blocks, x: torch.Tensor, index: torch.Tensor, stacked_min_blocks: int = STACKED_MIN_BLOCKS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``blocks[index[i]]`` on ``x[i]`` for all i; returns outputs sorted by block and the order."""
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=len(blocks))
    count_list = counts.tolist()
    in_use = [m for m, c in enumerate(count_list) if c > 0]
    largest = max(count_list)
    batched = len(in_use) >= stacked_min_blocks and x.dim() == 2 and len(in_use) * largest <= STACKED_MAX_PADDING * index.shape[0]
    if isinstance(blocks, LinearBank):
        weight, bias = blocks.rows(torch.tensor(in_use, dtype=torch.long, device=x.device))
        if batched:
            return blocks.activate(_run_stacked(weight, bias, x, index, order, counts, largest)), order
        pieces = x.index_select(0, order).split(count_list)
        outputs = [F.linear(pieces[m], w, b) for m, w, b in zip(in_use, weight.unbind(0), bias.unbind(0))]
        return blocks.activate(torch.cat(outputs, dim=0)), order
    kind = _linear_kind(blocks) if batched else None
    if kind is not None:
        linears = [kind[0][m] for m in in_use]
        weight, bias = torch.stack([lin.weight for lin in linears]), torch.stack([lin.bias for lin in linears])
        out = _run_stacked(weight, bias, x, index, order, counts, largest)
        return (torch.relu(out) if kind[1] else out), order
    pieces = _same_layout(x.index_select(0, order), x).split(count_list)
    outputs = [blocks[m](pieces[m]) for m in in_use]
    return torch.cat(outputs, dim=0), order


def dispatch(
    blocks: Blocks, x: torch.Tensor, decision: RoutingDecision, stacked_min_blocks: int = STACKED_MIN_BLOCKS
) -> torch.Tensor:
    """Apply the routed blocks to a batch; see :class:`RoutingDecision` for the two modes.

    Linear blocks run as one batched matmul from ``stacked_min_blocks`` blocks in use (module docstring).
    """
    if decision.is_hard:
        index = decision.blocks
        if index.dim() != 1 or index.shape[0] != x.shape[0]:
            raise ValueError(f"hard routing needs one block per sample, got blocks of shape {tuple(index.shape)}")
        first = int(index[0]) if index.numel() else 0
        if index.numel() and bool((index == first).all()):
            return blocks[first](x)  # every sample on one block: a plain layer call
        out_sorted, order = _run_grouped(blocks, x, index, stacked_min_blocks)
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
    out_sorted, order = _run_grouped(blocks, _same_layout(x.index_select(0, rows), x), index, stacked_min_blocks)
    w = weights[rows, slots].index_select(0, order).view((-1,) + (1,) * (out_sorted.dim() - 1))
    out = _same_layout(torch.zeros((x.shape[0],) + out_sorted.shape[1:], dtype=out_sorted.dtype, device=x.device), out_sorted)
    return out.index_add_(0, rows.index_select(0, order), out_sorted * w)  # in place: keeps out's layout


class RoutedLayer(nn.Module):
    """A layer of ``len(blocks)`` function blocks that samples are dispatched to by a decision.

    From ``bank_min_blocks`` plain linear blocks the blocks are kept as one :class:`LinearBank`.
    """

    def __init__(self, blocks: list[nn.Module], bank_min_blocks: int = BANK_MIN_BLOCKS) -> None:
        super().__init__()
        self.blocks: Blocks = maybe_bank(blocks, bank_min_blocks)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor, decision: RoutingDecision) -> torch.Tensor:
        return dispatch(self.blocks, x, decision)

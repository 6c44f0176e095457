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

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.linear_bank import BANK_MIN_BLOCKS, LinearBank, maybe_bank, plain_linears

Blocks = nn.ModuleList | LinearBank
"""A layer's blocks: one module per block, or a bank of linear blocks stored stacked."""


STACKED_MIN_BLOCKS = 32
"""Blocks in use from which linear blocks run as one batched matmul (fewer: one call per block).

Kept above the 20 tasks of the papers' largest benchmark (CIFAR-100), whose runs keep the grouped
form and its numbers: the two forms agree to rounding, not bit for bit."""

STACKED_MAX_PADDING = 4
"""Largest ratio of padded rows (blocks in use x largest group) to samples for the batched matmul."""


LinearKind = tuple[list[nn.Linear], bool] | None
"""What :func:`linear_kind` says of a layer's blocks."""

CHECK = "check"
"""Ask :func:`linear_kind` at every call (a caller that knows the blocks' kind passes it instead)."""


def _unhooked(module: nn.Module) -> bool:
    """True if no forward hook or pre-hook would run on ``module`` (the batched form calls no module)."""
    return not (module._forward_hooks or module._forward_pre_hooks)


def linear_kind(blocks: nn.ModuleList) -> LinearKind:
    """The blocks' ``Linear`` modules and whether a ReLU follows, if the batched matmul computes exactly
    what calling the blocks would: plain linear blocks (:func:`plain_linears`) and no hooks (those of
    torch.nn.utils' pruning or weight norm rebuild the weight in a pre-hook)."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return None
    kind = plain_linears(blocks)
    if kind is None or not all(_unhooked(m) for block in blocks for m in block.modules()):
        return None
    return kind


class _Permute(torch.autograd.Function):
    """The rows of a batch in another order, with the gradient sent back by the inverse order: a
    gather both ways (``index_select``'s own backward is a scatter-add, 3-4x slower on CPU for what
    is here a permutation). Exact: rows are moved, never summed."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(0, order)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


def _permute(x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``x[order]`` where ``order`` is a permutation of the batch and ``inverse`` its inverse."""
    return _Permute.apply(x, order, inverse)


def _inverse(order: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(order).scatter_(0, order, torch.arange(order.shape[0], device=order.device))


def _run_stacked(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, index: torch.Tensor, order: torch.Tensor,
                 unsort: torch.Tensor, counts: torch.Tensor, largest: int) -> torch.Tensor:  # fmt: skip
    """Outputs sorted by block of the blocks in use (weights ``[K, out, in]``, biases ``[K, out]``, in
    block order), as one padded batched matmul; no activation."""
    slot = torch.cumsum(counts > 0, 0) - 1  # block -> its row among the blocks in use
    sorted_index = index.index_select(0, order)
    position = torch.arange(index.shape[0], device=x.device) - (torch.cumsum(counts, 0) - counts)[sorted_index]
    group = slot[sorted_index]
    padded = x.new_zeros(weight.shape[0], largest, x.shape[1]).index_put((group, position), _permute(x, order, unsort))
    return torch.baddbmm(bias.unsqueeze(1), padded, weight.transpose(1, 2))[group, position]


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A batch as a batch-first view whose memory is contiguous: NHWC for a channels_last image batch.

    Gathers and scatters along the batch (``index_select``, ``index_copy_``, ``index_add_``) on this
    view keep channels_last in their results *and* in their gradients; on the NCHW view they return
    the default layout, which runs the conv blocks in the slow one (forward) or makes every block
    convert its gradients (backward). The data moved are the same either way."""
    return t.permute(0, 2, 3, 1) if _is_channels_last(t) else t


def _images(rows: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """The NCHW view of :func:`_rows`' result."""
    return rows.permute(0, 3, 1, 2) if channels_last else rows


def _run_grouped(
    blocks: Blocks, x: torch.Tensor, index: torch.Tensor, stacked_min_blocks: int = STACKED_MIN_BLOCKS, blocks_kind: LinearKind | str = CHECK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``blocks[index[i]]`` on ``x[i]`` for all i; returns outputs sorted by block, the order
    (a permutation of the samples) and its inverse."""
    order = torch.argsort(index, stable=True)
    unsort = _inverse(order)
    counts = torch.bincount(index, minlength=len(blocks))
    count_list = counts.tolist()
    in_use = [m for m, c in enumerate(count_list) if c > 0]
    largest = max(count_list)
    batched = len(in_use) >= stacked_min_blocks and x.dim() == 2 and len(in_use) * largest <= STACKED_MAX_PADDING * index.shape[0]
    if isinstance(blocks, LinearBank):
        weight, bias = blocks.rows(torch.tensor(in_use, dtype=torch.long, device=x.device))
        if batched:
            return blocks.activate(_run_stacked(weight, bias, x, index, order, unsort, counts, largest)), order, unsort
        pieces = _permute(x, order, unsort).split(count_list)
        outputs = [F.linear(pieces[m], w, b) for m, w, b in zip(in_use, weight.unbind(0), bias.unbind(0))]
        return blocks.activate(torch.cat(outputs, dim=0)), order, unsort
    kind = None if not batched else linear_kind(blocks) if isinstance(blocks_kind, str) else blocks_kind
    if kind is not None:
        linears = [kind[0][m] for m in in_use]
        weight, bias = torch.stack([lin.weight for lin in linears]), torch.stack([lin.bias for lin in linears])
        out = _run_stacked(weight, bias, x, index, order, unsort, counts, largest)
        return (torch.relu(out) if kind[1] else out), order, unsort
    pieces = _images(_permute(_rows(x), order, unsort), _is_channels_last(x)).split(count_list)
    outputs = [blocks[m](pieces[m]) for m in in_use]
    if all(_is_channels_last(out) for out in outputs):
        return _images(torch.cat([_rows(out) for out in outputs], dim=0), True), order, unsort
    return torch.cat(outputs, dim=0), order, unsort


def dispatch(
    blocks: Blocks, x: torch.Tensor, decision: RoutingDecision, stacked_min_blocks: int = STACKED_MIN_BLOCKS, one_block_call: bool = True,
    blocks_kind: LinearKind | str = CHECK,
) -> torch.Tensor:
    """Apply the routed blocks to a batch; see :class:`RoutingDecision` for the two modes.

    Linear blocks run as one batched matmul from ``stacked_min_blocks`` blocks in use (module
    docstring); a batch whose samples all go to one block is a plain call of that block unless
    ``one_block_call`` is False (a population keeps every layer in one form, whoever is in it).
    ``blocks_kind``: the blocks' :func:`linear_kind`, when the caller has it (a population asks
    once per layer, not at every step: the check walks every block's modules for hooks).
    """
    if decision.is_hard:
        index = decision.blocks
        if index.dim() != 1 or index.shape[0] != x.shape[0]:
            raise ValueError(f"hard routing needs one block per sample, got blocks of shape {tuple(index.shape)}")
        first = int(index[0]) if index.numel() else 0
        if one_block_call and index.numel() and bool((index == first).all()):
            return blocks[first](x)  # every sample on one block: a plain layer call
        out_sorted, order, unsort = _run_grouped(blocks, x, index, stacked_min_blocks, blocks_kind)
        # back to the samples' order: a gather by the inverse permutation (index_copy_ by ``order`` is 2.5x slower)
        return _images(_permute(_rows(out_sorted), unsort, order), _is_channels_last(out_sorted))
    weights = decision.weights
    assert weights is not None
    if decision.blocks.shape != weights.shape or decision.blocks.dim() != 2:
        raise ValueError("soft routing needs blocks and weights of the same shape [B, K]")
    rows, slots = torch.nonzero(weights != 0, as_tuple=True)
    if rows.numel() == 0:
        probe = blocks[0](x[:1])
        return torch.zeros((x.shape[0],) + probe.shape[1:], dtype=probe.dtype, device=x.device) * probe.sum()
    index = decision.blocks[rows, slots]
    x_rows = _images(_rows(x).index_select(0, rows), _is_channels_last(x))
    out_sorted, order, _ = _run_grouped(blocks, x_rows, index, stacked_min_blocks, blocks_kind)
    w = weights[rows, slots].index_select(0, order).view((-1,) + (1,) * (out_sorted.dim() - 1))
    weighted = out_sorted * w
    weighted_rows = _rows(weighted)
    out = weighted_rows.new_zeros((x.shape[0],) + weighted_rows.shape[1:])
    return _images(out.index_add_(0, rows.index_select(0, order), weighted_rows), _is_channels_last(weighted))


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

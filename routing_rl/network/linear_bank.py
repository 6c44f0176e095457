"""Many linear function blocks of one layer stored as one stacked parameter: a bank.

With a hundred blocks per layer (a hundred tasks), a network kept as one ``nn.Linear`` per block
has some eight hundred parameter tensors, and every training step pays per tensor: stacking the
blocks in use for the batched matmul, one gradient accumulation each, one optimizer update each.
A bank holds the layer as one ``[M, out * in + out]`` parameter (a row per block: its weight, then its
bias), gathers the rows of the blocks in use with ``F.embedding(..., sparse=True)`` and so gets a
gradient that is *sparse by block*: it lists exactly the blocks that had samples, as the per-block
form's ``grad is None`` does for the others. :class:`routing_rl.training.loop.optim.RowSparseAdam` and
``RowSparseSGD`` step every listed row as its own per-block parameter would be stepped (its own
Adam step count), and leave the other rows alone.

A bank is built from the blocks the per-block form would have (same initial weights, same random
draws), and a banked network trains bit for bit as its per-block form (``tests/network/
test_linear_bank.py``). It is used from :data:`BANK_MIN_BLOCKS` blocks per layer: with fewer, the
gathers and scatters of rows cost more than the tensors they save (``benchmarks/optimizer_step.py``),
and the papers' networks (at most 20 blocks) keep their modules and their checkpoints' layout.
State dicts of the per-block form load into a bank.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

BANK_MIN_BLOCKS = 32
"""Blocks per layer from which plain linear blocks (FC blocks, task heads) are stored as a bank."""


class BankBlock:
    """Block ``index`` of a bank, callable like the ``nn.Module`` it replaces (its gradient stays sparse)."""

    def __init__(self, bank: LinearBank, index: int) -> None:
        self.bank, self.index = bank, index

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.bank.rows(torch.tensor([self.index], device=x.device))
        return self.bank.activate(F.linear(x, weight[0], bias[0]))

    @property
    def weight(self) -> torch.Tensor:
        return self.bank.weight[self.index]

    @property
    def bias(self) -> torch.Tensor:
        return self.bank.bias[self.index]


class LinearBank(nn.Module):
    """``num_blocks`` blocks ``x -> x W_m^T + b_m`` (followed by ReLU if ``relu``) as one parameter."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> None:
        super().__init__()
        num_blocks, self.out_features, self.in_features = weight.shape
        if bias.shape != (num_blocks, self.out_features):
            raise ValueError(f"a bank of {tuple(weight.shape)} weights needs biases of shape {(num_blocks, self.out_features)}")
        # one row per block, its weight then its bias: F.embedding gathers a block as one row and returns
        # a row-sparse gradient, and the optimizer has one tensor per layer to step
        rows = torch.cat([weight.detach().reshape(num_blocks, -1), bias.detach()], dim=1)
        self.weight_and_bias = nn.Parameter(rows.clone())
        self.relu = relu

    @classmethod
    def from_blocks(cls, blocks: Sequence[nn.Module]) -> LinearBank | None:
        """The bank of ``blocks`` if they are plain linear blocks (:func:`plain_linears`) of one
        shape; else None (keep the modules)."""
        kind = plain_linears(blocks)
        if kind is None:
            return None
        linears, relu = kind
        if any(linear.weight.shape != linears[0].weight.shape for linear in linears):
            return None
        weight = torch.stack([linear.weight.detach() for linear in linears])
        return cls(weight, torch.stack([linear.bias.detach() for linear in linears]), relu)

    def __len__(self) -> int:
        return self.weight_and_bias.shape[0]

    def __getitem__(self, index: int) -> BankBlock:
        if not -len(self) <= index < len(self):
            raise IndexError(f"block {index} of a bank of {len(self)}")
        return BankBlock(self, index % len(self))

    def __iter__(self) -> Iterator[BankBlock]:  # type: ignore[override]
        return (BankBlock(self, m) for m in range(len(self)))

    def extra_repr(self) -> str:
        return f"blocks={len(self)}, in_features={self.in_features}, out_features={self.out_features}, relu={self.relu}"

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        return torch.relu(out) if self.relu else out

    def rows(self, blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``[K, out, in]`` and biases ``[K, out]`` of ``blocks``, with a row-sparse gradient."""
        rows = F.embedding(blocks, self.weight_and_bias, sparse=True)
        weight, bias = rows.split([self.out_features * self.in_features, self.out_features], dim=1)
        return weight.contiguous().view(-1, self.out_features, self.in_features), bias

    @property
    def weight(self) -> torch.Tensor:
        """Every block's weight, ``[M, out, in]`` (a view)."""
        return self.weight_and_bias[:, : self.out_features * self.in_features].view(len(self), self.out_features, self.in_features)

    @property
    def bias(self) -> torch.Tensor:
        """Every block's bias, ``[M, out]`` (a view)."""
        return self.weight_and_bias[:, self.out_features * self.in_features :]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Accept the per-block form's keys (``0.weight`` or ``0.0.weight`` per block) by stacking them."""
        if prefix + "weight_and_bias" not in state_dict:
            for inner in ("", "0."):
                keys = [(f"{prefix}{m}.{inner}weight", f"{prefix}{m}.{inner}bias") for m in range(len(self))]
                if all(w in state_dict and b in state_dict for w, b in keys):
                    rows = [torch.cat([state_dict.pop(w).reshape(-1), state_dict.pop(b)]) for w, b in keys]
                    state_dict[prefix + "weight_and_bias"] = torch.stack(rows)
                    break
        super()._load_from_state_dict(state_dict, prefix, *args)


def plain_linears(blocks: Sequence[nn.Module]) -> tuple[list[nn.Linear], bool] | None:
    """The blocks' ``Linear`` modules and whether a ReLU follows, if every block is a plain ``Linear``
    with bias or a plain ``Sequential(Linear, ReLU)`` (the FC blocks), one kind for all; else None.
    Subclasses do not count: their forward may compute something else."""
    if not blocks:
        return None
    relu = type(blocks[0]) is nn.Sequential
    linears = []
    for block in blocks:
        parts = list(block) if relu and type(block) is nn.Sequential else [block]
        if relu and (len(parts) != 2 or type(parts[1]) is not nn.ReLU):
            return None
        if type(parts[0]) is not nn.Linear or parts[0].bias is None:
            return None
        linears.append(parts[0])
    return linears, relu


def maybe_bank(blocks: list[nn.Module], min_blocks: int = BANK_MIN_BLOCKS) -> nn.Module:
    """The layer's block container: a :class:`LinearBank` from ``min_blocks`` plain linear blocks, else a ModuleList."""
    if len(blocks) >= min_blocks:
        bank = LinearBank.from_blocks(blocks)
        if bank is not None:
            return bank
    return nn.ModuleList(blocks)

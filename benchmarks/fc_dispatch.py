"""What batched block weights would buy a routed FC layer: the grouped dispatch against two batched forms.

* ``grouped`` (what ``routing_rl.network.routed_layer.dispatch`` does): sort the batch by block,
  one ``Linear`` call per block in use, scatter back;
* ``padded bmm``: the blocks in use stacked into one weight tensor, their samples zero-padded to the
  largest group, one batched matmul (the library's form for many blocks; it keeps the grouped
  form where the padding would exceed its bound);
* ``gathered bmm``: every sample's block weight gathered (``[B, out, in]``), one batched
  matrix-vector product.

Forward and backward of one routed layer (Linear + ReLU) on a batch of 128 whose tasks follow a
random route, median over interleaved rounds, milliseconds; ``default`` is what ``dispatch`` picks.
Only the blocks in use are stacked,
so blocks without samples still get no gradient (the optimizer leaves them untouched, as with the
grouped dispatch). Both batched forms agree with the grouped one to rounding, not bit for bit.

    python benchmarks/fc_dispatch.py --threads 1 --rounds 5
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import click
import torch
from torch import nn

from interleaved import median_ms
from routing_rl.network import dispatch
from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.routed_layer import STACKED_MAX_PADDING, STACKED_MIN_BLOCKS

Dispatch = Callable[[nn.ModuleList, torch.Tensor, torch.Tensor], torch.Tensor]
CASES = [(10, 10, 64, 64), (10, 20, 288, 64), (20, 20, 64, 64), (20, 20, 288, 64), (100, 100, 32, 64), (100, 100, 64, 64), (100, 100, 288, 64)]  # tasks, blocks, in, out


def grouped(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return dispatch(blocks, x, RoutingDecision(index), stacked_min_blocks=len(blocks) + 1)


def padded_bmm(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The library's stacked form wherever its padding bound allows it (see the table's last column)."""
    return dispatch(blocks, x, RoutingDecision(index), stacked_min_blocks=1)


def default(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return dispatch(blocks, x, RoutingDecision(index))


def gathered_bmm(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Not in the library: every sample's block weight gathered, one batched matrix-vector product."""
    in_use = index.unique()
    weight = torch.stack([blocks[m][0].weight for m in in_use.tolist()])
    bias = torch.stack([blocks[m][0].bias for m in in_use.tolist()])
    slot = torch.zeros(len(blocks), dtype=torch.long)
    slot[in_use] = torch.arange(len(in_use))
    sample_slot = slot[index]
    return torch.relu(torch.baddbmm(bias[sample_slot].unsqueeze(2), weight[sample_slot], x.unsqueeze(2)).squeeze(2))


@click.command()
@click.option("--rounds", default=5, show_default=True)
@click.option("--steps", default=20, show_default=True, help="Forward+backward passes per round and form.")
@click.option("--threads", default=1, show_default=True)
def main(rounds: int, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    forms: dict[str, Dispatch] = {"grouped": grouped, "padded bmm": padded_bmm, "gathered bmm": gathered_bmm, "default": default}
    print(f"one routed FC layer (Linear + ReLU), batch 128, forward + backward, {threads} thread(s), median of {rounds} rounds, ms")
    print(f"default: padded bmm from {STACKED_MIN_BLOCKS} blocks in use if padded rows <= {STACKED_MAX_PADDING} x samples, else grouped")
    print("\n| tasks | blocks | in | out | blocks in use | padded rows / samples | grouped | padded bmm | gathered bmm | default |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for tasks, n_blocks, d_in, d_out in CASES:
        blocks = nn.ModuleList([nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU()) for _ in range(n_blocks)])
        index = torch.randint(n_blocks, (tasks,))[torch.randint(tasks, (128,))]
        x = torch.randn(128, d_in, requires_grad=True)
        reference = grouped(blocks, x, index)
        for form in forms.values():
            torch.testing.assert_close(form(blocks, x, index), reference, rtol=1e-5, atol=1e-5)
        ms = median_ms({name: functools.partial(form, blocks, x, index) for name, form in forms.items()}, rounds, steps)
        cells = " | ".join(f"{ms[name]:.2f}" for name in forms)
        counts = torch.bincount(index)
        padding = int((counts > 0).sum()) * int(counts.max()) / index.numel()
        print(f"| {tasks} | {n_blocks} | {d_in} | {d_out} | {index.unique().numel()} | {padding:.1f} | {cells} |")


if __name__ == "__main__":
    main()

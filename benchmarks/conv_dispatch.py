"""What one batched call per routed conv layer would buy: the grouped dispatch against per-sample
weights in one grouped convolution, with BatchNorm statistics per block by segment reductions.

* ``plain``: one block on every sample, the plain network's layer, for the ratio;
* ``grouped`` (what ``routing_rl.network.routed_layer.dispatch`` does): sort the batch by block, one
  call of each block in use (conv 3x3, BatchNorm in training mode over its own samples, ReLU,
  2x2 max-pool), scatter back;
* ``per-sample grouped conv``: every sample's block weights gathered into one convolution with the
  batch folded into channels (``groups = B``: no padding, each sample convolved with its own
  block's filters), each block's BatchNorm mean and variance from its samples by ``index_add``
  (segment sums), then one ReLU and one max-pool for the whole batch.

Forward and backward of one routed conv layer on a batch of 128 whose 10 tasks follow a random
route, median over interleaved rounds, milliseconds; the two forms agree to rounding (checked
before timing). This measures a remedy named in benchmarks/README.md; the library does not use it.

    python benchmarks/conv_dispatch.py --threads 1 --rounds 5
    python benchmarks/conv_dispatch.py --threads 1 --rounds 5 --channels-last
"""

from __future__ import annotations

import functools

import click
import torch
from torch import nn
from torch.nn import functional as F

from interleaved import median_ms
from routing_rl.network import build_network, dispatch
from routing_rl.core.contracts import RoutingDecision

CASES = [((1, 28, 28), 3), ((1, 28, 28), 10), ((1, 28, 28), 20), ((32, 14, 14), 3), ((32, 14, 14), 10), ((32, 14, 14), 20)]


def plain(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The plain layer for comparison: block 0 on every sample, one call."""
    return blocks[0](x)


def grouped(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return dispatch(blocks, x, RoutingDecision(index))


def per_sample_grouped_conv(blocks: nn.ModuleList, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    convs = [block[0] for block in blocks]
    norms = [block[1] for block in blocks]
    weight = torch.stack([c.weight for c in convs])[index]  # [B, out, in, 3, 3]
    bias = torch.stack([c.bias for c in convs])[index]  # [B, out]
    batch, out_channels = weight.shape[0], weight.shape[1]
    y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), weight.reshape(-1, *weight.shape[2:]), padding=1, groups=batch)
    y = y.reshape(batch, out_channels, *y.shape[2:]) + bias[:, :, None, None]
    pixels = y.shape[2] * y.shape[3]
    counts = torch.bincount(index, minlength=len(blocks)).clamp_min(1).to(y.dtype)[:, None] * pixels
    sums = torch.zeros(len(blocks), out_channels, dtype=y.dtype).index_add(0, index, y.sum(dim=(2, 3)))
    mean = (sums / counts)[index]  # [B, out]: each sample's block's batch mean
    centred = y - mean[:, :, None, None]
    square_sums = torch.zeros(len(blocks), out_channels, dtype=y.dtype).index_add(0, index, centred.square().sum(dim=(2, 3)))
    inv_std = torch.rsqrt(square_sums / counts + norms[0].eps)[index]
    gamma = torch.stack([n.weight for n in norms])[index]
    beta = torch.stack([n.bias for n in norms])[index]
    y = centred * (inv_std * gamma)[:, :, None, None] + beta[:, :, None, None]
    return F.max_pool2d(F.relu(y), 2)


@click.command()
@click.option("--rounds", default=5, show_default=True)
@click.option("--steps", default=10, show_default=True, help="Forward+backward passes per round and form.")
@click.option("--threads", default=1, show_default=True)
@click.option("--channels-last", is_flag=True, help="Blocks and inputs in channels_last memory format.")
def main(rounds: int, steps: int, threads: int, channels_last: bool) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    forms = {"plain": plain, "grouped": grouped, "per-sample grouped conv": per_sample_grouped_conv}
    print(f"one routed conv layer (conv 3x3, BatchNorm, ReLU, max-pool), batch 128, 10 tasks, forward + backward, "
          f"{'channels_last' if channels_last else 'contiguous'}, {threads} thread(s), median of {rounds} rounds, ms")  # fmt: skip
    print("\n| input | blocks | blocks in use | plain layer (one block) | grouped | per-sample grouped conv | grouped vs plain | per-sample vs grouped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape, n_blocks in CASES:
        net = build_network(shape, 10, 2, "conv1", n_blocks, seed=0).train()
        blocks = net.layers[0].layer.blocks
        for block in blocks:
            block[1].track_running_stats = False  # both forms compute batch statistics only
            block[1].running_mean = block[1].running_var = None
        index = torch.randint(n_blocks, (10,))[torch.randint(10, (128,))]
        x = torch.randn(128, *shape)
        if channels_last:
            blocks = blocks.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        torch.testing.assert_close(per_sample_grouped_conv(blocks, x, index), grouped(blocks, x, index), rtol=1e-4, atol=1e-4)
        ms = median_ms({name: functools.partial(form, blocks, x, index) for name, form in forms.items()}, rounds, steps)
        p, a, b = (ms[name] for name in forms)
        print(f"| {'x'.join(map(str, shape))} | {n_blocks} | {index.unique().numel()} | {p:.2f} | {a:.2f} | {b:.2f} | "
              f"{p / a:.2f}x | {a / b:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()

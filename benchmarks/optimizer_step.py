"""Cost of one optimizer step over a routed network's parameters, per-block modules against banks,
measured in one process.

A routed network kept as one module per block has many small tensors (every block of every routed
layer, and a head per task: about 800 at 100 tasks x 100 blocks with three routed FC layers), and
the optimizer pays per tensor. For the per-block form the table times torch's per-tensor loop, its
multi-tensor ``foreach`` implementation (bit-identical to the loop: the trainer's default) and its
``fused`` kernels (opt-in: ``--fused-optimizer``). A bank (``routing_rl/network/linear_bank.py``)
holds a layer as one tensor with a row-sparse gradient, stepped by ``RowSparseAdam``/``RowSparseSGD``
in their default form (bit-identical to ``foreach`` on the blocks) and their fused form (bit-identical
to ``fused``). The gradients are those of one real batch of 128 samples on uniformly random routes,
so blocks without samples have none, as in training. Variants are interleaved round by round; the
median per round is reported.

    python benchmarks/optimizer_step.py --rounds 5 --threads 1
"""

from __future__ import annotations

import statistics
import time

import click
import torch

from routing_rl.network import build_network
from routing_rl.core.contracts import RoutingDecision
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.loop.learner import make_optimizers

SIZES = [(10, 10), (100, 10), (100, 100)]  # (tasks, blocks)
PER_BLOCK, BANKED = 10**9, 2  # bank_min_blocks: never bank, bank every linear layer of two blocks or more


def gradients(net: torch.nn.Module, tasks: int, blocks: int, batch: int = 128) -> None:
    """Fill ``.grad`` from one batch routed uniformly at random (same batch for every network)."""
    g = torch.Generator().manual_seed(0)
    x, task = torch.randn(batch, 32, generator=g), torch.randint(0, tasks, (batch,), generator=g)
    routes = [RoutingDecision(torch.randint(0, blocks, (batch,), generator=g)) for _ in range(net.num_routed)]
    net(x, task, routes).square().mean().backward()


def step_seconds(optimizer: torch.optim.Optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - start) / steps


@click.command()
@click.option("--steps", default=20, show_default=True, help="Optimizer steps per round and variant.")
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=1, show_default=True, help="torch intra-op threads.")
def main(steps: int, rounds: int, threads: int) -> None:
    torch.set_num_threads(threads)
    print("| tasks x blocks (routed fc1-fc3, vector input) | optimizer | per-block tensors | per-block loop ms | foreach ms "
          "| fused ms | bank tensors | bank ms | bank fused ms | bank vs foreach | bank fused vs fused |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for tasks, blocks in SIZES:
        nets = {form: build_network((32,), tasks, 4, "fc", blocks, seed=0, bank_min_blocks=minimum)
                for form, minimum in (("per-block", PER_BLOCK), ("bank", BANKED))}  # fmt: skip
        for net in nets.values():
            gradients(net, tasks, blocks)
        for name, cls in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
            per_block = list(nets["per-block"].parameters())
            bank = list(nets["bank"].parameters())
            variants = {
                "loop": cls(per_block, lr=1e-3, foreach=False),
                "foreach": cls(per_block, lr=1e-3, foreach=True),
                "fused": cls(per_block, lr=1e-3, fused=True),
                "bank": make_optimizers(RunConfig(optimizer=name, lr=1e-3), bank, [], 1e-3)["all"],
                "bank fused": make_optimizers(RunConfig(optimizer=name, lr=1e-3, fused_optimizer=True), bank, [], 1e-3)["all"],
            }
            times: dict[str, list[float]] = {kind: [] for kind in variants}
            for _ in range(rounds):
                for kind, optimizer in variants.items():
                    times[kind].append(step_seconds(optimizer, steps))
            ms = {kind: statistics.median(t) * 1e3 for kind, t in times.items()}
            print(f"| {tasks} x {blocks} | {name} | {len(per_block)} | {ms['loop']:.2f} | {ms['foreach']:.2f} | {ms['fused']:.2f} "
                  f"| {len(bank)} | {ms['bank']:.2f} | {ms['bank fused']:.2f} | {ms['foreach'] / ms['bank']:.1f}x "
                  f"| {ms['fused'] / ms['bank fused']:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()

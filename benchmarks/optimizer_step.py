"""Cost of one optimizer step over a routed network's parameters: one Python loop per tensor vs
torch's multi-tensor (``foreach``) implementation, measured in one process.

A routed network has many small tensors (every block of every routed layer, and a head per task:
about 800 at 100 tasks x 100 blocks with three routed FC layers), and the per-tensor loop of the
default CPU Adam/SGD costs more than their arithmetic. ``foreach`` gives bit-identical updates
(the golden-run tests check it through the trainer), so the trainer always uses it; ``fused`` (one
kernel per tensor) is timed too, but its updates differ from the loop's in the last bits. Gradients are
random; variants are interleaved round by round; the median per round is reported.

    python benchmarks/optimizer_step.py --rounds 5 --threads 1
"""

from __future__ import annotations

import statistics
import time

import click
import torch

from routing_rl.network import build_network

SIZES = [(10, 10), (100, 10), (100, 100)]  # (tasks, blocks)


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
    print("| tasks x blocks (routed fc1-fc3, vector input) | tensors | parameters | optimizer | per-tensor loop ms "
          "| foreach ms | fused ms | foreach speed-up | fused speed-up |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for tasks, blocks in SIZES:
        net = build_network((32,), tasks, 4, "fc", blocks, seed=0)
        params = list(net.parameters())
        for p in params:
            p.grad = torch.randn_like(p)
        n_params = sum(p.numel() for p in params)
        for name, cls in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
            variants = {
                "loop": cls(params, lr=1e-3, foreach=False),
                "foreach": cls(params, lr=1e-3, foreach=True),
                "fused": cls(params, lr=1e-3, fused=True),
            }
            times: dict[str, list[float]] = {kind: [] for kind in variants}
            for _ in range(rounds):
                for kind, optimizer in variants.items():
                    times[kind].append(step_seconds(optimizer, steps))
            loop, multi, fused = (statistics.median(times[kind]) * 1e3 for kind in variants)
            print(f"| {tasks} x {blocks} | {len(params)} | {n_params:,} | {name} | {loop:.2f} | {multi:.2f} | {fused:.2f} "
                  f"| {loop / multi:.1f}x | {loop / fused:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()

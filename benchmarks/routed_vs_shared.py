"""Throughput of a routed network relative to the same network without routing, measured in one run.

Every configuration trains (forward, backward, Adam step) on the same batches; configurations are
interleaved round by round so that machine noise hits them alike, and the median per round is
reported. The ratio routed/shared is the number to quote: about 1x means routing costs nothing.

    python benchmarks/routed_vs_shared.py --batch-size 128 --rounds 5
"""

from __future__ import annotations

import statistics
import time

import click
import torch

from routing_rl.agents import Router
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.network import build_network
from routing_rl.training.loop.optim import RowSparseAdam

CONFIGS = [
    ("shared (no routing)", "none"),
    ("routed fc1,fc2", "fc"),
    ("routed conv1", "conv1"),
    ("routed conv3", "conv3"),
    ("routed conv1,2,3", "conv1,2,3"),
    ("routed all layers", "all"),
]


def make_step(routed: str, tasks: int, blocks: int, input_shape: tuple[int, ...], classes: int, seed: int):
    net = build_network(input_shape, tasks, classes, routed, blocks, seed=seed)
    router = Router.registry.get("fixed-random")(tasks, net.num_routed, blocks, seed=seed)
    env = BatchedRoutingEnv(net)
    opt = RowSparseAdam(net.parameters(), lr=1e-3)

    def step(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        episodes = env.run(x, y, t, router.act)
        loss = episodes.loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


@click.command()
@click.option("--batch-size", default=128, show_default=True)
@click.option("--tasks", default=10, show_default=True)
@click.option("--blocks", default=10, show_default=True)
@click.option("--steps", default=20, show_default=True, help="Training steps per round and configuration.")
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=0, show_default=True, help="torch intra-op threads (0: torch's default).")
@click.option("--image/--vector", default=True, show_default=True, help="Fashion-MNIST-shaped images or 32-dim vectors.")
def main(batch_size: int, tasks: int, blocks: int, steps: int, rounds: int, threads: int, image: bool) -> None:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    shape = (1, 28, 28) if image else (32,)
    configs = CONFIGS if image else [c for c in CONFIGS if "conv" not in c[1]]
    steps_by_name = {name: make_step(routed, tasks, blocks, shape, 2, 0) for name, routed in configs}
    batches = [
        (torch.randn(batch_size, *shape), torch.randint(2, (batch_size,)), torch.randint(tasks, (batch_size,)))
        for _ in range(steps)
    ]
    for step in steps_by_name.values():  # warm-up
        step(*batches[0])
    rates: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for batch in batches:
                step(*batch)
            rates[name].append(steps * batch_size / (time.perf_counter() - start))
    base = statistics.median(rates[configs[0][0]])
    print(f"batch {batch_size}, {tasks} tasks, {blocks} blocks per routed layer, torch threads {torch.get_num_threads()}")
    print(f"| network | samples/s (median of {rounds}) | ratio to shared |")
    print("| --- | ---: | ---: |")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"| {name} | {med:,.0f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()

"""Training speed with 1 and with 2 torch threads, on a quiet machine and with a busy core beside it.

Torch's default is one intra-op thread per core. On a small machine that another process also
uses, its threads wait for each other at every operation: this measures by how much. The same
Fashion-MNIST-shaped network (3 conv + 2 FC, fixed-random routes in fc1-fc2, 10 tasks) trains
``--steps`` steps per measurement; thread counts are interleaved round by round, first with
nothing else running, then with a busy-looping process started beside it (``--burners``).

    python benchmarks/threads_under_load.py --rounds 3 --steps 20
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import click
import torch

from routing_rl.agents import Router
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.network import build_network
from routing_rl.training.loop.optim import RowSparseAdam


def burn(stop: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    """Keep one core busy until told to stop."""
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


def samples_per_second(threads: int, steps: int, batch: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_network((1, 28, 28), 10, 2, "fc", 10, seed=0)
    router = Router.registry.get("fixed-random")(10, net.num_routed, 10, seed=0)
    env = BatchedRoutingEnv(net)
    opt = RowSparseAdam(net.parameters(), lr=1e-3)
    x, y, t = torch.randn(batch, 1, 28, 28), torch.randint(0, 2, (batch,)), torch.randint(0, 10, (batch,))
    start = time.perf_counter()
    for _ in range(steps):
        loss = env.run(x, y, t, router.act).loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


@click.command()
@click.option("--rounds", default=3, show_default=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--burners", default=1, show_default=True, help="Busy processes started for the loaded measurement.")
def main(rounds: int, steps: int, batch_size: int, burners: int) -> None:
    results: dict[tuple[str, int], list[float]] = {}
    for load in ("quiet", "busy"):
        stop = multiprocessing.Event()
        procs = [multiprocessing.Process(target=burn, args=(stop,)) for _ in range(burners if load == "busy" else 0)]
        for p in procs:
            p.start()
        try:
            for _ in range(rounds):
                for threads in (1, 2):
                    results.setdefault((load, threads), []).append(samples_per_second(threads, steps, batch_size))
        finally:
            stop.set()
            for p in procs:
                p.join()
    print("| machine | threads | samples/s (median) | vs 1 thread |")
    print("|---|---:|---:|---:|")
    for load in ("quiet", "busy"):
        one = statistics.median(results[(load, 1)])
        for threads in (1, 2):
            value = statistics.median(results[(load, threads)])
            print(f"| {load} | {threads} | {value:,.0f} | {value / one:.2f}x |")


if __name__ == "__main__":
    main()

"""The performance grid in one command: the plain network against this machine's matmul rate, and
every routed configuration against the plain network, training steps measured the way the trainer
takes them.

One training step = the batched routing episodes (the router acts), the task loss plus the router's
loss, backward, one multi-tensor Adam step over weights and router, the router's post-update hook.
Configurations are interleaved round by round in one process so that machine noise hits them
alike; each figure is the median over rounds. FLOPs of a training step come from
``torch.utils.flop_counter.FlopCounterMode`` (forward and backward of the plain network). Memory is
the process's peak resident set size after each configuration's warm-up step (CPU; cumulative, as
the configurations live side by side) or ``torch.cuda.max_memory_allocated`` (GPU).

    python benchmarks/grid.py --threads 1 --rounds 3
    python benchmarks/grid.py --threads 1 --rounds 3 --full      # T and M up to 100

The ratio column is the number to quote: 1.00x means routing costs nothing over the plain network
of the same active size. ``hard-concrete`` runs with half of each task's gates closed (a closed gate
should cost nothing).
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

from routing_rl.agents import Router
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.network import build_network
from routing_rl.training.loop.optim import RowSparseAdam

FMNIST_TRAIN_ROWS = 102_600
"""Training rows of an ``fmnist-mtl`` epoch: the epoch-time column is this many samples at the measured rate."""

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class Config:
    agent: str
    routed: str
    tasks: int
    blocks: int
    open_fraction: float = 0.5  # hard-concrete: share of each task's gates held open
    channels_last: bool = False

    @property
    def label(self) -> str:
        gates = f", {self.open_fraction:.0%} of gates open" if self.agent == "hard-concrete" else ""
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.agent} routed {self.routed}, T={self.tasks}, M={self.blocks}{gates}{layout}"


def make_step(config: Config, shape: tuple[int, ...], device: torch.device, compiled: bool = False) -> Step:
    """A closure taking one training step of ``config`` on a batch ``(x, y, tasks)``.

    ``compiled`` runs the network's layers before the first routed layer through ``torch.compile``
    (all of the plain network; the per-task heads' dispatch breaks the graph).
    """
    net = build_network(shape, config.tasks, 2, config.routed, config.blocks, seed=0).to(device)
    channels_last = config.channels_last
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compiled:
        net.begin = torch.compile(net.begin)  # type: ignore[method-assign]
    router: Router = Router.registry.get(config.agent)(config.tasks, net.num_routed, config.blocks, seed=0).to(device)
    if config.agent == "hard-concrete":
        closed = config.blocks - max(1, round(config.open_fraction * config.blocks))
        with torch.no_grad():  # the first gates of every task closed for good, the others open
            for d in range(net.num_routed):
                log_alpha = router.gate(d).log_alpha
                log_alpha[:, :closed] = -20.0
                log_alpha[:, closed:] = 20.0
    env = BatchedRoutingEnv(net)
    params = list(net.parameters()) + [p for p in router.parameters() if p.requires_grad]
    optimizer = RowSparseAdam(params, lr=1e-3, foreach=True)

    def step(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        episodes = env.run(x, y, t, lambda obs: router.act(obs, explore=True))
        loss = episodes.loss.mean()
        router_loss = router.loss(episodes)
        if router_loss is not None:
            loss = loss + router_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        router.after_update()

    return step


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def step_flops(shape: tuple[int, ...], batch: int) -> float:
    """FLOPs of one forward and backward pass of the plain network on ``batch`` samples."""
    net = build_network(shape, 10, 2, "none", 1, seed=0)
    x, tasks = torch.randn(batch, *shape), torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        net(x, tasks, []).sum().backward()
    return float(counter.get_total_flops())


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grid(full: bool) -> list[Config]:
    sizes = [(10, 3), (10, 10), (10, 20)] + ([(2, 3), (100, 10), (100, 100)] if full else [])
    configs = []
    for tasks, blocks in sizes:
        for agent in ("fixed-random", "wpl", "reinforce", "qlearning", "hard-concrete"):
            for routed in ("fc", "conv3", "all"):
                configs.append(Config(agent, routed, tasks, blocks))
    for fraction in (0.1, 0.3, 0.5, 1.0):  # hard-concrete's cost by share of open gates
        for routed in ("fc", "conv3"):
            configs.append(Config("hard-concrete", routed, 10, 10, fraction))
    for agent in ("fixed-random", "wpl"):  # routed networks in channels_last (compare with "plain channels_last")
        for routed in ("conv3", "all"):
            configs.append(Config(agent, routed, 10, 10, channels_last=True))
    return configs


@click.command()
@click.option("--batch-size", default=128, show_default=True)
@click.option("--steps", default=10, show_default=True, help="Training steps per round and configuration.")
@click.option("--rounds", default=3, show_default=True)
@click.option("--threads", default=1, show_default=True, help="torch intra-op threads.")
@click.option("--full/--quick", default=False, show_default=True, help="Add T and M up to 100 (slow on a CPU).")
@click.option("--compile", "with_compile", is_flag=True, help="Add the plain network under torch.compile (minutes to compile).")
@click.option("--plain-only", is_flag=True, help="Only the plain network's rows (e.g. to time it at several thread counts).")
@click.option("--device", default="cpu", show_default=True)
def main(
    batch_size: int, steps: int, rounds: int, threads: int, full: bool, with_compile: bool, plain_only: bool, device: str
) -> None:
    torch.set_num_threads(threads)
    dev = torch.device(device)
    shape = (1, 28, 28)
    torch.manual_seed(0)
    plain = {
        "plain": make_step(Config("shared-bottom", "none", 10, 1), shape, dev),
        "plain channels_last": make_step(Config("shared-bottom", "none", 10, 1, channels_last=True), shape, dev),
    }
    if with_compile:
        for layout in (False, True):
            name = "plain channels_last torch.compile" if layout else "plain torch.compile"
            plain[name] = make_step(Config("shared-bottom", "none", 10, 1, channels_last=layout), shape, dev, compiled=True)
    configs = [] if plain_only else grid(full)
    steps_by_name: dict[str, Step] = dict(plain)
    memory: dict[str, float] = {}
    for config in configs:
        steps_by_name[config.label] = make_step(config, shape, dev)
    tasks_of = {c.label: c.tasks for c in configs}
    batches: dict[int, list[tuple[torch.Tensor, ...]]] = {}
    for t in {10, *tasks_of.values()}:
        batches[t] = [(torch.randn(batch_size, *shape, device=dev), torch.randint(2, (batch_size,), device=dev),
                       torch.randint(t, (batch_size,), device=dev)) for _ in range(steps)]  # fmt: skip
    for name, step in steps_by_name.items():  # warm-up, and the memory each configuration reaches
        step(*batches[tasks_of.get(name, 10)][0])
        memory[name] = peak_memory_mb(dev)
    rates: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            data = batches[tasks_of.get(name, 10)]
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in data:
                step(*batch)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(steps * batch_size / (time.perf_counter() - start))
    peak = matmul_gflops(dev)
    flops_per_sample = step_flops(shape, batch_size) / batch_size
    base = statistics.median(rates["plain"])
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {batch_size}, "
          f"{steps} steps x {rounds} rounds; matmul 2048^2: {peak:.1f} GFLOP/s; plain network: "
          f"{flops_per_sample / 1e6:.1f} MFLOP per sample per training step")  # fmt: skip
    print("\n| configuration | samples/s | vs plain | GFLOP/s (plain's FLOPs) | % of matmul | Fashion-MNIST epoch, s "
          "(training) | process peak RSS so far, MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, values in rates.items():
        rate = statistics.median(values)
        gflops = rate * flops_per_sample / 1e9
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {gflops:.1f} | {100 * gflops / peak:.0f}% | "
              f"{FMNIST_TRAIN_ROWS / rate:.1f} | {memory[name]:,.0f} |")


if __name__ == "__main__":
    main()

"""Where a training step's time goes: torch.profiler over the grid's training steps, by phase and by op.

The phases are the trainer's: routing episodes (forward through the routed network, the router
acting), the router's loss, backward, the optimizer step, the router's post-update hook. The op
table lists the operators with the most self CPU time, so a remaining bottleneck is named from a
profile rather than guessed.

    python benchmarks/profile_step.py --agent wpl --routed fc --tasks 100 --blocks 100 --vector
    python benchmarks/profile_step.py --agent fixed-random --routed all --tasks 10 --blocks 20
"""

from __future__ import annotations

import click
import torch
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from routing_rl.agents import Router
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.network import build_network
from routing_rl.training.loop.optim import RowSparseAdam

PHASES = ("episodes", "router loss", "backward", "optimizer step", "router update")


@click.command()
@click.option("--agent", default="wpl", show_default=True)
@click.option("--routed", default="fc", show_default=True)
@click.option("--tasks", default=10, show_default=True)
@click.option("--blocks", default=10, show_default=True)
@click.option("--vector/--image", default=False, show_default=True, help="32-dim inputs (synthetic-groups) or 1x28x28.")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--top", default=15, show_default=True, help="Operators to list.")
@click.option("--fused-optimizer", is_flag=True, help="torch's fused Adam, as routing-rl run --fused-optimizer.")
@click.option("--channels-last", is_flag=True, help="Images and network in channels_last, as routing-rl run's default.")
def main(agent: str, routed: str, tasks: int, blocks: int, vector: bool, batch_size: int, steps: int, threads: int, top: int,
         fused_optimizer: bool, channels_last: bool) -> None:  # fmt: skip
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shape = (32,) if vector else (1, 28, 28)
    net = build_network(shape, tasks, 4, routed, blocks, seed=0)
    layout = torch.channels_last if channels_last and not vector else torch.contiguous_format
    net = net.to(memory_format=layout)
    router: Router = Router.registry.get(agent)(tasks, net.num_routed, blocks, seed=0)
    env = BatchedRoutingEnv(net)
    params = list(net.parameters()) + [p for p in router.parameters() if p.requires_grad]
    optimizer = RowSparseAdam(params, lr=1e-3, **({"fused": True} if fused_optimizer else {"foreach": True}))
    batches = [(torch.randn(batch_size, *shape).contiguous(memory_format=layout), torch.randint(4, (batch_size,)),
                torch.randint(tasks, (batch_size,))) for _ in range(steps + 2)]  # fmt: skip

    def step(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        with record_function("episodes"):
            episodes = env.run(x, y, t, lambda obs: router.act(obs, explore=True))
            loss = episodes.loss.mean()
        with record_function("router loss"):
            router_loss = router.loss(episodes)
            if router_loss is not None:
                loss = loss + router_loss
        with record_function("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("optimizer step"):
            optimizer.step()
        with record_function("router update"):
            router.after_update()

    for batch in batches[:2]:  # warm-up
        step(*batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[2:]:
            step(*batch)
    events = prof.key_averages()
    total = sum(e.cpu_time_total for e in events if e.key in PHASES)
    print(f"{agent} routed {routed}, T={tasks}, M={blocks}, {'32-dim' if vector else '1x28x28'} inputs, batch {batch_size}, "
          f"{'fused' if fused_optimizer else 'foreach'} Adam, {'channels_last, ' if layout is torch.channels_last else ''}"
          f"{steps} steps, {threads} thread(s); {sum(p.numel() for p in params):,} parameters in {len(params)} tensors")  # fmt: skip
    print("\n| phase | ms per step | share |")
    print("|---|---:|---:|")
    for event in sorted((e for e in events if e.key in PHASES), key=lambda e: -e.cpu_time_total):
        print(f"| {event.key} | {event.cpu_time_total / steps / 1000:.2f} | {event.cpu_time_total / total:.0%} |")
    print("\n| operator (self CPU time) | calls per step | ms per step | share of step |")
    print("|---|---:|---:|---:|")
    ops = sorted((e for e in events if e.key not in PHASES), key=lambda e: -e.self_cpu_time_total)[:top]
    for event in ops:
        print(f"| {event.key} | {event.count / steps:.0f} | {event.self_cpu_time_total / steps / 1000:.2f} | "
              f"{event.self_cpu_time_total / total:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Trials alone against the same trials as one population: aggregate training samples/s.

    python benchmarks/population_speed.py --rounds 3 --threads 1

For each router and population size P: P seeds of one trial trained one after the other (each
alone, as ``suite run --population 1`` trains them) and the same P seeds trained together (as
``--population P``: stacked (FC networks' weights as one tensor per layer, multi-task models as
one mapped model), and with each member's own modules, ``stack_weights=False``), one epoch each, on ``synthetic-groups`` with 4 tasks and 12,500 training rows
per task (a 50,000-row table; 4 classes, 32 features), batch 128, one thread. The figure is the
training samples of all P trials over the seconds their training epochs took (evaluation, set-up
and writing are the same work either way and are left out), median of the rounds; configurations
are interleaved round by round in one process.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import click
import torch

from routing_rl.training import RunConfig, Trainer
from routing_rl.training.loop.population import STACK_FROM, Population
from routing_rl.training.setup.composition import compose

ROUTERS = {
    "shared bottom": {"agent": "shared-bottom", "routed": "none"},
    "fixed random, fc routed, 4 blocks": {"agent": "fixed-random", "blocks": 4},
    "wpl, fc routed, 4 blocks": {"agent": "wpl", "blocks": 4, "router_lr": 0.03},
    "hard-concrete, fc routed, 4 blocks": {"agent": "hard-concrete", "blocks": 4},
    "snr-trans (a multi-task model)": {"agent": "snr-trans"},
    "mmoe (a multi-task model)": {"agent": "mmoe"},
}
ENV = {"num_tasks": 4, "num_groups": 2, "train_per_task": 12_500, "test_per_task": 20}


def trainers(root: Path, options: dict, seeds: range, max_batches: int, threads: int, data_cache: dict) -> list[Trainer]:
    out = []
    for seed in seeds:
        config = RunConfig(env="synthetic-groups", env_options=ENV, epochs=1, seed=seed, threads=threads, max_batches_per_epoch=max_batches,
                           logdir=str(root / f"s{seed}"), **options)  # fmt: skip
        parts = compose(config)
        if seed not in data_cache:
            data_cache[seed] = parts.load_data()
        t = Trainer(parts, data_cache[seed])
        t.prepare_run_dir(resume=False, overwrite=True)
        out.append(t)
    return out


def samples_per_second(members: list[Trainer], together: bool, stack_from: int, stack_weights: bool = True) -> float:
    if together:
        Population(members, stack_from, stack_weights=stack_weights).fit()
        seconds = members[0].results["epochs"][-1]["train_seconds"]
    else:
        seconds = 0.0
        for t in members:
            t.fit()
            seconds += t.results["epochs"][-1]["train_seconds"]
    samples = sum(t.results["epochs"][-1]["samples_per_second"] * t.results["epochs"][-1]["train_seconds"] for t in members)
    return samples / seconds


@click.command()
@click.option("--rounds", default=3, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--max-batches", default=150, show_default=True, help="Training batches of 128 per trial and round.")
@click.option("--sizes", default="2,5,10", show_default=True, help="Population sizes.")
@click.option("--stack-from", default=STACK_FROM, show_default=True,
              help="Linear blocks in use from which a population's layer runs as one batched matmul (default: the population's own).")
def main(rounds: int, threads: int, max_batches: int, sizes: str, stack_from: int) -> None:
    torch.set_num_threads(threads)
    counts = [int(s) for s in sizes.split(",")]
    cache: dict = {}
    rates: dict[tuple[str, int, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name, options in ROUTERS.items():
                for p in counts:
                    for mode in ("alone", "own modules", "stacked weights"):
                        members = trainers(Path(tmp) / "runs", options, range(p), max_batches, threads, cache)
                        rate = samples_per_second(members, mode != "alone", stack_from, mode == "stacked weights")
                        rates.setdefault((name, p, mode), []).append(rate)
    print(f"synthetic-groups, 4 tasks, 50,000 training rows, batch 128, {max_batches} batches per trial, {threads} thread(s), "
          f"median of {rounds} interleaved rounds (torch {torch.__version__})")
    print("\n| router | trials | alone, samples/s (all trials) | population, own modules | population, stacked | stacked vs alone |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ROUTERS:
        for p in counts:
            alone, own, stacked = (statistics.median(rates[(name, p, mode)]) for mode in ("alone", "own modules", "stacked weights"))
            print(f"| {name} | {p} | {alone:,.0f} | {own:,.0f} | {stacked:,.0f} | {stacked / alone:.2f}x |")


if __name__ == "__main__":
    main()

"""Routed against plain network in ``routing-rl run`` itself: the epoch's samples/s of whole runs.

The grid (``grid.py``) times the training step alone; this runs the command a user runs, so the
optimizer step over every block's tensors, the router update, logging and the data pipeline are
all in the figure. Each configuration is one ``routing-rl run`` for one epoch cut at
``--max-batches``; configurations are interleaved round by round (noise hits them alike) and the
median of the rounds' ``samples_per_second`` (from ``results.json``) is reported, with its ratio to
the plain network on the same data.

    python benchmarks/trainer_ratio.py --rounds 5 --threads 1
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import click

SYNTHETIC_100 = ["--env", "synthetic-groups", "-e", "num_tasks=100", "-e", "num_groups=10", "-e", "train_per_task=200"]
FMNIST = ["--env", "fmnist-mtl", "--contiguous"]
FMNIST_CL = ["--env", "fmnist-mtl", "--channels-last"]

CONFIGS: list[tuple[str, str, list[str]]] = [
    # (data set, configuration, routing-rl run options); the first of each data set is the plain network
    ("synthetic-groups, 100 tasks", "plain (shared-bottom, nothing routed)", [*SYNTHETIC_100, "--agent", "shared-bottom", "--routed", "none"]),
    ("synthetic-groups, 100 tasks", "wpl, fc routed, 100 blocks", [*SYNTHETIC_100, "--agent", "wpl", "--routed", "fc", "--blocks", "100"]),
    ("synthetic-groups, 100 tasks", "wpl, fc routed, 100 blocks, --fused-optimizer", [*SYNTHETIC_100, "--agent", "wpl", "--routed", "fc", "--blocks", "100", "--fused-optimizer"]),
    ("synthetic-groups, 100 tasks", "reinforce, fc routed, 100 blocks", [*SYNTHETIC_100, "--agent", "reinforce", "--routed", "fc", "--blocks", "100"]),
    ("synthetic-groups, 100 tasks", "fixed-random, fc routed, 100 blocks", [*SYNTHETIC_100, "--agent", "fixed-random", "--routed", "fc", "--blocks", "100"]),
    ("fmnist-mtl, 10 tasks, --contiguous", "plain (shared-bottom, nothing routed)", [*FMNIST, "--agent", "shared-bottom", "--routed", "none"]),
    ("fmnist-mtl, 10 tasks, --contiguous", "fixed-random, all routed, 10 blocks", [*FMNIST, "--agent", "fixed-random", "--routed", "all", "--blocks", "10"]),
    ("fmnist-mtl, 10 tasks, --contiguous", "wpl, fc routed, 10 blocks", [*FMNIST, "--agent", "wpl", "--routed", "fc", "--blocks", "10"]),
    ("fmnist-mtl, 10 tasks, --channels-last (the default)", "plain (shared-bottom, nothing routed)", [*FMNIST_CL, "--agent", "shared-bottom", "--routed", "none"]),
    ("fmnist-mtl, 10 tasks, --channels-last (the default)", "fixed-random, all routed, 10 blocks", [*FMNIST_CL, "--agent", "fixed-random", "--routed", "all", "--blocks", "10"]),
    ("fmnist-mtl, 10 tasks, --channels-last (the default)", "wpl, fc routed, 10 blocks", [*FMNIST_CL, "--agent", "wpl", "--routed", "fc", "--blocks", "10"]),
]  # fmt: skip


def run_once(options: list[str], max_batches: int, threads: int, logdir: Path) -> float:
    """One epoch of ``routing-rl run``; returns its training samples/s."""
    command = [sys.executable, "-m", "routing_rl", "run", *options, "--epochs", "1", "--max-batches", str(max_batches),
               "--threads", str(threads), "--logdir", str(logdir), "--overwrite", "--quiet"]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    results = json.loads((logdir / "results.json").read_text())
    return float(results["epochs"][-1]["samples_per_second"])


@click.command()
@click.option("--rounds", default=3, show_default=True)
@click.option("--max-batches", default=60, show_default=True, help="Training batches of 128 per run.")
@click.option("--threads", default=1, show_default=True, help="torch threads of every run.")
def main(rounds: int, max_batches: int, threads: int) -> None:
    rates: dict[int, list[float]] = {i: [] for i in range(len(CONFIGS))}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for i, (_, _, options) in enumerate(CONFIGS):
                rates[i].append(run_once(options, max_batches, threads, Path(tmp) / f"run{i}"))
    print(f"routing-rl run, 1 epoch of {max_batches} batches of 128, {threads} thread(s), median of {rounds} interleaved rounds")
    print("\n| data | configuration | samples/s | vs plain |")
    print("|---|---|---:|---:|")
    base: dict[str, float] = {}
    for i, (data, name, _) in enumerate(CONFIGS):
        rate = statistics.median(rates[i])
        base.setdefault(data, rate)
        print(f"| {data} | {name} | {rate:,.0f} | {rate / base[data]:.2f}x |")


if __name__ == "__main__":
    main()

"""Wall time of the `suite init` battery on a 50,000-row table: trials alone against populations.

    python benchmarks/battery_wall.py --rows 50000 --epochs 20 --seeds 5 --workers 2 --population 5

Writes the table (a CSV of 16 standard normal features and 4 three-class tasks in 2 groups: tasks
t0 and t1 read one random tanh teacher's 8 units, t2 and t3 another's, each through its own
readout with Gumbel noise 0.5), writes the battery with ``routing-rl suite init --env files``, then
trains it twice into two suite directories with ``routing-rl suite run --workers W --threads 1``:
``--population 1`` (every trial alone, the default) and ``--population P``, and prints each run's
wall time. Run it on a quiet machine: the two runs are not interleaved (each takes minutes).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 16))
    columns = {f"x{i}": x[:, i] for i in range(16)}
    for group in range(2):
        w1 = rng.standard_normal((16, 8)) / 4.0
        hidden = np.tanh(x @ w1)
        for task in range(2):
            logits = hidden @ rng.standard_normal((8, 3)) + 0.5 * rng.gumbel(size=(rows, 3))
            columns[f"t{2 * group + task}"] = logits.argmax(1)
    header = ",".join(columns)
    body = np.column_stack(list(columns.values()))
    np.savetxt(path, body, delimiter=",", header=header, comments="", fmt=["%.6f"] * 16 + ["%d"] * 4)
    return path


def routing_rl(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "routing_rl", *args], check=True, stdout=subprocess.DEVNULL)


@click.command()
@click.option("--rows", default=50_000, show_default=True)
@click.option("--epochs", default=20, show_default=True)
@click.option("--seeds", default=5, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--population", default=5, show_default=True)
def main(rows: int, epochs: int, seeds: int, workers: int, population: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = write_table(folder / "table.csv", rows)
        suite = folder / "battery.toml"
        routing_rl("suite", "init", "--env", "files", "-e", f"path={table}", "-e", "tasks=t0,t1,t2,t3", "--out", str(suite),
                   "--seeds", str(seeds), "--epochs", str(epochs))  # fmt: skip
        times = {}
        for size in (1, population):
            start = time.perf_counter()
            routing_rl("suite", "run", str(suite), "--out", str(folder / f"p{size}"), "--workers", str(workers), "--threads", "1",
                       "--population", str(size), "--quiet")  # fmt: skip
            times[size] = time.perf_counter() - start
    print(f"battery (8 methods x {seeds} seeds, {epochs} epochs) on a {rows:,}-row table of 4 tasks, {workers} workers, 1 thread each")
    print("\n| trials | wall time | vs alone |")
    print("|---|---:|---:|")
    for size, seconds in times.items():
        label = "alone (--population 1)" if size == 1 else f"--population {size}"
        print(f"| {label} | {seconds / 60:.1f} min | {times[1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()

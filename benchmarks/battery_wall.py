"""Wall time of the `suite init` battery on a 50,000-row table: trials alone, in populations, and
the battery of an earlier checkout of routing-rl.

    git worktree add ../routing-rl-636618a 636618a     # the code when populations were asked for
    python benchmarks/battery_wall.py --rows 50000 --epochs 20 --seeds 5 --workers 2 --sizes auto \
        --before ../routing-rl-636618a
    python benchmarks/battery_wall.py --sizes 1 --before ../routing-rl-636618a --no-time-before --before-battery-here

Writes the table (a CSV of 16 standard normal features and 4 three-class tasks in 2 groups: tasks
t0 and t1 read one random tanh teacher's 8 units, t2 and t3 another's, each through its own
readout with Gumbel noise 0.5; classes written as ``c0``, ``c1``, ``c2``, which every version
reads as class labels), writes the battery with ``routing-rl suite init --env files`` and trains
it into a fresh suite directory with ``routing-rl suite run --workers W --threads 1
--population P`` for every P of ``--sizes`` (a number, or ``auto``), printing each run's wall time.

``--before DIR`` first does the same with the package in DIR (a checkout of an earlier commit, run
with ``PYTHONPATH=DIR``): its own ``suite init`` battery, trained with ``suite run --workers W``
and nothing else (earlier versions had no ``--threads`` or ``--population``; they gave each of W
workers cores // W threads, one each with 2 workers on 2 cores). With ``--before-battery-here``
the earlier version's battery file is also trained by this version, alone: what the code's speed
changed, apart from what the battery's methods changed. Run it on a quiet machine: the runs are
not interleaved (each takes minutes).
"""

from __future__ import annotations

import os
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
    columns = {f"x{i}": np.char.mod("%.6f", x[:, i]) for i in range(16)}
    for group in range(2):
        w1 = rng.standard_normal((16, 8)) / 4.0
        hidden = np.tanh(x @ w1)
        for task in range(2):
            logits = hidden @ rng.standard_normal((8, 3)) + 0.5 * rng.gumbel(size=(rows, 3))
            columns[f"t{2 * group + task}"] = np.char.add("c", logits.argmax(1).astype(str))
    header = ",".join(columns)
    np.savetxt(path, np.column_stack(list(columns.values())), delimiter=",", header=header, comments="", fmt="%s")
    return path


def routing_rl(source: Path | None, *args: str) -> None:
    """``python -m routing_rl ARGS``, with the package in ``source`` when given."""
    env = {**os.environ, "PYTHONPATH": str(source.resolve())} if source is not None else None
    subprocess.run([sys.executable, "-m", "routing_rl", *args], check=True, stdout=subprocess.DEVNULL, env=env,
                   cwd=source)  # fmt: skip


def write_battery(source: Path | None, table: Path, suite: Path, seeds: int, epochs: int) -> None:
    """``suite init``'s battery for ``table`` (of the package in ``source``, else this one) as ``suite``."""
    routing_rl(source, "suite", "init", "--env", "files", "-e", f"path={table}", "-e", "tasks=t0,t1,t2,t3", "--out", str(suite),
               "--seeds", str(seeds), "--epochs", str(epochs))  # fmt: skip


def timed_battery(folder: Path, name: str, run_args: list[str], source: Path | None = None, out: str | None = None) -> float:
    """Train the battery ``folder/name.toml`` into ``folder/out`` (``name`` by default); the ``suite run`` wall time in seconds."""
    start = time.perf_counter()
    routing_rl(source, "suite", "run", str(folder / f"{name}.toml"), "--out", str(folder / (out or name)), *run_args)
    return time.perf_counter() - start


@click.command()
@click.option("--rows", default=50_000, show_default=True)
@click.option("--epochs", default=20, show_default=True)
@click.option("--seeds", default=5, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--sizes", default="1,auto", show_default=True, help="Populations to time (1: every trial alone; auto: the default).")
@click.option("--before", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A checkout of an earlier routing-rl whose battery is timed first.")  # fmt: skip
@click.option("--time-before/--no-time-before", default=True, show_default=True,
              help="Train the earlier version's battery with the earlier version (else only write it).")  # fmt: skip
@click.option("--before-battery-here", is_flag=True, help="Also train the earlier version's battery file with this version, alone.")
def main(rows: int, epochs: int, seeds: int, workers: int, sizes: str, before: Path | None, time_before: bool, before_battery_here: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = write_table(folder / "table.csv", rows)
        rows_out: list[tuple[str, float]] = []
        if before is not None:
            commit = subprocess.run(["git", "-C", str(before), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
            write_battery(before, table, folder / "before.toml", seeds, epochs)
            if time_before:
                seconds = timed_battery(folder, "before", ["--workers", str(workers)], before)
                rows_out.append((f"routing-rl at {commit or before.name} (its battery, alone)", seconds))
            if before_battery_here:
                seconds = timed_battery(folder, "before", ["--workers", str(workers), "--threads", "1", "--quiet"], out="before-here")
                rows_out.append((f"this version, {commit or before.name}'s battery, alone", seconds))
        if sizes:
            write_battery(None, table, folder / "battery.toml", seeds, epochs)
        for size in (s.strip() for s in sizes.split(",") if s.strip()):
            seconds = timed_battery(folder, "battery", ["--workers", str(workers), "--threads", "1", "--population", size, "--quiet"],
                                    out=f"p{size}")  # fmt: skip
            rows_out.append(("alone (--population 1)" if size == "1" else f"--population {size}", seconds))
    print(f"battery (8 methods x {seeds} seeds, {epochs} epochs) on a {rows:,}-row table of 4 three-class tasks, {workers} workers, 1 thread each")
    print("\n| trials | wall time | vs first row |")
    print("|---|---:|---:|")
    for label, seconds in rows_out:
        print(f"| {label} | {seconds / 60:.1f} min | {rows_out[0][1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()

"""The trainer's per-batch overhead: a solo trial's training samples/s against a raw PyTorch loop.

    python benchmarks/trainer_overhead.py --rounds 5 --threads 1

The network is the shared bottom of a vector table (``synthetic-groups``: 32 features, three
shared FC layers of 64 units, a 4-class head per task), batch 128, Adam at 1e-3. The raw loop is
what a researcher writes by hand for the same arithmetic: the same layer sizes as plain
``nn.Linear`` modules, one output layer holding every task's head (each sample takes its task's
columns), the batch drawn by ``torch.randperm`` from tensors in memory, cross-entropy, backward,
``Adam.step``. The trainer is ``Trainer.fit`` of ``--agent shared-bottom --routed none`` on the same
data: its epoch's ``samples_per_second`` (training only: batching, routing episodes, the task loss,
backward, the optimizer step and the per-batch bookkeeping; evaluation is not in it). Both run one
epoch per round in one process, interleaved round by round, and the median of the rounds is
reported, with the trainer's share of the raw loop's rate.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from torch import nn

from routing_rl.data import load_suite
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose


def raw_epoch(x: torch.Tensor, y: torch.Tensor, task: torch.Tensor, tasks: int, classes: int, batch: int, seed: int) -> float:
    """One epoch of the hand-written loop; returns its samples/s."""
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    heads = nn.Linear(64, tasks * classes)
    optimizer = torch.optim.Adam([*body.parameters(), *heads.parameters()], lr=1e-3)
    columns = torch.arange(classes)
    start = time.perf_counter()
    order = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], batch):
        rows = order[i:i + batch]
        logits = heads(body(x[rows])).view(-1, tasks, classes)
        mine = logits[torch.arange(rows.numel()), task[rows]][:, columns]
        loss = F.cross_entropy(mine, y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return x.shape[0] / (time.perf_counter() - start)


def trainer_epoch(data, options: dict, logdir: Path) -> float:
    """One epoch of ``Trainer.fit``; returns the epoch's training samples/s."""
    config = RunConfig(env="synthetic-groups", agent="shared-bottom", routed="none", epochs=1, logdir=str(logdir), **options)
    trainer = Trainer(compose(config), data)
    trainer.prepare_run_dir(resume=False, overwrite=True)
    results = trainer.fit()
    return float(results["epochs"][-1]["samples_per_second"])


@click.command()
@click.option("--rounds", default=5, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--tasks", default=4, show_default=True)
@click.option("--rows", default=12_500, show_default=True, help="Training rows per task (before the validation hold-out).")
def main(rounds: int, threads: int, tasks: int, rows: int) -> None:
    torch.set_num_threads(threads)
    data = load_suite("synthetic-groups", seed=0, num_tasks=tasks, num_groups=2, train_per_task=rows, test_per_task=50)
    x, y, task = data.train.gather(torch.arange(len(data.train)))
    classes = int(data.num_classes)
    rates: dict[str, list[float]] = {"raw loop": [], "trainer": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            rates["raw loop"].append(raw_epoch(x, y, task, tasks, classes, 128, r))
            rates["trainer"].append(trainer_epoch(data, {"batch_size": 128, "threads": threads, "seed": r}, Path(tmp) / "run"))
    raw = statistics.median(rates["raw loop"])
    print(f"shared-bottom MLP (3 x 64 units), {tasks} tasks, {x.shape[0]:,} training rows, batch 128, Adam, "
          f"{threads} thread(s), median of {rounds} interleaved rounds (torch {torch.__version__})")
    print("\n| loop | samples/s | vs raw loop |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:,.0f} | {rate / raw:.2f}x |")


if __name__ == "__main__":
    main()

"""The Table 2 network alone and in populations on one device: aggregate samples/s, projected Table 2 time.

    python benchmarks/gpu_population.py --device cuda --sizes 1,10,50 --batches 60

Fashion-MNIST-shaped IDX files of the real size (60,000 training and 10,000 test images, random
pixels: the speed does not depend on them) are written to a temporary folder, so the machine needs
no download. The network is Table 2's "separate optimizers" row (``suites/reexamining-table2-fmnist.toml``:
the ``reexamining-fmnist`` preset, fc1-fc3 routed, augmentation on, channels_last); a population of P
is P seeds of it trained together (``suite run --population P`` trains the seeds of one row so).
Each configuration trains ``--batches`` batches after ``--warmup`` batches, with deterministic
CUDA kernels and without (``--deterministic`` / ``--nondeterministic``), interleaved round by
round, and the median of the rounds is reported. The projected Table 2 time is its 50 trials' 50
epochs of 60,000 rows at each configuration's aggregate rate: the rows are 10 networks of five
seeds each, so a population of P > 5 would mix rows of different shapes and the projection for
P > 5 is what the rate would give if they stacked.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

from routing_rl.data.idx import write_idx
from routing_rl.training import Trainer
from routing_rl.training.loop.population import Population
from routing_rl.training.setup.composition import configure

TABLE2_SAMPLES = 50 * 50 * 60_000 * 0.9
"""Training rows of the whole Table 2: 50 trials x 50 epochs x the 54,000 rows left after the 10% validation hold-out."""


def write_fake_fmnist(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def members(size: int, device: str, deterministic: bool, data: Path, root: Path, batches: int) -> list[Trainer]:
    out = []
    for seed in range(size):
        parts = configure({"preset": "reexamining-fmnist", "agent": "wpl", "channels_last": True,
                           "agent_options": {"variant": "public-code-corrected", "parameterization": "softmax"},
                           "env_options": {"verify": False, "augment": True}, "device": device, "deterministic": deterministic,
                           "data_dir": str(data), "seed": seed, "epochs": 1, "max_batches_per_epoch": batches,
                           "logdir": str(root / f"p{size}-s{seed}"), "threads": 1})  # fmt: skip
        trainer = Trainer(parts, parts.load_data())
        trainer.prepare_run_dir(resume=False, overwrite=True)
        out.append(trainer)
    return out


def rate(trainers: list[Trainer], warmup: int) -> float:
    """Aggregate training samples/s of ``trainers`` (one alone, or a population) after ``warmup`` batches."""
    feeds = [t.begin_train_epoch(1) for t in trainers]
    population = Population(trainers) if len(trainers) > 1 else None
    network = None
    from routing_rl.network.population import PopulationNetwork
    from routing_rl.training.loop.population import STACK_FROM, play, update

    if population is not None:
        network = PopulationNetwork([t.learner.network for t in trainers], STACK_FROM)  # type: ignore[attr-defined]
    samples, start, step = 0, 0.0, 0
    while True:
        batches = [t.next_batch(f) for t, f in zip(trainers, feeds)]
        if any(b is None for b in batches):
            break
        if step == warmup:
            if trainers[0].device.type == "cuda":
                torch.cuda.synchronize()
            start, samples = time.perf_counter(), 0
        steps = play(network, trainers, batches, 1) if network is not None else [trainers[0].learner.train_step(batches[0], 1)]
        for t, f, s, b in zip(trainers, feeds, steps, batches):
            t.account(f, s, b)  # as the trainer does: counts the batch (--max-batches) and checks for divergence
        for t in trainers:
            t.zero_grad()
        torch.stack([s.loss for s in steps]).sum().backward()
        update(trainers, steps)  # as a population steps (alone: one member's own optimizers)
        samples += sum(b.size for b in batches)  # type: ignore[union-attr]
        step += 1
    if trainers[0].device.type == "cuda":
        torch.cuda.synchronize()
    return samples / (time.perf_counter() - start)


@click.command()
@click.option("--device", default="cuda", show_default=True)
@click.option("--sizes", default="1,10,50", show_default=True)
@click.option("--batches", default=60, show_default=True, help="Timed batches per configuration and round.")
@click.option("--warmup", default=10, show_default=True)
@click.option("--rounds", default=2, show_default=True)
def main(device: str, sizes: str, batches: int, warmup: int, rounds: int) -> None:
    counts = [int(s) for s in sizes.split(",")]
    rates: dict[tuple[int, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_fake_fmnist(Path(tmp) / "fmnist")
        for _ in range(rounds):
            for size in counts:
                for deterministic in (True, False):
                    trainers = members(size, device, deterministic, data, Path(tmp) / "runs", batches + warmup)
                    rates.setdefault((size, deterministic), []).append(rate(trainers, warmup))
                    del trainers
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"Table 2 network (separate optimizers row), {name}, torch {torch.__version__}, {batches} batches of 128 after {warmup}, "
          f"median of {rounds} rounds")  # fmt: skip
    print("\n| trials together | kernels | samples/s (all trials) | vs one alone | projected Table 2 (50 trials x 50 epochs) |")
    print("|---:|---|---:|---:|---:|")
    for size in counts:
        for deterministic in (True, False):
            value = statistics.median(rates[(size, deterministic)])
            alone = statistics.median(rates.get((1, deterministic), [value]))
            print(f"| {size} | {'deterministic' if deterministic else 'nondeterministic'} | {value:,.0f} | {value / alone:.2f}x "
                  f"| {TABLE2_SAMPLES / value / 60:,.0f} min |")


if __name__ == "__main__":
    main()

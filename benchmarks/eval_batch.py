"""Evaluation time of the Fashion-MNIST test split by evaluation batch size, interleaved in one process.

    python benchmarks/eval_batch.py --rounds 2

Smaller batches keep the convolution activations in cache; see benchmarks/README.md.
"""

from __future__ import annotations

import time

import click
import torch

from routing_rl.training import RunConfig, Trainer


@click.command()
@click.option("--rounds", default=2, show_default=True)
@click.option("--threads", default=1, show_default=True)
def main(rounds: int, threads: int) -> None:
    torch.set_num_threads(threads)
    trainers = {
        size: Trainer.from_config(RunConfig(agent="fixed-random", env="fmnist-mtl", epochs=1, eval_batch_size=size, logdir=f"/tmp/eval-batch-{size}"))
        for size in (128, 256, 512, 1024)
    }
    seconds: dict[int, list[float]] = {size: [] for size in trainers}
    for _ in range(rounds):
        for size, trainer in trainers.items():
            trainer.learner.eval_mode()
            start = time.perf_counter()
            trainer.evaluate(trainer.data.test, lambda batch, t=trainer: t.learner.predict(batch, 1))
            seconds[size].append(time.perf_counter() - start)
    print("| eval batch | seconds per round (test split, 19,000 rows) |")
    print("|---:|---|")
    for size, values in seconds.items():
        print(f"| {size:,} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()

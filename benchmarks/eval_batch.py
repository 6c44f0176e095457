"""Evaluation time of the Fashion-MNIST test split by evaluation batch size, interleaved in one process,
and whether the batch size changes any prediction of a trained network.

    python benchmarks/eval_batch.py --rounds 2
    python benchmarks/eval_batch.py --rounds 2 --run runs/suite-reexamining-table2-fmnist-retest/no-sharing-s0-...
    python benchmarks/eval_batch.py --rounds 3 --env files -e path=table.csv -e tasks=t0,t1,t2,t3 --agent wpl

Without ``--run`` the network is a freshly initialised one (``--agent``, ``fixed-random`` by
default) on ``--env`` (Fashion-MNIST by default; ``-e KEY=VALUE`` its options); with it, the trained
network of that run directory's last checkpoint (read only), on the run's own data and options, and
the table adds its test accuracy and how many of the test rows' predicted classes and logits differ
from those at the largest batch size. Smaller batches keep the convolution activations in cache;
see benchmarks/README.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
import torch

from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose
from routing_rl.training.records.io import load_checkpoint

SIZES = (128, 256, 512, 1024)


def make_trainer(run: Path | None, size: int, logdir: str, env: str = "fmnist-mtl", env_options: dict[str, str] | None = None,
                 agent: str = "fixed-random") -> Trainer:  # fmt: skip
    if run is None:
        config = RunConfig(agent=agent, env=env, env_options=env_options or {}, epochs=1, eval_batch_size=size, logdir=logdir)
        return Trainer(parts := compose(config), parts.load_data())
    stored = json.loads((run / "results.json").read_text())["config"]
    config = RunConfig.from_stored(stored, eval_batch_size=size, logdir=logdir, threads=None)
    trainer = Trainer(parts := compose(config), parts.load_data())
    trainer.learner.load_state(load_checkpoint(run / "checkpoint.pt"))
    return trainer


def test_outputs(trainer: Trainer, epoch: int) -> tuple[float, torch.Tensor]:
    """Seconds to evaluate the test split, and its outputs in row order."""
    trainer.learner.eval_mode()
    outputs: list[torch.Tensor] = []

    def predict(batch):  # type: ignore[no-untyped-def]
        out = trainer.learner.predict(batch, epoch)
        outputs.append(out.detach())
        return out

    start = time.perf_counter()
    with torch.no_grad():
        trainer.evaluate(trainer.data.test, predict)
    return time.perf_counter() - start, torch.cat(outputs)


@click.command()
@click.option("--rounds", default=2, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--run", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A finished run directory whose trained network to evaluate.")  # fmt: skip
@click.option("--env", default="fmnist-mtl", show_default=True, help="The data of an untrained network (without --run).")
@click.option("-e", "env_option", multiple=True, help="KEY=VALUE options of --env.")
@click.option("--agent", default="fixed-random", show_default=True, help="The router of an untrained network (without --run).")
def main(rounds: int, threads: int, run: Path | None, env: str, env_option: tuple[str, ...], agent: str) -> None:
    torch.set_num_threads(threads)
    env_options = dict(item.split("=", 1) for item in env_option)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {size: make_trainer(run, size, f"{tmp}/eval-batch-{size}", env, env_options, agent) for size in SIZES}
        epoch = trainers[SIZES[0]].config.epochs
        seconds: dict[int, list[float]] = {size: [] for size in trainers}
        outputs: dict[int, torch.Tensor] = {}
        for _ in range(rounds):
            for size, trainer in trainers.items():
                elapsed, outputs[size] = test_outputs(trainer, epoch)
                seconds[size].append(elapsed)
    reference = outputs[SIZES[-1]]
    rows = reference.shape[0]
    print(f"test split, {rows:,} rows, {threads} thread(s); {'trained network of ' + run.name if run else f'untrained {agent} network on {env}'}")
    print("\n| eval batch | seconds per round | rows whose predicted class differs from batch 1,024's | largest logit difference |")
    print("|---:|---|---:|---:|")
    for size, values in seconds.items():
        changed = int((outputs[size].argmax(1) != reference.argmax(1)).sum())
        diff = float((outputs[size] - reference).abs().max())
        print(f"| {size:,} | {', '.join(f'{v:.2f}' for v in values)} | {changed} | {diff:.2e} |")


if __name__ == "__main__":
    main()

"""Do "portable" kernel settings make two instruction-set settings of one CPU give the same numbers,
and what do they cost?

The same seed gives other numbers on another CPU kind: torch's own (ATen) kernels, MKL and oneDNN
each choose their code by the CPU. This trains the first ``--batches`` batches of the kept Table 2
trial ``separate-optimizers-s2`` (conv1-3 and routed fc1-fc3, separate Adam optimizers, one epoch
cut short, then evaluation on the full validation and test splits) once per setting, each in its
own process since the variables are read when torch loads: torch's kernels at
``ATEN_CPU_CAPABILITY=default`` and at ``avx2``, each without and with the "portable" settings of
MKL (``MKL_CBWR``: conditional numerical reproducibility; ``MKL_ENABLE_INSTRUCTIONS``) and oneDNN
(``ONEDNN_MAX_CPU_ISA``). Settings run in turn, round after round (the order reversed every other
round), so machine noise hits them alike. It prints, per portable setting, the test mean at each
capability, whether every per-task test score is the same to the last bit across the two
capabilities, the first training batch whose loss differs, and the training speed (median
samples/s over rounds).

    python benchmarks/portable_kernels.py --batches 200 --rounds 2 --threads 1

Fashion-MNIST is read from the system's copy (``dataset-fashion-mnist``) or ``--data-dir``; without
it the script writes a small synthetic set in the same files (class templates plus noise).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
TRIAL = ROOT / "results" / "reexamining-table2-fmnist" / "separate-optimizers-s2-66a1da4165"
CAPABILITIES = ("default", "avx2")
PORTABLE: dict[str, dict[str, str]] = {
    "none": {},
    "MKL_CBWR=COMPATIBLE, ONEDNN_MAX_CPU_ISA=AVX2": {"MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "MKL_CBWR=AVX2,STRICT, ONEDNN_MAX_CPU_ISA=AVX2": {"MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "MKL_ENABLE_INSTRUCTIONS=AVX2, ONEDNN_MAX_CPU_ISA=AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
CONTROLLED = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def write_synthetic_fmnist(directory: Path, per_class: int = 600, seed: int = 0) -> Path:
    """Fashion-MNIST's four IDX files with ``per_class`` images per class in train and in test: a
    random template per class plus noise, so that the tasks can be learned."""
    import numpy as np

    from routing_rl.data.idx import write_idx

    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, (10, 28, 28))
    for prefix in ("train", "t10k"):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = np.clip(templates[labels] * 0.5 + rng.uniform(0, 128, (labels.size, 28, 28)), 0, 255).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


def train_one(batches: int, threads: int, data_dir: str | None, synthetic: bool) -> None:
    """One setting: train, evaluate, print one JSON line (the variables are already in the environment)."""
    import torch

    from routing_rl.training import RunConfig, Trainer
    from routing_rl.training.setup.composition import compose
    from routing_rl.training.records.machine import machine

    stored = json.loads((TRIAL / "results.json").read_text())
    with tempfile.TemporaryDirectory() as logdir:
        env_options = {**stored["config"]["env_options"], **({"verify": False} if synthetic else {})}
        config = RunConfig.from_stored(stored["config"], logdir=logdir, threads=threads, epochs=1,
                                       max_batches_per_epoch=batches, data_dir=data_dir, env_options=env_options)  # fmt: skip
        trainer = Trainer(parts := compose(config), parts.load_data())
        losses: list[float] = []
        trainer.callbacks.on_batch = lambda n, loss: losses.append(loss)
        trainer.prepare_run_dir(resume=False, overwrite=True)
        epoch = trainer.fit()["epochs"][0]
    print(json.dumps({
        "capability": torch.backends.cpu.get_cpu_capability(), "machine": machine(torch.device("cpu")),
        "test_per_task": epoch["test"]["per_task"], "test_mean": epoch["test"]["mean"], "losses": losses,
        "samples_per_second": epoch["samples_per_second"],
    }))  # fmt: skip


def run_setting(capability: str, portable: dict[str, str], batches: int, threads: int, data_dir: str | None, synthetic: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(ATEN_CPU_CAPABILITY=capability, **portable)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    command = [sys.executable, __file__, "--child", "--batches", str(batches), "--threads", str(threads)]
    if data_dir:
        command += ["--data-dir", data_dir]
    if synthetic:
        command += ["--synthetic"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"ATEN_CPU_CAPABILITY={capability} {portable}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_difference(a: list[float], b: list[float]) -> str:
    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)
    return "none" if index is None else str(index + 1)


@click.command()
@click.option("--batches", default=200, show_default=True, help="Training batches of 128 before the evaluation.")
@click.option("--rounds", default=2, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--data-dir", default=None, help="Fashion-MNIST's files (default: the system's copy, else a synthetic set).")
@click.option("--synthetic", is_flag=True, help="Train on synthetic Fashion-MNIST files even where the real ones are found.")
@click.option("--per-class", default=600, show_default=True, help="Images per class of the synthetic files.")
@click.option("--only", multiple=True, type=click.Choice(list(PORTABLE)), help="Run only these portable settings.")
@click.option("--child", is_flag=True, hidden=True)
def main(batches: int, rounds: int, threads: int, data_dir: str | None, synthetic: bool, per_class: int,
         only: tuple[str, ...], child: bool) -> None:  # fmt: skip
    if child:
        train_one(batches, threads, data_dir, synthetic)
        return
    data = "Fashion-MNIST"
    scratch = None
    if synthetic or data_dir is None and not (SYSTEM_FMNIST / "train-images-idx3-ubyte.gz").exists():
        scratch = tempfile.TemporaryDirectory()
        data_dir, synthetic = str(write_synthetic_fmnist(Path(scratch.name), per_class)), True
        data = f"synthetic Fashion-MNIST files ({per_class} images per class: templates plus noise)"
    settings = [(name, cap) for name in (only or PORTABLE) for cap in CAPABILITIES]
    found: dict[tuple[str, str], list[dict]] = {s: [] for s in settings}
    for r in range(rounds):
        for name, cap in settings if r % 2 == 0 else reversed(settings):
            found[(name, cap)].append(run_setting(cap, PORTABLE[name], batches, threads, data_dir, synthetic))
            print(f"round {r + 1}: {name} / {cap}: test {found[(name, cap)][-1]['test_mean']:.4f}", file=sys.stderr)
    first = found[settings[0]][0]["machine"]
    print(f"{batches} batches of separate-optimizers-s2 on {data}, {threads} thread(s), {rounds} rounds; "
          f"CPU {first['cpu_model']} ({' '.join(first['cpu_flags'] or [])}), torch capabilities "
          + ", ".join(f"{cap}: {found[(settings[0][0], cap)][0]['capability']}" for cap in CAPABILITIES))  # fmt: skip
    base = {cap: statistics.median(x["samples_per_second"] for x in found[(settings[0][0], cap)]) for cap in CAPABILITIES}
    print()
    print("| portable settings | test mean, default | test mean, avx2 | per-task test default = avx2 | first batch loss that differs "
          "| same across rounds | samples/s default | samples/s avx2 | vs first row (default, avx2) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in settings):
        d, a = found[(name, "default")], found[(name, "avx2")]
        same = d[0]["test_per_task"] == a[0]["test_per_task"]
        repeat = all(x["test_per_task"] == runs[0]["test_per_task"] and x["losses"] == runs[0]["losses"] for runs in (d, a) for x in runs)
        speed = {cap: statistics.median(x["samples_per_second"] for x in found[(name, cap)]) for cap in CAPABILITIES}
        print(f"| {name} | {d[0]['test_mean']:.4f} | {a[0]['test_mean']:.4f} | {'yes' if same else 'no'} "
              f"| {first_difference(d[0]['losses'], a[0]['losses'])} | {'yes' if repeat else 'no'} "
              f"| {speed['default']:,.0f} | {speed['avx2']:,.0f} "
              f"| {speed['default'] / base['default']:.2f}x, {speed['avx2'] / base['avx2']:.2f}x |")  # fmt: skip
    others = [n for n in dict.fromkeys(n for n, _ in settings) if n != settings[0][0]]
    for cap in CAPABILITIES:
        ref = found[(settings[0][0], cap)][0]["test_per_task"]
        changed = [n for n in others if found[(n, cap)][0]["test_per_task"] != ref]
        print(f"\n{cap}: the portable settings change the scores of {', '.join(changed) if changed else 'none'}")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()

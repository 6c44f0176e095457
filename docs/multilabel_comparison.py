"""Routers and the SNR paper's models on multilabel-synthetic at matched size; prints the table of docs/measurements.md.

Every method has about 25k trainable parameters (the sizes of docs/snr_results.md; the routed
networks: three routed FC layers of 4 blocks x 46 units), trains 50 epochs with Adam at lr 1e-3
and batch 128, for seeds 0, 1, 2. Runs go to runs/mlc/<method>-s<seed> (complete runs are kept, so
an interrupted invocation resumes); then each method is compared with shared-bottom-mlp by
`routing-rl compare` (one-tailed two-sample t-test on the last epoch's test macro MAP@10).

    python docs/multilabel_comparison.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

COMMON = ["--env", "multilabel-synthetic", "--epochs", "50", "--quiet", "--threads", "1"]
ROUTED = ["--hidden", "46", "--blocks", "4"]
METHODS = {
    "wpl": ["--agent", "wpl", "--separate-optimizers", "--router-lr", "0.02", *ROUTED],
    "fixed-random": ["--agent", "fixed-random", *ROUTED],
    "hard-concrete": ["--agent", "hard-concrete", *ROUTED],
    "snr-trans": ["--agent", "snr-trans", "-o", "hidden_sizes=32,23"],
    "snr-aver": ["--agent", "snr-aver"],
    "mmoe": ["--agent", "mmoe", "-o", "shared_hidden=64", "-o", "expert_hidden=31"],
    "shared-bottom-mlp": ["--agent", "shared-bottom-mlp", "-o", "hidden_sizes=128,88"],
}
SEEDS = (0, 1, 2)
BASELINE = "shared-bottom-mlp"
ROOT = Path("runs/mlc")


def run_dir(method: str, seed: int) -> Path:
    return ROOT / f"{method}-s{seed}"


def ensure_run(method: str, seed: int) -> dict:
    path = run_dir(method, seed)
    results = path / "results.json"
    if not (results.exists() and json.loads(results.read_text())["status"] == "complete"):
        command = [sys.executable, "-m", "routing_rl", "run", *COMMON, *METHODS[method], "--seed", str(seed), "--logdir", str(path), "--overwrite"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(results.read_text())


def compare(method: str) -> dict:
    args = [x for s in SEEDS for x in ("--a", str(run_dir(method, s)))]
    args += [x for s in SEEDS for x in ("--b", str(run_dir(BASELINE, s)))]
    done = subprocess.run([sys.executable, "-m", "routing_rl", "compare", *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    all_runs = {method: [ensure_run(method, s) for s in SEEDS] for method in METHODS}
    rows = []
    for method, runs in all_runs.items():
        macro = [r["final"]["last"]["test_mean"] for r in runs]
        micro = [r["final"]["last"]["test_micro"] for r in runs]
        params = runs[0]["final"]["parameters"]
        seconds = statistics.mean(r["final"]["mean_train_seconds_per_epoch"] for r in runs)
        p = "baseline" if method == BASELINE else f"{compare(method)['p_value']:.3g}"
        rows.append(f"| {method} | {params['train']:,} | {params['serving']:,} | {statistics.mean(macro):.4f} ± {statistics.stdev(macro):.4f} "
                    f"| {statistics.mean(micro):.4f} ± {statistics.stdev(micro):.4f} | {p} | {seconds:.2f} |")  # fmt: skip
    print("| `--agent` | train params | serving params | test macro MAP@10 | test micro MAP@10 | p (better than shared-bottom-mlp) | train s/epoch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())

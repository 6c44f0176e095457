"""Re-run a finished run from its stored options with the code as it is now, and say whether its
per-task validation and test scores come out the same, to the last bit, or, where this machine is
of another CPU kind than the one on record, whether the re-run falls within the seed spread of its
suite row.

    python docs/rerun_trial.py results/reexamining-table2-fmnist/separate-optimizers-s2-66a1da4165 --out /tmp/rerun --epochs 1

Same seed, same numbers holds on the same CPU kind (CPU model, instruction sets and the capability
of torch's own kernels; ``provenance.machine`` of results.json, ``routing_rl/training/records/machine.py``)
with the same torch version. Across CPU kinds the kernels of torch, MKL and oneDNN differ and early
epochs amplify their last bits: the first epoch of ``separate-optimizers-s2`` re-trained on an
AVX-512 CPU with the commit that trained it ended at test accuracy 0.5557 against 0.4907 on record.
There the bit-for-bit comparison is still printed, but the verdict is whether the re-run's test
mean at the last compared epoch falls within mean ± 2 std of the other seeds of the same row at
that epoch (the trials beside it, ``<row>-s<seed>-<hash>``, whose options differ only in the seed).

``--epochs N`` re-trains and compares the first N epochs only (every epoch's randomness is seeded
from the seed and the epoch, so they do not depend on how many follow). A suite's trials may have
been trained by earlier commits (``provenance.git_commit`` says which). Losses are not compared
(their last bits depend on the evaluation batch).

Exit status: 0 when every compared score is the same to the last bit, or, on another CPU kind, the
re-run is within the row's seed spread; 1 when scores differ on the same CPU kind, fall outside the
spread, or differ with no spread to compare with.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import click
import torch

from routing_rl.training import RunConfig, Trainer, load_results
from routing_rl.training.setup.composition import compose
from routing_rl.training.records.machine import describe, machine, same_cpu_kind

TRIAL_NAME = re.compile(r"^(?P<row>.+)-s(?P<seed>\d+)-(?P<hash>[0-9a-f]+)$")
"""A suite trial's folder name: its row (run), seed and configuration hash."""

NOT_OPTIONS = {"seed", "logdir", "data_dir", "threads", "device"}
"""Config keys in which the seeds of one suite row may differ."""


def training_machines(stored: dict[str, Any], epochs: int) -> list[dict[str, Any] | None]:
    """The machine records of whatever trained epochs 1..``epochs``: the first start's, and each
    resume's that began at or before ``epochs`` (None for a record written before they existed)."""
    prov = stored.get("provenance", {})
    found = [prov.get("machine")]
    found += [r.get("machine") for r in prov.get("resumes", []) if r.get("epoch", epochs + 1) <= epochs]
    return found


def siblings(run: Path, stored: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The other seeds of ``run``'s suite row beside it: folders ``<row>-s<k>-<hash>`` with a
    results.json whose options equal the run's apart from the seed (and paths, threads, device)."""
    match = TRIAL_NAME.match(run.name)
    if match is None:
        return []
    mine = stored["config"]
    found = []
    for other in sorted(run.parent.iterdir()):
        m = TRIAL_NAME.match(other.name)
        if other == run or m is None or m["row"] != match["row"] or not (other / "results.json").exists():
            continue
        results = json.loads((other / "results.json").read_text())
        theirs = results.get("config", {})
        shared = (set(mine) & set(theirs)) - NOT_OPTIONS
        if theirs.get("seed") != mine.get("seed") and all(mine[k] == theirs[k] for k in shared):
            found.append((other.name, results))
    return found


def recorded_test_mean(results: dict[str, Any], epoch: int) -> float | None:
    """The test mean a run recorded at ``epoch``, or None where it did not reach it."""
    for record in results.get("epochs", []):
        if record["epoch"] == epoch:
            return record["test"]["mean"]
    return None


def compare_epochs(stored: list[dict[str, Any]], again: list[dict[str, Any]]) -> bool:
    """Print each epoch's val and test means then and now; True when every per-task score is equal."""
    same = True
    for old, new in zip(stored, again, strict=True):
        for split in ("val", "test"):
            equal = old[split]["per_task"] == new[split]["per_task"]
            same &= equal
            click.echo(f"epoch {old['epoch']} {split}: {old[split]['mean']:.4f} then, {new[split]['mean']:.4f} now"
                       f"{'' if equal else '  DIFFERENT'}")  # fmt: skip
    return same


def within_seed_spread(run: Path, stored: dict[str, Any], epoch: int, value: float) -> bool:
    """Print the re-run's test mean at ``epoch`` against the other seeds of its row; True when it
    lies within their mean ± 2 std (at least two other seeds needed)."""
    metric = stored["metric"]["name"]
    others = [(name, recorded_test_mean(results, epoch)) for name, results in siblings(run, stored)]
    others = [(name, v) for name, v in others if v is not None]
    if len(others) < 2:
        click.echo(f"no seed spread to compare with: {len(others)} other seed(s) of this row with epoch {epoch} "
                   "lie beside it (suite trials named <row>-s<seed>-<hash>, same options but the seed)")  # fmt: skip
        return False
    values = [v for _, v in others]
    mean, std = statistics.mean(values), statistics.stdev(values)
    low, high = mean - 2 * std, mean + 2 * std
    recorded = recorded_test_mean(stored, epoch)
    click.echo(f"test {metric} at epoch {epoch}: {value:.4f} now, {recorded:.4f} on record; the other {len(values)} "
               f"seeds of the row: {mean:.4f} ± {std:.4f} (std), so mean ± 2 std is [{low:.4f}, {high:.4f}]")  # fmt: skip
    inside = low <= value <= high
    click.echo(f"the re-run is {'within' if inside else 'OUTSIDE'} the row's seed spread "
               f"(a rough check: {len(values)} seeds)")  # fmt: skip
    return inside


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Where the re-run writes its run directory.")
@click.option("--threads", default=1, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Re-train and compare only the first N epochs.")
def main(run: Path, out: Path, threads: int, epochs: int | None) -> None:
    stored = dict(load_results(run))
    recorded = stored["epochs"]
    if not recorded:
        raise click.ClickException(f"{run} records no epoch to compare with")
    last = recorded[-1]["epoch"]
    if epochs is not None and epochs > last:
        raise click.ClickException(f"--epochs {epochs}: {run.name} records {last} epoch(s)")
    n = epochs if epochs is not None else last
    config = RunConfig.from_stored(stored["config"], logdir=str(out), threads=threads, epochs=n)
    trainer = Trainer(parts := compose(config), parts.load_data())
    trainer.prepare_run_dir(resume=False, overwrite=True)
    again = trainer.fit()

    prov = stored["provenance"]
    now = machine(trainer.device)
    then = training_machines(stored, n)
    torch_then, torch_now = prov.get("torch_version"), str(torch.__version__)
    same_kind = all(same_cpu_kind(m, now) for m in then) and torch_then == torch_now and prov.get("device") == str(trainer.device)
    if trainer.device.type == "cuda":  # and the same GPU model
        same_kind &= all((m or {}).get("cuda_device") == now.get("cuda_device") for m in then)
    commit = prov.get("git_commit")
    click.echo(f"{run.name}: trained at {commit[:7] if commit else 'an unknown commit'} on {describe(then[0])} "
               f"with torch {torch_then}; re-run on {describe(now)} with torch {torch_now}")  # fmt: skip
    if not same_kind:
        unknown = any(m is None or "cpu_model" not in m for m in then)
        why = ("the record does not name the CPU that trained it (written before results.json recorded the machine)"
               if unknown else "this is not the CPU kind (or torch version) on record")  # fmt: skip
        click.echo(f"{why}: kernels differ between CPU kinds and early epochs amplify their last bits, so the scores "
                   "are not expected to match to the last bit")  # fmt: skip
    same = compare_epochs(recorded[:n], again["epochs"])
    if same:
        click.echo(f"{run.name}: every per-task score the same" + ("" if same_kind else ", even so"))
        raise SystemExit(0)
    if same_kind:
        click.echo(f"{run.name}: scores differ on the CPU kind on record: the code no longer gives the recorded numbers")
        raise SystemExit(1)
    click.echo(f"{run.name}: scores differ, as they may on another CPU kind; against the seed spread of its row:")
    raise SystemExit(0 if within_seed_spread(run, stored, n, again["epochs"][-1]["test"]["mean"]) else 1)


if __name__ == "__main__":
    main()

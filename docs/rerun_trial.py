"""Re-run a finished run from its stored options with the code as it is now, and say whether every
epoch's per-task validation and test scores come out the same, to the last bit.

    python docs/rerun_trial.py runs/suite-reexamining-table2-fmnist-retest/corrected-s0-b3e61a4bc7 --out /tmp/rerun

It checks that published numbers still come out of the committed code: a suite's trials may have
been trained by earlier commits of a suite that spans releases (``provenance.git_commit`` of each
results.json says which). Losses are not compared (their last bits depend on the evaluation batch).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from routing_rl.training import RunConfig, Trainer


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Where the re-run writes its run directory.")
@click.option("--threads", default=1, show_default=True)
def main(run: Path, out: Path, threads: int) -> None:
    stored = json.loads((run / "results.json").read_text())
    config = RunConfig.from_stored(stored["config"], logdir=str(out), threads=threads)
    trainer = Trainer.from_config(config)
    trainer.prepare_run_dir(resume=False, overwrite=True)
    again = trainer.fit()
    same = True
    for old, new in zip(stored["epochs"], again["epochs"], strict=True):
        for split in ("val", "test"):
            equal = old[split]["per_task"] == new[split]["per_task"]
            same &= equal
            click.echo(f"epoch {old['epoch']} {split}: {old[split]['mean']:.4f} then, {new[split]['mean']:.4f} now"
                       f"{'' if equal else '  DIFFERENT'}")  # fmt: skip
    commit = stored["provenance"].get("git_commit")
    click.echo(f"{run.name} (trained at {commit[:7] if commit else 'an unknown commit'}): "
               f"{'every per-task score the same' if same else 'scores differ'}")  # fmt: skip
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()

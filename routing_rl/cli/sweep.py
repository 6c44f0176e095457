"""``routing-rl sweep``: train a sweep file's random search (for each grid point) and report each
point's top k (:mod:`routing_rl.suites.sweep`)."""

from __future__ import annotations

from pathlib import Path

import click

from routing_rl.cli.common import CheckedPath, quiet_trials_option, trial_threads_option
from routing_rl.suites.spec import SuiteError
from routing_rl.suites.sweep import SUMMARY, load_sweep_file, markdown, summarize


@click.command("sweep")
@click.argument("sweep_file", type=CheckedPath(path_type=Path))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Trials trained at once.")
@trial_threads_option
@click.option("--trials", "trials", default=None, type=click.IntRange(min=1), help="Train only the first N trials of each grid point (the same draws as the file's full count).")
@click.option("--out", "out", default=None, type=CheckedPath(path_type=Path), help="Sweep directory (default: runs/sweep-<name>).")
@quiet_trials_option
def sweep(sweep_file: Path, workers: int, threads: int | None, trials: int | None, out: Path | None, quiet: bool) -> None:
    """Random search over SWEEP_FILE's space (for each grid point); report the top-k trials by
    validation and their test mean ± standard error."""
    from dataclasses import replace

    from routing_rl.suites.runner import TrialSetupError, run_local, trial_status, trial_threads
    from routing_rl.training.loop.progress_line import PROGRESS_EVERY
    from routing_rl.training.records.io import write_json, write_text

    try:
        spec = load_sweep_file(sweep_file)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    if trials is not None and trials > spec.trials:
        raise click.BadParameter(f"{sweep_file} draws {spec.trials} trials per point; give at most that many", param_hint="--trials")
    directory = out or Path("runs") / f"sweep-{spec.name}"
    drawn = [(replace(t, config=replace(t.config, threads=trial_threads(threads, t.config.threads))), chosen, label)
             for t, chosen, label in spec.draw(trials)]  # fmt: skip
    todo = [(t, directory / t.name) for t, _, _ in drawn if trial_status(directory / t.name) in ("new", "partial")]
    points = f" in {len(spec.grid)} grid points" if spec.grid else ""
    click.echo(f"sweep {spec.name}: {len(drawn)} trials{points}, {len(drawn) - len(todo)} finished, training {len(todo)}")
    try:
        run_local(todo, workers, lambda s: click.echo(f"  {Path(s['directory']).name}: {s['status']} ({s['seconds']:.0f} s)"),
                  None if quiet else PROGRESS_EVERY)  # fmt: skip
    except TrialSetupError as exc:  # a configuration error: running again would fail the same way
        raise click.ClickException(f"sweep stopped: {exc}; fix the option in {sweep_file} (finished trials are kept)") from None
    except Exception as exc:
        raise click.ClickException(f"sweep stopped: {type(exc).__name__}: {exc}; run the command again to continue") from None
    summary = summarize(spec, drawn, directory)
    text = markdown(summary, spec.space)
    write_json(directory / SUMMARY, summary)
    write_text(directory / "sweep.md", text)
    click.echo(text, nl=False)

"""``routing-rl suite init``, ``run`` and ``table``: a paper's table (or the standard battery on a user's data) as one command each."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import click

from routing_rl.cli.common import CheckedPath, quiet_trials_option, run_names, trial_threads_option
from routing_rl.suites.manifest import read_manifest
from routing_rl.suites.progress import UNFINISHED, remaining, set_up_seconds
from routing_rl.suites.populations import AUTO_POPULATION, DEFAULT_POPULATION, MAX_POPULATION
from routing_rl.suites.runner import TrialSetupError, check_data, epochs_done, keep, plan, run_local, run_ray, trial_status, write_manifest
from routing_rl.suites.battery import BATTERY_METHODS
from routing_rl.suites.checks import MAX_TRIALS, path_name_problem
from routing_rl.suites.kept import KEPT_MANIFEST, kept_problem, read_kept_manifest
from routing_rl.training.setup.config import MAX_EPOCHS, RunConfig
from routing_rl.suites.spec import SuiteError, load_suite_file
from routing_rl.suites.table import build_table
from routing_rl.suites.table_text import markdown, to_csv


@click.group("suite")
def suite() -> None:
    """Suites of runs x seeds from a TOML file: run them (resumable, in parallel) and tabulate them."""


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


class PopulationSize(click.ParamType):
    """``--population``: ``auto`` or a whole number from 1 to :data:`MAX_POPULATION`."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            size = int(value)
            if 1 <= size <= MAX_POPULATION:
                return size
        elif isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        self.fail(f"{value!r} is neither auto nor a whole number from 1 to {MAX_POPULATION}", param, ctx)


@suite.command("run")
@click.argument("suite_file", type=CheckedPath(path_type=Path))
@click.option("--scale", default=None, help="Apply the suite's [scales.NAME] overrides (e.g. quick).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Trials trained at once (one process each).")
@trial_threads_option
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Local processes, or Ray Tune on a Ray cluster (CPUs per trial: its threads).")
@click.option("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local instance).")
@click.option("--out", "out", default=None, type=CheckedPath(path_type=Path), help="Suite directory (default: runs/suite-<name>[-<scale>]).")
@click.option("--runs", "only", default=None, help="Comma-separated run names: train only these runs' trials (default: every run).")
@click.option("--dry-run", is_flag=True, help="List the trials and their status; train nothing.")
@click.option("--retrain-altered", is_flag=True, help="Train again the kept trials whose results.json is not what `suite keep` recorded (default: refuse).")
@click.option("--population", default=DEFAULT_POPULATION, show_default=True, type=PopulationSize(),
              help=f"Train up to N trials together in one process: a run's seeds, and runs that differ only in router, rates, rewards or clipping "
                   f"(same numbers as alone, to rounding; 1: every trial alone; auto: up to {AUTO_POPULATION}, convolutional networks on a CPU alone).")  # fmt: skip
@quiet_trials_option
def run_suite(suite_file: Path, scale: str | None, workers: int, threads: int | None, backend: str, ray_address: str | None, out: Path | None,
              only: str | None, dry_run: bool, retrain_altered: bool, population: int | str, quiet: bool) -> None:  # fmt: skip
    """Train every trial of SUITE_FILE that is not finished: skip complete (or kept) ones, resume interrupted ones."""
    try:
        spec = load_suite_file(suite_file)
        directory = out or spec.directory(scale)
        trials = select_runs(plan(spec, scale, directory, threads, retrain_altered), spec, only)
    except SuiteError as exc:
        raise _fail(exc) from None
    counts: dict[str, int] = {}
    for _, _, status in trials:
        counts[status] = counts.get(status, 0) + 1
    click.echo(f"suite {spec.name}{f' ({scale})' if scale else ''}: {len(trials)} trials in {directory}: "
               + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))  # fmt: skip
    if dry_run:
        for trial, path, status in trials:
            done = epochs_done(path) if status == "partial" else None
            progress = f"  ({done} of {trial.config.epochs} epochs)" if done is not None else ""
            click.echo(f"  {status:<8} {path.name}{progress}")
    click.echo(remaining(trials, workers).summary())
    if dry_run:
        return
    todo = [(trial, path) for trial, path, status in trials if status in ("new", "partial")]
    try:
        check_data([trial for trial, _ in todo])  # a user's bad file stops here, before the suite directory exists
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest(spec, scale, [t for t, _, _ in trials], directory)
    except OSError as exc:
        raise click.ClickException(f"cannot use suite directory {directory}: {exc.strerror or exc}") from None
    from routing_rl.training.loop.progress_line import PROGRESS_EVERY

    start = time.perf_counter()
    done = [0]
    overheads: list[float] = []  # seconds trials of this session spent outside their epochs
    finished_epochs: dict[str, list[dict[str, Any]]] = {}
    alone_noted: set[str] = set()

    def report(summary: dict[str, Any]) -> None:
        done[0] += 1
        together = f", in a population of {summary['population']}" if summary.get("population", 1) > 1 else ""
        click.echo(f"[{done[0]}/{len(todo)}] {Path(summary['directory']).name}: {summary['status']} ({summary['seconds']:.0f} s{together})")
        if summary.get("alone") and summary["alone"] not in alone_noted:
            alone_noted.add(summary["alone"])
            click.echo(f"  trained alone, not in a population: {summary['alone']}")
        if (spent := set_up_seconds(summary)) is not None:
            overheads.append(spent)
        if done[0] < len(todo):
            now = [(t, p, trial_status(p) if s in UNFINISHED else s) for t, p, s in trials]
            overhead = statistics.median(overheads) if overheads else 0.0
            click.echo(remaining(now, workers, overhead, finished_epochs).summary())

    try:
        if backend == "ray" and todo:
            run_ray(todo, ray_address, report, population)
        elif backend == "local":
            run_local(todo, workers, report, None if quiet else PROGRESS_EVERY, population)
    except TrialSetupError as exc:  # a configuration error: running again would fail the same way
        raise click.ClickException(f"suite stopped: {exc}; fix the option in {suite_file} (finished trials are kept)") from None
    except Exception as exc:  # a trial's failure (bad data, a plugin) is reported, the others stay on disk
        raise click.ClickException(f"suite stopped: {type(exc).__name__}: {exc}; finished trials are kept, run the command again to continue") from None
    click.echo(f"{len(todo)} trials trained in {time.perf_counter() - start:.0f} s; `routing-rl suite table {directory}` tabulates them")


def select_runs(trials: list[Any], spec: Any, only: str | None) -> list[Any]:
    """The planned trials of the runs named by ``--runs`` (all when None); an unknown name is refused."""
    if only is None:
        return trials
    names = run_names(only, list(spec.runs), spec.source)
    return [t for t in trials if spec.split_row(t[0].run)[1] in names]


@suite.command("init")
@click.option("--env", required=True, help="The task suite to test (e.g. files, with -e path=DATA -e tasks=COL1,COL2).")
@click.option("--env-option", "-e", "env_option", multiple=True, metavar="KEY=VALUE", help="Task suite option; repeatable.")
@click.option("--out", "out", required=True, type=CheckedPath(path_type=Path, dir_okay=False), help="The suite file to write (TOML).")
@click.option("--name", default=None, help="The suite's name (default: the file's name without .toml).")
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=2, max=MAX_TRIALS // BATTERY_METHODS),
              help=f"Seeds per method (the t-tests need two at least; {BATTERY_METHODS} methods x seeds make at most {MAX_TRIALS:,} trials).")
@click.option("--epochs", default=None, type=click.IntRange(min=1, max=MAX_EPOCHS),
              help=f"Training epochs of every run (at most {MAX_EPOCHS}; default: 20, or as many as a small table needs for 800 batches).")
@click.option("--force", is_flag=True, help="Replace an existing suite file.")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your suites).")
def init_suite(env: str, env_option: tuple[str, ...], out: Path, name: str | None, seeds: int, epochs: int | None, force: bool,
               plugins: tuple[str, ...]) -> None:  # fmt: skip
    """Write the standard battery for the data of --env: shared bottom (the baseline), no sharing, fixed random, WPL,
    REINFORCE, hard-concrete, SNR-Trans and MMoE (models sized to the shared bottom's parameters)."""
    from routing_rl.cli.common import CommandLine, load_plugins
    from routing_rl.data import DataError
    from routing_rl.registry import UnknownNameError
    from routing_rl.suites.battery import write_battery
    from routing_rl.training.setup.composition import suite_class

    load_plugins(plugins)
    # every check before anything is written: a refused call leaves no file behind and replaces none
    if out.is_symlink():
        raise click.BadParameter(f"{out} is a symbolic link; give the path of a plain file", param_hint="--out")
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; give another --out, or --force to replace it")
    if out.exists() and not out.is_file():
        raise click.BadParameter(f"{out} exists and is not a file; give the path of a suite file to write", param_hint="--out")
    if reason := path_name_problem(name if name is not None else out.stem):
        raise click.BadParameter(f"{name if name is not None else out.stem!r} {reason}",
                                 param_hint="--name" if name is not None else "--out (its name is the suite's)")  # fmt: skip
    try:
        env_cls = suite_class(env)
        options = relative_to_suite_file(env_cls.parse_options(env_option), env_cls.path_options, out)
        path, sizes = write_battery(env_cls, options, out, name, seeds, epochs, " ".join(["routing-rl", *CommandLine.invoked_args]),
                                    verify=load_suite_file)  # what is written must parse, at every scale  # fmt: skip
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--env") from None
    except (DataError, SuiteError, ValueError) as exc:  # FileCheckError (a link appeared at --out) is a ValueError
        raise _fail(exc) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    length = f"{sizes['epochs']} epochs" + (f" of batches of {sizes['batch_size']}" if sizes["batch_size"] != RunConfig.batch_size else "")
    click.echo(f"wrote {path}: {BATTERY_METHODS} methods x {seeds} seeds, {length}, {scored(sizes['family'], sizes['metric'])}")
    click.echo("trainable parameters (every method sized to the shared bottom): "
               + ", ".join(f"{run} {n:,}" for run, n in sizes["parameters"].items()))  # fmt: skip
    for line in sizes["data"]:
        click.echo(f"  {line}")
    click.echo(f"next: routing-rl suite run {path}  then  routing-rl suite table {path}")


def table_references(trials: list[dict[str, Any]], baseline: str | None, directory: Path) -> Any:
    """The reference rows' maker for a suite of a user's files (majority guess and linear model on
    each seed's split), or None: the suites of papers have their papers' numbers instead."""
    from routing_rl.data import DataError
    from routing_rl.registry import UnknownNameError
    from routing_rl.suites.references import suite_references
    from routing_rl.training.setup.composition import suite_class

    mine = [t for t in trials if t["run"] == baseline and "config" in t]
    try:
        if not mine or not suite_class(mine[0]["config"]["env"]).path_options:
            return None
    except UnknownNameError:
        return None

    def make(results_of: dict[int, dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
        try:
            return suite_references(mine, directory, results_of)
        except (DataError, OSError) as exc:  # the data file moved or changed since the trials ran
            click.echo(f"warning: no reference rows: {exc}", err=True)
            return {}

    return make


def scored(family: str, metric: str) -> str:
    """How the battery's tasks are scored, as ``suite init`` says it."""
    if family == "mixed":
        return "tasks of mixed kinds, each scored by its own metric (the table compares methods by Delta-m)"
    return f"{family} tasks scored by {metric}"


def relative_to_suite_file(options: dict[str, Any], path_options: tuple[str, ...], out: Path) -> dict[str, Any]:
    """The data files named on the command line (relative to the current directory) as the suite
    file reads them: relative to its own folder, so the suite runs from any working directory."""
    moved = dict(options)
    for key in path_options:
        if moved.get(key) and not Path(str(moved[key])).is_absolute():
            moved[key] = os.path.relpath(Path(str(moved[key])).resolve(), out.resolve().parent)
    return moved


@suite.command("keep")
@click.argument("suite_file", type=CheckedPath(path_type=Path))
@click.option("--scale", default=None, help="The scale the suite was run at.")
@click.option("--out", "out", default=None, type=CheckedPath(path_type=Path), help="Suite directory (default: runs/suite-<name>[-<scale>]).")
def keep_suite(suite_file: Path, scale: str | None, out: Path | None) -> None:
    """Copy the results of SUITE_FILE's finished trials into its kept folder (``kept`` in [suite]), to commit with the project."""
    try:
        spec = load_suite_file(suite_file)
        if spec.kept is None:
            raise SuiteError(f"{suite_file}: [suite] names no kept folder; add kept = \"../results/{spec.name}\"")
        directory = out or spec.directory(scale)
        trials = plan(spec, scale, directory, retrain_altered=True)  # an altered kept trial is reported below, not a stop
        copied, problems, adopted = keep(trials, Path(spec.kept))
        recorded = read_kept_manifest(Path(spec.kept))
        kept = sum(1 for trial, _, _ in trials if not kept_problem(trial.name, Path(spec.kept), recorded))
    except SuiteError as exc:
        raise _fail(exc) from None
    except (OSError, ValueError) as exc:  # a full disk; a link planted where a kept file is written
        raise click.ClickException(f"cannot keep results in {spec.kept}: {getattr(exc, 'strerror', None) or exc}") from None
    if adopted:
        click.echo(f"recorded {adopted} trials kept before {KEPT_MANIFEST} existed in {Path(spec.kept) / KEPT_MANIFEST}, as they are now")
    click.echo(f"{len(copied)} trials copied into {spec.kept} ({kept} of {len(trials)} kept)")
    for name in copied:
        click.echo(f"  {name}")
    for problem in problems:
        click.echo(f"warning: not kept: {problem}", err=True)
    if problems:
        raise SystemExit(1)


@suite.command("table")
@click.argument("source", type=CheckedPath(path_type=Path))
@click.option("--scale", default=None, help="With a suite file: the scale it was run at.")
@click.option("--out", "out", default=None, type=CheckedPath(path_type=Path), help="Suite directory, with a suite file (default: runs/suite-<name>[-<scale>]).")
def table(source: Path, scale: str | None, out: Path | None) -> None:
    """Markdown and CSV table of a suite (SUITE_FILE or SUITE_DIR): written as table.md and table.csv in the suite directory."""
    try:
        if source.is_dir():
            directory = source
            manifest = read_manifest(source)
            trials, baseline, selection = manifest["trials"], manifest["suite"]["baseline"], manifest["suite"].get("metric", "last")
            reference, reference_source = manifest["suite"].get("reference", {}), manifest["suite"].get("reference_source", "")
            kept, test = manifest["suite"].get("kept"), manifest["suite"].get("test", "paired")
            settings = manifest["suite"].get("settings") or {}
        else:
            spec = load_suite_file(source)
            directory = out or spec.directory(scale)
            trials = [{"run": t.run, "seed": t.seed, "name": t.name, "config": t.config.to_dict()} for t in spec.trials(scale)]
            baseline, selection = spec.baseline, spec.metric
            reference, reference_source, kept, test = spec.reference, spec.reference_source, spec.kept, spec.test
            settings = spec.settings
    except SuiteError as exc:
        raise _fail(exc) from None
    damaged: list[str] = []
    try:
        if settings:  # a table per setting, Holm over them all, a ``setting`` column first in the CSV
            from routing_rl.suites.table import build_setting_tables
            from routing_rl.suites.table_text import settings_csv, settings_markdown

            tables = build_setting_tables(trials, directory, baseline, list(settings), selection, kept, damaged, test)
            rows = [r for t in tables for r in t.table.rows]
            text, csv_text = settings_markdown(tables, settings, baseline, selection), settings_csv(tables)
        else:
            result = build_table(trials, directory, baseline, selection, reference, kept, damaged, test,
                                 references=table_references(trials, baseline, directory))  # fmt: skip
            rows = result.rows
            text = markdown(rows, result.metric, result.higher, baseline, selection, reference_source, result.tasks, result.notes)
            csv_text = to_csv(rows)
    except SuiteError as exc:  # a kept trial that is not what was kept
        raise _fail(exc) from None
    for problem in damaged:
        click.echo(f"warning: {problem}; the trial is counted as unfinished: delete the file and "
                   "`routing-rl suite run` the suite again to retrain it", err=True)  # fmt: skip
    if not any(r.n for r in rows):
        raise click.ClickException(f"{directory} holds no finished trial of this suite; run `routing-rl suite run` first")
    from routing_rl.training.records.io import write_text

    try:
        write_text(directory / "table.md", text)
        write_text(directory / "table.csv", csv_text)
    except OSError as exc:
        raise click.ClickException(f"cannot write the table into {directory}: {exc.strerror or exc}") from None
    click.echo(text, nl=False)
    click.echo(f"(written to {directory / 'table.md'} and table.csv)")

"""The ``routing-rl`` command line: ``run`` trains and evaluates a router, ``list`` shows what exists.

Names are validated against the registries after plugins are imported, so user-defined routers
and task suites work exactly like the built-in ones. Bad input ends with a one-line error that
lists the valid choices and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def load_plugins(modules: tuple[str, ...]) -> None:
    """Import plugin modules (``--plugin``) and the ``routing_rl.plugins`` entry points, which register routers/suites."""
    import routing_rl.agents  # noqa: F401  (registers the built-in routers)
    import routing_rl.data  # noqa: F401  (registers the built-in task suites)

    for ep in entry_points(group="routing_rl.plugins"):
        ep.load()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import plugin module {module!r}: {exc}", param_hint="--plugin")
    from routing_rl.envs import register_gym_envs

    register_gym_envs()


def parse_value(raw: str, annotation: Any) -> Any:
    """Convert an option string to the annotated type (bool, int, float, str, Literal, Optional)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if raw not in [str(a) for a in args]:
            raise ValueError(f"must be one of {', '.join(map(str, args))}")
        return next(a for a in args if str(a) == raw)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if raw.lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(raw, inner[0]) if inner else raw
    if annotation is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if annotation in (int, float):
        return annotation(raw)
    return raw


def parse_options(pairs: tuple[str, ...], types: dict[str, Any], owner: str, flag: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` pairs against the option types of a router or task suite."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=flag)
        if key not in types:
            valid = ", ".join(sorted(types)) or "(none)"
            raise click.BadParameter(f"{owner} has no option {key!r}; valid options: {valid}", param_hint=flag)
        try:
            out[key] = parse_value(raw.strip(), types[key])
        except ValueError as exc:
            raise click.BadParameter(f"{key}={raw!r}: {exc}", param_hint=flag) from None
    return out


def suite_option_types(suite_cls: type) -> dict[str, Any]:
    """Keyword constructor options of a task suite (e.g. ``tasks``, ``groups`` of synthetic-groups)."""
    import inspect

    params = inspect.signature(suite_cls.__init__).parameters
    hints = typing.get_type_hints(suite_cls.__init__)
    return {n: hints.get(n, str) for n, p in params.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="routing-rl")
def main() -> None:
    """Routing networks for multi-task learning: learned and fixed routes on one interface."""


@main.command("list")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/envs).")
def list_command(plugins: tuple[str, ...]) -> None:
    """Show the task suites (envs) and routers (agents) that `run` accepts."""
    load_plugins(plugins)
    from routing_rl.agents import Router
    from routing_rl.data import TaskSuite

    click.echo("envs (--env NAME; options with -e KEY=VALUE):")
    for name, suite in TaskSuite.registry.items():
        click.echo(f"  {name:<24} {suite.gym_id}")
        click.echo(f"      {suite.description}")
        click.echo(f"      options: {', '.join(suite_option_types(suite)) or '(none)'}")
    click.echo("\nagents (--agent NAME; options with -o KEY=VALUE):")
    for name, router in Router.registry.items():
        click.echo(f"  {name:<24} {router.description}")
        options = router.option_types()
        if options:
            click.echo(f"      options: {', '.join(options)}")


@main.command("run")
@click.option("--agent", default="fixed-random", show_default=True, help="Router name (see `routing-rl list`).")
@click.option("--env", default="synthetic-groups", show_default=True, help="Task suite name (see `routing-rl list`).")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the block weights (Adam).")
@click.option("--router-lr", default=None, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the router (default: --lr).")
@click.option("--separate-optimizers/--single-optimizer", default=False, show_default=True, help="One Adam for weights and one for the router, or one for both (the public code).")
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0), help="Share every routed layer for N epochs before routing.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--routed", default="fc", show_default=True, help="Routed layers: none, all, fc, conv, or names like conv1,2,3 / conv3 / fc1,fc2.")
@click.option("--blocks", default=None, type=click.IntRange(min=1), help="Function blocks per routed layer (default: number of tasks).")
@click.option("--hidden", default=64, show_default=True, type=click.IntRange(min=1), help="Units of each FC block.")
@click.option("--filters", default=32, show_default=True, type=click.IntRange(min=1), help="Filters of each conv block.")
@click.option("--reward", type=click.Choice(["correct", "neg-loss"]), default="correct", show_default=True, help="Final reward: +1/-1 for a right/wrong prediction, or minus the loss.")
@click.option("--collab-reward", default=0.0, show_default=True, type=float, help="Collaboration reward rho: per-step bonus rho * frequency of the chosen block among the layer's recent decisions.")
@click.option("--collab-window", default=256, show_default=True, type=click.IntRange(min=1), help="How many recent decisions per layer the collaboration reward counts.")
@click.option("--observe-hidden", is_flag=True, help="Give routers the hidden representation too.")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--logdir", default=None, help="Run directory (default: runs/<env>-<agent>-routed_<layers>-seed<seed>).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Where the data files are (else $ROUTING_RL_DATA, then system locations).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--resume", is_flag=True, help="Continue the run in --logdir from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace a finished or interrupted run in --logdir.")
@click.option("--agent-option", "-o", "agent_option", multiple=True, metavar="KEY=VALUE", help="Router option (see `routing-rl list`); repeatable.")
@click.option("--env-option", "-e", "env_option", multiple=True, metavar="KEY=VALUE", help="Task suite option; repeatable.")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/envs).")
@click.option("--max-batches", default=None, type=click.IntRange(min=1), help="Stop each training epoch after N batches (smoke tests).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(**opts: Any) -> None:
    """Train a router and its routed network, evaluate every task, write results.json and TensorBoard logs."""
    load_plugins(opts.pop("plugins"))
    from routing_rl.agents import Router, RouterConfigError
    from routing_rl.data import DataError, TaskSuite, load_suite
    from routing_rl.network import SpecError
    from routing_rl.registry import UnknownNameError
    from routing_rl.training import RunConfig, RunExistsError, Trainer, TrainingDiverged
    from routing_rl.training.tb_logger import TensorBoardLogger

    console = Console(stderr=False)
    try:
        router_cls = Router.registry.get(opts["agent"])
        suite_cls = TaskSuite.registry.get(opts["env"])
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--agent" if exc.kind == "agent" else "--env") from None
    agent_options = parse_options(opts.pop("agent_option"), router_cls.option_types(), opts["agent"], "--agent-option")
    env_options = parse_options(opts.pop("env_option"), suite_option_types(suite_cls), opts["env"], "--env-option")
    resume, overwrite, quiet = opts.pop("resume"), opts.pop("overwrite"), opts.pop("quiet")
    max_batches = opts.pop("max_batches")
    config = RunConfig(**opts, agent_options=agent_options, env_options=env_options, max_batches_per_epoch=max_batches)
    try:
        data = load_suite(config.env, data_dir=config.data_dir, seed=config.seed, val_fraction=config.val_fraction, **env_options)
        trainer = Trainer(config, data)
        trainer.prepare_run_dir(resume=resume, overwrite=overwrite)
    except (DataError, SpecError, RouterConfigError, RunExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"[bold]{config.agent}[/] on [bold]{data.name}[/]: {data.num_tasks} tasks, "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test samples, "
        f"routed layers {trainer.network.routed_layer_names or 'none'} x {max(trainer.network.blocks_per_layer, default=0)} blocks, "
        f"device {trainer.device}, run dir {trainer.run_dir}"
    )
    if trainer.start_epoch > config.epochs:
        console.print(f"run already complete ({config.epochs} epochs); nothing to do")
    else:
        if trainer.start_epoch > 1:
            console.print(f"resuming at epoch {trainer.start_epoch}")
        _fit_with_progress(trainer, console, quiet, TensorBoardLogger, TrainingDiverged)
    print_results(trainer.results, console)


def _fit_with_progress(trainer: Any, console: Console, quiet: bool, logger_cls: Any, diverged: type[Exception]) -> None:
    from routing_rl.training import Callbacks

    n_train = len(trainer.data.train)
    if trainer.config.max_batches_per_epoch:
        n_train = min(n_train, trainer.config.max_batches_per_epoch * trainer.config.batch_size)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=True,
    )
    bar: dict[str, Any] = {}

    def start(epoch: int, total: int) -> None:
        bar["id"] = progress.add_task(f"epoch {epoch}/{total}", total=n_train, loss=float("nan"))

    def batch(n: int, loss: float) -> None:
        progress.update(bar["id"], advance=n, loss=loss)

    def end(record: dict[str, Any]) -> None:
        progress.remove_task(bar["id"])
        console.print(
            f"epoch {record['epoch']:3d}  loss {record['train_loss']:.4f}  val {record['val_accuracy_mean']:.4f}  "
            f"test {record['test_accuracy_mean']:.4f}  {record['train_seconds']:.1f}s ({record['samples_per_second']:.0f} samples/s)"
        )

    trainer.callbacks = Callbacks(start, batch, end)
    logger = logger_cls(trainer.run_dir / "tensorboard", purge_step=trainer.start_epoch)
    try:
        with progress:
            trainer.fit(logger)
    except diverged as exc:
        console.print(f"[red]Error:[/] {exc}")
        sys.exit(EXIT_DIVERGED)
    finally:
        logger.close()


def print_results(results: dict[str, Any], console: Console) -> None:
    """The per-task accuracy table of the last epoch, the best-validation epoch, and the routes."""
    if not results.get("epochs"):
        return
    final = results["final"]
    last = results["epochs"][-1]
    table = Table(title=f"{results['config']['agent']} on {results['env']['name']} (epoch {final['epoch']})")
    for col in ("task", "val acc", "test acc", "route"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for k, name in enumerate(results["env"]["task_names"]):
        route = final["routes"][k] if k < len(final["routes"]) else []
        table.add_row(f"{k} {name}", f"{last['val_accuracy'][k]:.4f}", f"{last['test_accuracy'][k]:.4f}", " ".join(map(str, route)))
    table.add_row("mean", f"{last['val_accuracy_mean']:.4f}", f"{last['test_accuracy_mean']:.4f}", "", style="bold")
    console.print(table)
    console.print(
        f"best validation epoch {final['best_val_epoch']}: val {final['best_val_accuracy_mean']:.4f}, "
        f"test {final['test_accuracy_mean_at_best_val']:.4f}; mean train time {final['mean_train_seconds_per_epoch']:.1f}s/epoch"
    )


@main.command("show")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def show_command(run_dir: Path) -> None:
    """Print the accuracy table of a finished or interrupted run."""
    from routing_rl.training import load_results

    try:
        results = load_results(run_dir)
    except FileNotFoundError:
        raise click.ClickException(f"{run_dir} has no results.json") from None
    print_results(results, Console())


def _attach_analyze() -> None:
    from routing_rl.analysis.report import analyze

    main.add_command(analyze)


_attach_analyze()

if __name__ == "__main__":
    main()

"""The ``routing-rl`` command line: ``run`` trains and evaluates a router, ``list`` shows what exists.

Names are validated against the registries after plugins are imported, so user-defined routers
and task suites work exactly like the built-in ones. Bad input ends with a one-line error that
lists the valid choices and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import collections.abc
import importlib
import sys
import types
import typing
from collections.abc import Callable
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
    import routing_rl.models  # noqa: F401  (registers the multi-task models of the SNR comparison)
    from routing_rl.data.multilabel import BUILTIN_SUITE_MODULES

    for suite_module in BUILTIN_SUITE_MODULES:  # registers the multi-label suites
        importlib.import_module(suite_module)

    for ep in entry_points(group="routing_rl.plugins"):
        ep.load()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import plugin module {module!r}: {exc}", param_hint="--plugin")
    from routing_rl.envs import register_gym_envs

    register_gym_envs()


SEQUENCE_ORIGINS = (list, tuple, collections.abc.Sequence)


def parse_value(raw: str, annotation: Any) -> Any:
    """Convert an option string to the annotated type.

    Handles bool, int, float, str, Literal, sequences (``64,32`` for ``Sequence[int]``, giving a
    tuple) and unions, whose members are tried in order (``int | Sequence[int]`` reads ``64`` as an
    int and ``64,32`` as a tuple; ``none`` is None where the union allows it).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if raw not in [str(a) for a in args]:
            raise ValueError(f"must be one of {', '.join(map(str, args))}")
        return next(a for a in args if str(a) == raw)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for member in inner:
            try:
                return parse_value(raw, member)
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ValueError(errors[0])
        return raw
    if origin in SEQUENCE_ORIGINS:
        item_type = args[0] if args else str
        items = tuple(parse_value(part.strip(), item_type) for part in raw.split(",") if part.strip())
        if not items:
            raise ValueError("expected comma-separated values, e.g. 64,32")
        return list(items) if origin is list else items
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


def _cli_parseable(annotation: Any) -> bool:
    """Whether :func:`parse_value` can build this type from a string (excludes e.g. ``torch.Generator``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal or annotation in (bool, int, float, str):
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_cli_parseable(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin in SEQUENCE_ORIGINS:
        return all(_cli_parseable(a) for a in typing.get_args(annotation))
    return False


def model_option_types(model_cls: type[Any]) -> dict[str, Any]:
    """Constructor options of a multi-task model after ``(input_dim, labels_per_task)``: sizes, ``l0_lambda``...

    Arguments the command line cannot express (the gate noise generator, which the trainer
    supplies) are left out.
    """
    import inspect

    params = list(inspect.signature(model_cls.__init__).parameters.items())[3:]  # self, input_dim, labels_per_task
    hints = typing.get_type_hints(model_cls.__init__)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {n: hints.get(n, str) for n, p in params if p.kind in kinds and _cli_parseable(hints.get(n, str))}


BUILTIN_MODEL_ORDER = ("snr-trans", "snr-aver", "shared-bottom", "mmoe", "ml-mmoe")
"""How ``list`` and error messages order the multi-task models (the SNR paper's comparison)."""


def model_choices() -> list[str]:
    """``--agent`` names valid for multi-label envs: the built-ins (``shared-bottom`` as the alias), then plugins."""
    from routing_rl.models import MultiTaskModel
    from routing_rl.training.multilabel_trainer import MODEL_ALIASES, resolve_model_name

    registered = MultiTaskModel.registry.names()
    names = [n for n in BUILTIN_MODEL_ORDER if resolve_model_name(n) in registered]
    return names + [n for n in registered if n not in names and n not in MODEL_ALIASES.values()]


def is_model_name(name: str) -> bool:
    from routing_rl.models import MultiTaskModel
    from routing_rl.training.multilabel_trainer import resolve_model_name

    return resolve_model_name(name) in MultiTaskModel.registry.names()


def env_kind(name: str) -> str:
    """``"routing"`` for a routing-network task suite, ``"multilabel"`` for a multi-label suite.

    An unknown name is a ``--env`` error listing both kinds.
    """
    from routing_rl.data import TaskSuite
    from routing_rl.data.multilabel import MultiLabelSuite
    from routing_rl.registry import UnknownNameError

    if name in TaskSuite.registry.names():
        return "routing"
    if name in MultiLabelSuite.registry.names():
        return "multilabel"
    choices = TaskSuite.registry.names() + MultiLabelSuite.registry.names()
    raise click.BadParameter(str(UnknownNameError("env", name, choices)), param_hint="--env")


ROUTING_ONLY_OPTIONS = (
    "router_lr", "separate_optimizers", "optimizer", "warmup_epochs", "routed", "blocks", "hidden", "filters",
    "reward", "collab_reward", "collab_window", "observe_hidden",
)
"""``run`` options that configure the routed network or its router, meaningless for multi-label envs."""

MULTILABEL_ONLY_OPTIONS = ("map_k",)


def _given_on_command_line(names: tuple[str, ...]) -> list[str]:
    """Which of these ``run`` options the user set explicitly (not left at their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    explicit = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return [n for n in names if ctx.get_parameter_source(n) in explicit]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="routing-rl")
def main() -> None:
    """Routing networks for multi-task learning: learned and fixed routes on one interface."""


@main.command("list")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/envs).")
def list_command(plugins: tuple[str, ...]) -> None:
    """Show the task suites (envs) and the routers/models (agents) that `run` accepts."""
    load_plugins(plugins)
    from routing_rl.agents import Router
    from routing_rl.data import TaskSuite
    from routing_rl.data.multilabel import MultiLabelSuite
    from routing_rl.models import MultiTaskModel
    from routing_rl.training.multilabel_trainer import resolve_model_name

    click.echo("routing-network envs (--env NAME; options with -e KEY=VALUE):")
    for name, suite in TaskSuite.registry.items():
        click.echo(f"  {name:<24} {suite.gym_id}")
        click.echo(f"      {suite.description}")
        click.echo(f"      options: {', '.join(suite_option_types(suite)) or '(none)'}")
    click.echo("\nrouters for routing-network envs (--agent NAME; options with -o KEY=VALUE):")
    for name, router in Router.registry.items():
        click.echo(f"  {name:<24} {router.description}")
        options = router.option_types()
        if options:
            click.echo(f"      options: {', '.join(options)}")
    click.echo("\nmulti-label envs (--env NAME; options with -e KEY=VALUE; every example labelled for every task):")
    for name, ml_suite in MultiLabelSuite.registry.items():
        click.echo(f"  {name:<24} {ml_suite.description}")
        click.echo(f"      options: {', '.join(suite_option_types(ml_suite)) or '(none)'}")
    click.echo("\nmulti-task models for multi-label envs (--agent NAME; options with -o KEY=VALUE):")
    for name in model_choices():
        model = MultiTaskModel.registry.get(resolve_model_name(name))
        alias = f" (model {model.name})" if model.name != name else ""
        click.echo(f"  {name:<24} {model.description}{alias}")
        click.echo(f"      options: {', '.join(model_option_types(model)) or '(none)'}")


@main.command("run")
@click.option("--agent", default=None, help="Router (routing-network envs; default fixed-random) or multi-task model (multi-label envs; default snr-trans); see `routing-rl list`.")
@click.option("--env", default="synthetic-groups", show_default=True, help="Task suite name (see `routing-rl list`).")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the block weights (Adam).")
@click.option("--router-lr", default=None, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the router (default: --lr).")
@click.option("--separate-optimizers/--single-optimizer", default=False, show_default=True, help="One Adam for weights and one for the router, or one for both (the public code).")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True, help="Optimizer of the weights and the router (plain SGD shows the public-code WPL's exploding gradient in full).")
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
@click.option("--map-k", default=10, show_default=True, type=click.IntRange(min=1), help="K of MAP@K (multi-label envs only).")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--logdir", default=None, help="Run directory (default: runs/<env>-<agent>-routed_<layers>-seed<seed>; runs/<env>-<agent>-seed<seed> for multi-label envs).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Where the data files are (else $ROUTING_RL_DATA, then system locations).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--resume", is_flag=True, help="Continue the run in --logdir from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace a finished or interrupted run in --logdir.")
@click.option("--agent-option", "-o", "agent_option", multiple=True, metavar="KEY=VALUE", help="Router or model option (see `routing-rl list`); repeatable; sequences as 64,32.")
@click.option("--env-option", "-e", "env_option", multiple=True, metavar="KEY=VALUE", help="Task suite option; repeatable.")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/envs).")
@click.option("--max-batches", default=None, type=click.IntRange(min=1), help="Stop each training epoch after N batches (smoke tests).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(**opts: Any) -> None:
    """Train a router and its routed network (routing-network envs) or a multi-task model such as SNR
    (multi-label envs); evaluate every task, write results.json, a checkpoint and TensorBoard logs."""
    load_plugins(opts.pop("plugins"))
    if env_kind(opts["env"]) == "multilabel":
        misplaced = _given_on_command_line(ROUTING_ONLY_OPTIONS)
        if misplaced:
            raise click.UsageError(
                f"{', '.join(map(_flag, misplaced))} only appl{'ies' if len(misplaced) == 1 else 'y'} to routing-network envs; "
                f"{opts['env']} trains a multi-task model (size it with -o, see `routing-rl list`)"
            )
        _run_multilabel(opts)
        return
    misplaced = _given_on_command_line(MULTILABEL_ONLY_OPTIONS)
    if misplaced:
        raise click.UsageError(f"{', '.join(map(_flag, misplaced))} only applies to multi-label envs, not {opts['env']}")
    opts.pop("map_k")
    _run_routing(opts)


def _run_routing(opts: dict[str, Any]) -> None:
    """``run`` on a routing-network task suite: a router and its routed network, through :class:`Trainer`."""
    from routing_rl.agents import Router, RouterConfigError
    from routing_rl.data import DataError, TaskSuite, load_suite
    from routing_rl.network import SpecError
    from routing_rl.registry import UnknownNameError
    from routing_rl.training import RunConfig, RunExistsError, Trainer

    console = Console(stderr=False)
    opts["agent"] = opts["agent"] or "fixed-random"
    if opts["agent"] not in Router.registry.names() and is_model_name(opts["agent"]):
        raise click.BadParameter(
            f"{opts['agent']} is a multi-task model for multi-label envs; for {opts['env']} choose one of: "
            f"{', '.join(Router.registry.names())}",
            param_hint="--agent",
        )
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
    _train_and_report(trainer, console, quiet, _routing_epoch_line)


def _run_multilabel(opts: dict[str, Any]) -> None:
    """``run`` on a multi-label suite: a multi-task model (SNR and its baselines), through :class:`MultiLabelTrainer`."""
    from routing_rl.agents import Router
    from routing_rl.data import DataError
    from routing_rl.data.multilabel import MultiLabelSuite
    from routing_rl.models import MultiTaskModel
    from routing_rl.registry import UnknownNameError
    from routing_rl.training import RunExistsError
    from routing_rl.training.multilabel_trainer import (
        MultiLabelRunConfig,
        MultiLabelTrainer,
        resolve_model_name,
    )

    console = Console(stderr=False)
    agent, env = opts["agent"] or "snr-trans", opts["env"]
    if not is_model_name(agent):
        if agent in Router.registry.names():
            message = f"{agent} is a router for routing-network envs; for {env} choose one of: {', '.join(model_choices())}"
        else:
            message = str(UnknownNameError("agent", agent, model_choices()))
        raise click.BadParameter(message, param_hint="--agent")
    model_cls = MultiTaskModel.registry.get(resolve_model_name(agent))
    suite_cls = MultiLabelSuite.registry.get(env)
    config = MultiLabelRunConfig(
        agent=agent, env=env, epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"], seed=opts["seed"],
        val_fraction=opts["val_fraction"], map_k=opts["map_k"], device=opts["device"], logdir=opts["logdir"],
        data_dir=opts["data_dir"],
        agent_options=parse_options(opts["agent_option"], model_option_types(model_cls), agent, "--agent-option"),
        env_options=parse_options(opts["env_option"], suite_option_types(suite_cls), env, "--env-option"),
        max_batches_per_epoch=opts["max_batches"],
    )
    try:
        suite = suite_cls(**config.env_options)  # type: ignore[call-arg]
        data = suite.load(Path(config.data_dir) if config.data_dir else None, config.seed, config.val_fraction)
        trainer = MultiLabelTrainer(config, data)
        trainer.prepare_run_dir(resume=opts["resume"], overwrite=opts["overwrite"])
    except (DataError, RunExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    counts = trainer.model.parameter_counts()
    console.print(
        f"[bold]{agent}[/] ({type(trainer.model).__name__}) on [bold]{data.name}[/]: {data.num_tasks} {data.problem} tasks, "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test examples, "
        f"{counts['train']} trainable parameters, device {trainer.device}, run dir {trainer.run_dir}"
    )
    _train_and_report(trainer, console, opts["quiet"], _multilabel_epoch_line)


def _routing_epoch_line(record: dict[str, Any]) -> str:
    return (
        f"epoch {record['epoch']:3d}  loss {record['train_loss']:.4f}  val {record['val_accuracy_mean']:.4f}  "
        f"test {record['test_accuracy_mean']:.4f}  {record['train_seconds']:.1f}s ({record['samples_per_second']:.0f} samples/s)"
    )


def _multilabel_epoch_line(record: dict[str, Any]) -> str:
    metric = record["test"]["metric"].upper()
    return (
        f"epoch {record['epoch']:3d}  loss {record['train_loss']:.4f}  reg {record['regularization']:.2e}  "
        f"val {metric} {record['val']['macro']:.4f}  test {record['test']['macro']:.4f}  "
        f"params {record['parameters']['train']} train / {record['parameters']['serving']} serving  "
        f"{record['train_seconds']:.1f}s ({record['samples_per_second']:.0f} samples/s)"
    )


def _train_and_report(
    trainer: Any, console: Console, quiet: bool, epoch_line: Callable[[dict[str, Any]], str]
) -> None:
    """Train the remaining epochs (none if the run is complete), then print the results table."""
    epochs = trainer.config.epochs
    if trainer.start_epoch > epochs:
        console.print(f"run already complete ({epochs} epochs); nothing to do")
    else:
        if trainer.start_epoch > 1:
            console.print(f"resuming at epoch {trainer.start_epoch}")
        _fit_with_progress(trainer, console, quiet, epoch_line)
    print_results(trainer.results, console)


def _fit_with_progress(trainer: Any, console: Console, quiet: bool, epoch_line: Callable[[dict[str, Any]], str]) -> None:
    """Run ``trainer.fit`` with a progress bar and one ``epoch_line`` per epoch; exit 3 if the loss diverges."""
    from routing_rl.training import Callbacks, TrainingDiverged
    from routing_rl.training.tb_logger import TensorBoardLogger

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
        console.print(epoch_line(record))

    trainer.callbacks = Callbacks(start, batch, end)
    logger = TensorBoardLogger(trainer.run_dir / "tensorboard", purge_step=trainer.start_epoch)
    try:
        with progress:
            trainer.fit(logger)
    except TrainingDiverged as exc:
        console.print(f"[red]Error:[/] {exc}")
        sys.exit(EXIT_DIVERGED)
    finally:
        logger.close()


def print_results(results: dict[str, Any], console: Console) -> None:
    """The results table of a run: per-task accuracy and routes, or per-task MAP@K / MSE for multi-label runs."""
    if results.get("kind") == "multilabel":
        print_multilabel_results(results, console)
        return
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


def print_multilabel_results(results: dict[str, Any], console: Console) -> None:
    """Per-task MAP@K (or MSE) of the last epoch with macro/micro rows, parameter counts and the serving check."""
    if not results.get("epochs"):
        return
    final, last = results["final"], results["epochs"][-1]
    metric = results["metric"].upper()
    table = Table(title=f"{results['config']['agent']} on {results['env']['name']} (epoch {final['epoch']})")
    for col in ("task", "labels", f"val {metric}", f"test {metric}", "sub-networks used"):
        table.add_column(col, justify="right" if col != "task" else "left")
    usage = last.get("utilization_per_task")
    for k, name in enumerate(results["env"]["task_names"]):
        used = f"{usage[k]:.0%}" if usage is not None else "-"
        table.add_row(
            f"{k} {name}", str(results["env"]["labels_per_task"][k]),
            f"{last['val']['per_task'][k]:.4f}", f"{last['test']['per_task'][k]:.4f}", used,
        )
    table.add_row("macro", "", f"{last['val']['macro']:.4f}", f"{last['test']['macro']:.4f}", "", style="bold")
    table.add_row("micro", "", f"{last['val']['micro']:.4f}", f"{last['test']['micro']:.4f}", "", style="bold")
    console.print(table)
    params = final["parameters"]
    share = params["serving"] / params["train"] if params["train"] else float("nan")
    gates = last.get("gates")
    gate_text = f"; gates open {gates['open']}/{gates['total']}" if gates else ""
    console.print(f"parameters: {params['train']} train, {params['serving']} serving ({share:.1%}){gate_text}")
    serving = results.get("serving")
    if serving:
        verdict = "equal" if serving["metrics_equal"] else "DIFFERENT"
        console.print(
            f"serving (pruned) model: test {metric} macro {serving['test']['macro']:.4f}, micro {serving['test']['micro']:.4f}; "
            f"{verdict} to the gated model's (max output difference {serving['max_output_difference']:.2e})"
        )
    console.print(
        f"best validation epoch {final['best_val_epoch']}: val {metric} macro {final['best_val_macro']:.4f}, "
        f"test macro {final['test_macro_at_best_val']:.4f}; mean train time {final['mean_train_seconds_per_epoch']:.1f}s/epoch"
    )


@main.command("show")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def show_command(run_dir: Path) -> None:
    """Print the results table of a finished or interrupted run."""
    from routing_rl.training import load_results

    try:
        results = load_results(run_dir)
    except FileNotFoundError:
        raise click.ClickException(f"{run_dir} has no results.json") from None
    print_results(results, Console())


def _attach_analysis_commands() -> None:
    """``analyze`` (task similarity, grouping, cross-seed agreement) and ``compare`` (t-test over runs)."""
    from routing_rl.analysis.report import analyze
    from routing_rl.analysis.significance import compare

    main.add_command(analyze)
    main.add_command(compare)


_attach_analysis_commands()

if __name__ == "__main__":
    main()

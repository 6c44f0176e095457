"""The ``routing-rl`` command line: flags -> :class:`RunConfig` -> :class:`Trainer` -> progress and report.

Names are validated against the registries after plugins are imported, so user-defined routers,
models and task suites work exactly like the built-in ones. Bad input ends with a one-line error
that names the option and lists the valid choices, and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def load_plugins(modules: tuple[str, ...]) -> None:
    """Import the ``routing_rl.plugins`` entry points and ``--plugin`` modules, which register classes."""
    import routing_rl  # noqa: F401  (registers every built-in suite, router and model)
    from routing_rl.envs import register_gym_envs

    for ep in entry_points(group="routing_rl.plugins"):
        ep.load()
    for module in modules:
        if not module.strip():
            raise click.BadParameter("empty module name; give an importable module, e.g. --plugin my_routers", param_hint="--plugin")
        if "/" in module or "\\" in module or module.endswith(".py"):
            dotted = module.removesuffix(".py").replace("\\", "/").strip("/").replace("/", ".")
            raise click.BadParameter(f"{module!r} is a file path; give a module name as `import` takes it, e.g. --plugin "
                                     f"{dotted.rsplit('.', 1)[-1]} with its folder on PYTHONPATH (or --plugin {dotted})", param_hint="--plugin")  # fmt: skip
        try:
            importlib.import_module(module)
        except Exception as exc:  # a plugin is user code: any failure is reported, not raised
            raise click.BadParameter(f"cannot import plugin module {module!r}: {type(exc).__name__}: {exc}", param_hint="--plugin") from None
    register_gym_envs()


def _explicit(names: tuple[str, ...]) -> list[str]:
    """Which of these ``run`` options the user set (rather than left at their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return [n for n in names if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]


def _epochs(value: str, flag: str = "--lr-milestones") -> list[int]:
    """``--lr-milestones 5,10`` (or ``--step-epochs``) as ``[5, 10]``; a one-line error for anything else."""
    if not value.strip():
        return []
    if any(not part.strip() for part in value.split(",")):
        raise click.BadParameter(f"{value!r} has an empty item; separate epochs by single commas, e.g. 5,10", param_hint=flag)
    try:
        epochs = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of epochs, e.g. 5,10", param_hint=flag) from None
    if any(e < 1 for e in epochs):
        raise click.BadParameter(f"epochs must be at least 1, got {value!r}", param_hint=flag)
    return sorted(epochs)


def _decay(value: str) -> float | list[float]:
    """``--lr-decay 0.1`` (every milestone) or ``--lr-decay 0.5,0.2`` (one factor per milestone)."""
    try:
        factors = [float(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a factor or a comma-separated list of factors, e.g. 0.1 or 0.5,0.2", param_hint="--lr-decay") from None
    if any(not 0 < f <= 1 for f in factors):
        raise click.BadParameter(f"factors must be in (0, 1], got {value!r}", param_hint="--lr-decay")
    return factors[0] if len(factors) == 1 else factors


def default_threads() -> int:
    """Half the CPU cores, at least one. Torch's default of one thread per core halved the speed of a
    2-core machine (and was 12x slower once) when another process held a core
    (benchmarks/threads_under_load.py); half leaves room for the rest of the machine."""
    import os

    return max(1, (os.cpu_count() or 1) // 2)


def _flags(names: list[str]) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


class CommandLine(click.Group):
    """The command group; remembers the arguments it was invoked with, for the results' provenance."""

    invoked_args: list[str] = []

    def main(self, args: Any = None, *more: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        CommandLine.invoked_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().main(args, *more, **kwargs)


@click.group(cls=CommandLine, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="routing-rl")
def main() -> None:
    """Routing networks for multi-task learning: learned and fixed routes and multi-task models on one interface."""


@main.command("list")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/models/suites).")
def list_command(plugins: tuple[str, ...]) -> None:
    """Show the task suites (--env) and the routers and multi-task models (--agent), with their options."""
    load_plugins(plugins)
    from routing_rl.agents import Router
    from routing_rl.data import Suite
    from routing_rl.registry import AGENTS
    from routing_rl.render import catalogue

    from routing_rl.render import make_console

    console = make_console()
    catalogue("task suites (--env NAME; options -e KEY=VALUE)", Suite.registry.items(), console)
    agents = AGENTS.items()
    catalogue("routers (--agent NAME; options -o KEY=VALUE): choose blocks in a routed network, on every suite",
              [(n, c) for n, c in agents if issubclass(c, Router)], console)  # fmt: skip
    catalogue("multi-task models (--agent NAME; options -o KEY=VALUE): output every task at once, on every suite",
              [(n, c) for n, c in agents if not issubclass(c, Router)], console)  # fmt: skip
    from routing_rl.training.presets import PRESETS

    console.print("\n[bold]presets[/bold] (--preset NAME): a paper's protocol; options you give still win")
    for preset in PRESETS.values():
        console.print(f"  {preset.name}  {preset.description}")
        console.print("    " + ", ".join(f"{k}={v}" for k, v in preset.options.items()))


@main.command("run")
@click.option("--agent", default="fixed-random", show_default=True, help="A router or a multi-task model (see `routing-rl list`).")
@click.option("--preset", default=None, help="A paper's protocol (reexamining-fmnist, reexamining-cifar100): sets the options it fixes; options you give still win.")
@click.option("--env", default="synthetic-groups", show_default=True, help="A task suite (see `routing-rl list`).")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--eval-batch-size", default=128, show_default=True, type=click.IntRange(min=1), help="Rows per evaluation batch (outputs do not depend on it; reported losses do, in the last bits).")
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the weights.")
@click.option("--router-lr", default=None, type=click.FloatRange(min=0, min_open=True), help="Learning rate of the router or the model's gates (default: the router's own rate, e.g. wpl 0.1, reinforce 0.3; else --lr).")
@click.option("--lr-milestones", default="", callback=lambda ctx, param, value: _epochs(value), help="Epochs after which every learning rate is multiplied by --lr-decay, e.g. 5,10 (the public routing code's schedule).")
@click.option("--lr-decay", default="0.1", show_default=True, callback=lambda ctx, param, value: _decay(value), help="Factor of each --lr-milestones step, or one factor per milestone (e.g. 0.3333333333333333,0.3: the later public code's 3e-3, 1e-3, 3e-4).")
@click.option("--step-epochs", default="", callback=lambda ctx, param, value: _epochs(value, "--step-epochs"), help="Step the optimizers only in these epochs, e.g. 1,6,11 (the public code's run_experiments.py: its optimizer list is empty in every other epoch); default: every epoch.")
@click.option("--grad-clip", default=None, type=click.FloatRange(min=0, min_open=True), help="Clip the weights' gradient norm at this value (the public code: 40); routing parameters are not clipped.")
@click.option("--grad-clip-mode", type=click.Choice(["norm", "public-code"]), default="norm", show_default=True, help="norm: torch's clip_grad_norm_; public-code: its call on the weights listed twice (clips at value/sqrt(2), scales twice).")
@click.option("--separate-optimizers/--single-optimizer", default=False, show_default=True, help="One optimizer for weights and one for the router/gates, or one for both (the public code).")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True, help="Plain SGD shows the public-code WPL's exploding gradient in full.")
@click.option("--fused-optimizer", is_flag=True, help="torch's fused Adam/SGD kernels (about 3x faster Adam steps over many small block tensors; results differ in the last bits).")
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0), help="Routers: share every routed layer for N epochs before routing.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**31 - 1), help="Fixes data order, routes and weights.")
@click.option("--routed", default=None, help="Routers: routed layers: none, all, fc, conv, head (the task-facing layer), or names like conv1,2,3 / conv3 / fc1,fc2 (default: fc; all for no-sharing).")
@click.option("--blocks", default=None, type=click.IntRange(min=1), help="Routers: function blocks per routed layer (default: number of tasks).")
@click.option("--fc-layers", default=None, type=click.IntRange(0, 1000), help="Routers: hidden FC layers after the conv layers (default 2; 3 for vector inputs).")
@click.option("--channels-last/--contiguous", default=True, show_default=True,
              help="Routers on images: convolutions in channels_last memory format (the default: 1.4-1.9x faster on CPUs) or the "
                   "contiguous layout the published Table 2 re-test was trained in (results differ in the last bits).")  # fmt: skip
@click.option("--hidden", default=64, show_default=True, type=click.IntRange(min=1), help="Routers: units of each FC block.")
@click.option("--filters", default=32, show_default=True, type=click.IntRange(min=1), help="Routers: filters of each conv block.")
@click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True), help="Routers: dropout on the output of every layer below the heads while training (the Re-examining paper swept 0-0.9 and chose 0).")
@click.option("--reward", type=click.Choice(["auto", "correct", "neg-loss"]), default="auto", show_default=True, help="Routers' final reward: correct (+1/-1; multi-label: 2 AP@K - 1) or minus the loss; auto: correct, neg-loss for regression.")
@click.option("--collab-reward", default=0.0, show_default=True, type=float, help="Routers: per-step bonus rho * frequency of the chosen block among the layer's recent decisions.")
@click.option("--collab-window", default=256, show_default=True, type=click.IntRange(min=1), help="Routers: recent decisions per layer the collaboration reward counts.")
@click.option("--collab-form", type=click.Choice(["once", "public-code"]), default="once", show_default=True, help="Routers: rho * frequency (once), or the public code's rho^2 * frequency / layers * |final reward|.")
@click.option("--module-loss", type=click.Choice(["cross-entropy", "mse-one-hot"]), default="cross-entropy", show_default=True, help="Routers on single-label suites: the task loss of an episode; mse-one-hot is the public code's (squared error of the outputs to one-hot targets, summed).")
@click.option("--loss-reduction", type=click.Choice(["mean", "sum"]), default="mean", show_default=True, help="Routers: the task loss of a batch as the mean over its episodes, or their sum (the public code's reduction none).")
@click.option("--observe-hidden", is_flag=True, help="Routers: observe the hidden representation too.")
@click.option("--map-k", default=10, show_default=True, type=click.IntRange(min=1), help="K of MAP@K (multi-label suites).")
@click.option("--val-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--threads", default=None, type=click.IntRange(1, 256), help="Torch intra-op threads (default: half the CPU cores, at least 1; torch's one per core collapses on a busy machine).")
@click.option("--logdir", default=None, help="Run directory (default: runs/<env>-<agent>[-routed_<layers>]-seed<seed>).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Where the data files are (else $ROUTING_RL_DATA, then system locations).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--resume", is_flag=True, help="Continue the run in --logdir from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace a finished or interrupted run in --logdir.")
@click.option("--agent-option", "-o", "agent_option", multiple=True, metavar="KEY=VALUE", help="Router or model option (see `routing-rl list`); repeatable; sequences as 64,32.")
@click.option("--env-option", "-e", "env_option", multiple=True, metavar="KEY=VALUE", help="Task suite option; repeatable.")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/models/suites).")
@click.option("--max-batches", default=None, type=click.IntRange(min=1), help="Stop each training epoch after N batches (smoke tests).")
@click.option("--divergence-factor", default=1000.0, show_default=True, type=click.FloatRange(min=0), help="Stop when the task loss exceeds this many times the first batch's (at least 1); 0: only on NaN/inf.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(**opts: Any) -> None:
    """Train a router in its routed network, or a multi-task model, on a task suite; evaluate every
    task, write results.json, a checkpoint and TensorBoard logs."""
    from routing_rl.render import fit_with_progress, make_console, print_results, run_header
    from routing_rl.training import Trainer, TrainingDiverged
    from routing_rl.training.tb_logger import TensorBoardLogger

    load_plugins(opts.pop("plugins"))
    resume, overwrite, quiet = opts.pop("resume"), opts.pop("overwrite"), opts.pop("quiet")
    if resume and overwrite:
        raise click.UsageError("--resume continues a run and --overwrite replaces it: give one of them")
    if opts["logdir"] is not None and not opts["logdir"].strip():
        raise click.BadParameter("is empty; give a directory, or leave the option out for runs/<env>-<agent>-...", param_hint="--logdir")
    config = _config(opts)
    run_directory = _claim(config, resume, overwrite)
    try:
        trainer = _build(lambda: Trainer.from_config(config, command=["routing-rl", *CommandLine.invoked_args]), config)
        if trainer.run_dir == run_directory.path:
            trainer.run_directory = run_directory  # the lock taken before the data was loaded
        _build(lambda: trainer.prepare_run_dir(resume=resume, overwrite=overwrite), config)
    except BaseException:
        run_directory.abandon()
        raise
    console = make_console()
    console.print(run_header(trainer))
    if resume and trainer.start_epoch == 1:
        console.print(f"no checkpoint to resume in {trainer.run_dir}: starting at epoch 1")
    if trainer.start_epoch > config.epochs:
        console.print(f"run already complete ({config.epochs} epochs); nothing to do")
    else:
        if trainer.start_epoch > 1:
            console.print(f"resuming at epoch {trainer.start_epoch}")
        logger = TensorBoardLogger(trainer.run_dir / "tensorboard", purge_step=trainer.start_epoch)
        try:
            fit_with_progress(trainer, console, quiet, logger)
        except TrainingDiverged as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_DIVERGED)
        except OSError as exc:  # e.g. the disk filled up while a result or checkpoint was written
            raise click.ClickException(
                f"cannot write the run to {trainer.run_dir}: {exc.strerror or exc}; the files of the last finished epoch "
                "are intact, so free the space and continue with --resume"
            ) from None
        finally:
            logger.close()
    print_results(trainer.results, console)


def _claim(config: Any, resume: bool, overwrite: bool) -> Any:
    """Lock the run directory first: a busy or finished one is refused before minutes of data
    loading and network building, not after them."""
    from routing_rl.agents import Router
    from routing_rl.registry import AGENTS
    from routing_rl.training import RunDirectory

    run_directory = RunDirectory(config.run_dir(routed=issubclass(AGENTS.get(config.agent), Router)))
    _build(lambda: run_directory.claim(resume, overwrite), config)
    return run_directory


def _config(opts: dict[str, Any]) -> Any:
    """Validate names and ``KEY=VALUE`` options against the registries and build the RunConfig."""
    from routing_rl.agents import Router
    from routing_rl.data import Suite
    from routing_rl.registry import AGENTS, UnknownNameError
    from routing_rl.training import RunConfig
    from routing_rl.training.config import MULTI_OUTPUT_ONLY_OPTIONS, ROUTER_ONLY_OPTIONS, default_routed
    from routing_rl.training.presets import PresetError, apply_preset, get_preset

    try:
        agent_cls = AGENTS.get(opts["agent"])
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--agent") from None
    if opts["preset"] is not None:
        try:
            preset_env = get_preset(opts["preset"]).options.get("env")
        except PresetError as exc:
            raise click.BadParameter(str(exc), param_hint="--preset") from None
        if preset_env is not None and not _explicit(("env",)):
            opts["env"] = preset_env
    try:
        suite_cls = Suite.registry.get(opts["env"])
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--env") from None
    if not issubclass(agent_cls, Router) and (misplaced := _explicit(ROUTER_ONLY_OPTIONS)):
        raise click.UsageError(f"{_flags(misplaced)} only appl{'ies' if len(misplaced) == 1 else 'y'} to routers; "
                               f"{opts['agent']} is a multi-task model (size it with -o, see `routing-rl list`)")  # fmt: skip
    if suite_cls.family == "single-label" and (misplaced := _explicit(MULTI_OUTPUT_ONLY_OPTIONS)):
        raise click.UsageError(f"{_flags(misplaced)} only applies to multi-label suites, not {opts['env']}")
    try:
        agent_options = agent_cls.parse_options(opts.pop("agent_option"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agent-option") from None
    try:
        env_options = suite_cls.parse_options(opts.pop("env_option"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--env-option") from None
    max_batches = opts.pop("max_batches")
    opts.update(agent_options=agent_options, env_options=env_options)
    explicit = _explicit(tuple(opts)) + [k for k in ("agent_options", "env_options") if opts[k]]
    try:
        opts.update(apply_preset(opts.pop("preset"), {k: opts[k] for k in explicit if k != "preset"}))
    except PresetError as exc:
        raise click.BadParameter(str(exc), param_hint="--preset") from None
    if opts["routed"] is None:
        opts["routed"] = default_routed(opts["agent"])
    if opts["threads"] is None:
        opts["threads"] = default_threads()
    return RunConfig(**opts, max_batches_per_epoch=max_batches)


def _build(step: Any, config: Any) -> Any:
    """Run a set-up step; known failures become one-line errors, and so does any failure of user code."""
    from routing_rl.agents import RouterConfigError
    from routing_rl.data import DataError
    from routing_rl.network import SpecError
    from routing_rl.training import CheckpointError, RunDirError, RunExistsError

    try:
        return step()
    except (DataError, SpecError, RouterConfigError, RunExistsError, RunDirError, CheckpointError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except MemoryError:
        raise click.ClickException(f"not enough memory to set up {config.agent} on {config.env}; choose smaller sizes") from None
    except Exception as exc:  # plugins are user code: whatever they raise is reported in one line
        raise click.ClickException(f"cannot set up {config.agent} on {config.env}: {type(exc).__name__}: {exc}") from None


@main.command("show")
@click.argument("run_dir", type=click.Path(path_type=Path))
def show_command(run_dir: Path) -> None:
    """Print the results table of a finished or interrupted run (its directory or results.json)."""
    from routing_rl.render import make_console, print_results
    from routing_rl.training import ResultsError, load_results

    try:
        results = load_results(run_dir)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    print_results(results, make_console())


def _attach_analysis_commands() -> None:
    """``analyze`` (task similarity, grouping, cross-seed agreement), ``compare`` (t-test over runs),
    ``report`` (the papers' figures), ``suite`` (runs x seeds from a file, and their table) and
    ``sweep`` (random search, top-k by validation)."""
    from routing_rl.analysis.figure_report import report
    from routing_rl.analysis.report import analyze
    from routing_rl.analysis.significance import compare
    from routing_rl.suites.commands import suite
    from routing_rl.suites.sweep import sweep

    for command in (analyze, compare, report, suite, sweep):
        main.add_command(command)


_attach_analysis_commands()

if __name__ == "__main__":
    main()

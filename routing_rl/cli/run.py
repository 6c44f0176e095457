"""``routing-rl run``: flags -> :class:`RunConfig` -> the run sequence, with a progress display and a report.

Names are validated against the registries after plugins are imported, so user-defined routers,
models and task suites work exactly like the built-in ones. Bad input ends with a one-line error
that names the option and lists the valid choices, and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from routing_rl.cli.common import EXIT_DIVERGED, CheckedPath, CommandLine, default_threads, load_plugins, path_limit_problem
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.setup.options import FIELD_DEFAULT, Option, declared, flag_of

if TYPE_CHECKING:
    from routing_rl.training import Trainer
    from routing_rl.training.setup.composition import Composition

T = TypeVar("T")
"""What a set-up step that :func:`_build` guards returns."""


def _explicit(names: tuple[str, ...]) -> list[str]:
    """Which of these ``run`` options the user set (rather than left at their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return [n for n in names if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]



def _epochs(value: str, flag: str = "--lr-milestones") -> list[int]:
    """``--lr-milestones 5,10`` (or ``--step-epochs``) as ``[5, 10]``, in the order given; a one-line
    error for text that is no list of integers. Ranges and order are RunConfig's checks, which suite
    files get too."""
    if not value.strip():
        return []
    if any(not part.strip() for part in value.split(",")):
        raise click.BadParameter(f"{value!r} has an empty item; separate epochs by single commas, e.g. 5,10", param_hint=flag)
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of epochs, e.g. 5,10", param_hint=flag) from None



def _decay(value: str) -> float | list[float]:
    """``--lr-decay 0.1`` (every milestone) or ``--lr-decay 0.5,0.2`` (one factor per milestone)."""
    try:
        factors = [float(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a factor or a comma-separated list of factors, e.g. 0.1 or 0.5,0.2", param_hint="--lr-decay") from None
    return factors[0] if len(factors) == 1 else factors  # the range is RunConfig's check





def _click_option(f: dataclasses.Field[Any], declaration: Option, annotation: Any) -> Callable[[Any], Any]:
    """The click option of one declared RunConfig field: its flag, default, type (range or choices) and help."""
    flag = flag_of(f.name, declaration)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if declaration.cli_default is not FIELD_DEFAULT:
        default = declaration.cli_default
    shown = {"help": declaration.help, "show_default": declaration.show_default}
    if declaration.parse == "epochs":
        return click.option(flag, f.name, default="", callback=lambda ctx, param, value: _epochs(value, flag), **shown)
    if declaration.parse == "factors":
        return click.option(flag, f.name, default=str(default), callback=lambda ctx, param, value: _decay(value), **shown)
    base = next((t for t in typing.get_args(annotation) if t is not type(None)), annotation) if typing.get_args(annotation) else annotation
    if base is bool:
        if declaration.off_flag:
            return click.option(f"{flag}/{declaration.off_flag}", f.name, default=default, **shown)
        return click.option(flag, f.name, is_flag=True, **shown)
    bounds = {"min": declaration.low, "max": declaration.high, "min_open": declaration.low_open, "max_open": declaration.high_open}
    kind: Any = None
    if declaration.choices is not None:
        kind = click.Choice(list(declaration.choices))
    elif declaration.path:
        kind = CheckedPath(file_okay=False)
    elif base is int:
        kind = click.IntRange(**bounds) if declaration.low is not None or declaration.high is not None else int
    elif base is float:
        kind = click.FloatRange(**bounds) if declaration.low is not None or declaration.high is not None else float
    return click.option(flag, f.name, default=default, type=kind, **shown)


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every declared RunConfig option as a flag of ``command``, in the declarations' order."""
    hints = typing.get_type_hints(RunConfig)
    for f, declaration in reversed(declared(RunConfig)):
        command = _click_option(f, declaration, hints[f.name])(command)
    return command


@click.command("run")
@config_options
@click.option("--resume", is_flag=True, help="Continue the run in --logdir from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace a finished or interrupted run in --logdir.")
@click.option("--agent-option", "-o", "agent_option", multiple=True, metavar="KEY=VALUE", help="Router or model option (see `routing-rl list`); repeatable; sequences as 64,32.")
@click.option("--env-option", "-e", "env_option", multiple=True, metavar="KEY=VALUE", help="Task suite option; repeatable.")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/models/suites).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(**opts: Any) -> None:
    """Train a router in its routed network, or a multi-task model, on a task suite; evaluate every
    task, write results.json, a checkpoint and TensorBoard logs."""
    from routing_rl.analysis.routing_flags import flag_lines
    from routing_rl.cli.render import fit_with_progress, make_console, print_results, run_header
    from routing_rl.training.loop.run_sequence import run_one

    load_plugins(opts.pop("plugins"))
    resume, overwrite, quiet = opts.pop("resume"), opts.pop("overwrite"), opts.pop("quiet")
    if resume and overwrite:
        raise click.UsageError("--resume continues a run and --overwrite replaces it: give one of them")
    if opts["logdir"] is not None and not opts["logdir"].strip():
        raise click.BadParameter("is empty; give a directory, or leave the option out for runs/<env>-<agent>-...", param_hint="--logdir")
    if opts["logdir"] is not None and (problem := path_limit_problem(opts["logdir"])):
        raise click.BadParameter(f"{problem}; choose a shorter name", param_hint="--logdir")
    parts = _config(opts)
    config = parts.config
    console = make_console()

    def ready(trainer: Trainer) -> None:
        console.print(run_header(trainer))
        if resume and trainer.start_epoch == 1:
            console.print(f"no checkpoint to resume in {trainer.run_dir}: starting at epoch 1")
        if trainer.start_epoch > config.epochs:
            console.print(f"run already complete ({config.epochs} epochs); nothing to do")
        elif trainer.start_epoch > 1:
            console.print(f"resuming at epoch {trainer.start_epoch}")

    try:
        outcome = run_one(parts, resume, overwrite, ["routing-rl", *CommandLine.invoked_args], guard=lambda step: _build(step, config),
                          on_ready=ready, fit=lambda trainer, logger: fit_with_progress(trainer, console, quiet, logger))  # fmt: skip
    except OSError as exc:  # e.g. the disk filled up while a result or checkpoint was written
        raise click.ClickException(
            f"cannot write the run to {config.run_dir(routed=parts.is_router)}: {exc.strerror or exc}; the files of the last "
            "finished epoch are intact, so free the space and continue with --resume"
        ) from None
    if outcome.status == "diverged":
        click.echo(f"Error: {outcome.message}", err=True)
        sys.exit(EXIT_DIVERGED)
    print_results(outcome.trainer.results, console)
    for line in flag_lines(outcome.trainer.results):  # a router that did not route: say so under its numbers
        click.echo(line, err=True)


HINTS = {"agent_options": "--agent-option", "env_options": "--env-option"}
"""The flags of the options that arrive as ``-o``/``-e`` pairs."""


def _config(opts: dict[str, Any]) -> Composition:
    """The run's composition from the options given on the command line (the one config builder
    of :func:`~routing_rl.training.setup.composition.configure`, shared with suite files); its errors
    become one-line usage errors that name the flag."""
    from routing_rl.training.setup.composition import ConfigError, configure

    agent_pairs, env_pairs = opts.pop("agent_option"), opts.pop("env_option")
    given = {name: opts[name] for name in _explicit(tuple(opts))}
    if "threads" not in given:
        given["threads"] = default_threads()
    try:
        return configure(given, agent_pairs, env_pairs, flag=flag_of)
    except ConfigError as exc:
        if exc.option is None:
            raise click.UsageError(str(exc)) from None
        raise click.BadParameter(str(exc), param_hint=HINTS.get(exc.option, flag_of(exc.option))) from None


def _build(step: Callable[[], T], config: RunConfig) -> T:
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
        text = str(exc)
        if "can't allocate memory" in text:  # torch's allocator, asked for a tensor of absurd size
            raise click.ClickException(f"not enough memory to set up {config.agent} on {config.env}; choose smaller sizes") from None
        if isinstance(exc, OverflowError) or "Overflow when unpacking" in text:  # a size beyond a 64-bit integer
            raise click.ClickException(f"cannot set up {config.agent} on {config.env}: a size in its options is too large; choose smaller sizes") from None
        raise click.ClickException(f"cannot set up {config.agent} on {config.env}: {type(exc).__name__}: {_one_line(text)}") from None


def _one_line(text: str) -> str:
    """The first line of an error message, cut short: torch appends C++ stack frames to some."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 200 else line[:197] + "..."

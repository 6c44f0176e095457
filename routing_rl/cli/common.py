"""What every ``routing-rl`` command shares: exit codes, plugin loading and the command group class."""

from __future__ import annotations

import errno
import importlib
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3



def run_names(only: str, valid: list[str], source: object) -> list[str]:
    """The run names of ``--runs a,b`` (of ``suite run`` and ``report``); raises ``SuiteError``
    naming an unknown or empty one and listing the runs of ``source``."""
    from routing_rl.suites import SuiteError

    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise SuiteError(f"--runs {only!r} names no run; runs of {source}: {', '.join(valid)}")
    if unknown := [n for n in names if n not in valid]:
        raise SuiteError(f"--runs: no run named {', '.join(map(repr, unknown))} in {source}; runs: {', '.join(valid)}")
    return names


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



def default_threads() -> int:
    """Half the CPU cores, at least one. Torch's default of one thread per core halved the speed of a
    2-core machine (and was 12x slower once) when another process held a core
    (benchmarks/threads_under_load.py); half leaves room for the rest of the machine."""
    import os

    return max(1, (os.cpu_count() or 1) // 2)


def _check_trial_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    from routing_rl.suites.runner import threads_problem

    if value is not None and (problem := threads_problem(value)):
        raise click.BadParameter(problem, param_hint="--threads")
    return value


trial_threads_option = click.option(
    "--threads", "threads", default=None, type=int, callback=_check_trial_threads,
    help="Torch threads of every trial, over the file's `threads` (default: the file's, else 1: a second thread "
         "gains little and halves the speed of a trial beside a busy core).",
)  # fmt: skip
"""``--threads`` of ``suite run`` and ``sweep``: checked against the machine's cores, one line naming the option."""

quiet_trials_option = click.option(
    "--quiet", is_flag=True, help="No progress lines from inside the trials (a line per trial as it ends, still).",
)
"""``--quiet`` of ``suite run`` and ``sweep``: silences the lines a long trial prints while it trains."""


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def path_limit_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the file system cannot hold ``path`` (None when it can): one of its names is longer than
    a file name may be (``NAME_MAX``, 255 bytes on Linux file systems), or the whole path longer than
    a path may be (``PATH_MAX``, 4096). The limits are asked of the nearest existing folder."""
    text = os.fspath(path)
    if not text:
        return None
    here = Path(os.path.abspath(text))
    existing = next((p for p in (here, *here.parents) if os.path.exists(p)), Path("/"))  # exists() is False for a too-long name
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > name_max:
            unit = "characters" if size == len(part) else "bytes"
            return f"the name {_shorten(part)!r} has {size} {unit}, more than the {name_max} a file name may have here"
    size = len(os.fsencode(str(here)))
    if size > path_max:
        return f"it has {size} bytes, more than the {path_max} a path may have here"
    return None


class CheckedPath(click.Path):
    """``click.Path`` that refuses, naming the option, a path the file system cannot hold (a name
    over 255 characters): the commands would otherwise fail on an ``OSError`` at its first use."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, os.PathLike)):
            if problem := path_limit_problem(value):
                self.fail(f"{problem}; choose a shorter name", param, ctx)
            if not self.file_okay and os.path.exists(value) and not os.path.isdir(value) and not os.path.isfile(value):
                self.fail(f"{os.fspath(value)!r} is a device, FIFO or socket, not a directory", param, ctx)
        return super().convert(value, param, ctx)


class CommandLine(click.Group):
    """The command group; remembers the arguments it was invoked with, for the results' provenance."""

    invoked_args: list[str] = []

    def main(self, args: Any = None, *more: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        CommandLine.invoked_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().main(args, *more, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a path too long for the file system, wherever a command meets it (a
        suite's trial directory under a long ``--out``), is a one-line error naming the path."""
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            path = os.fsdecode(exc.filename) if exc.filename is not None else ""
            problem = path_limit_problem(path) if path else None
            where = f"{_shorten(path, 80)}: " if path else ""
            raise click.ClickException(f"{where}{problem or 'a name in the path is too long for the file system'}; choose a shorter name") from None

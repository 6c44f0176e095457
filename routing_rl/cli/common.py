"""What every ``routing-rl`` command shares: exit codes, plugin loading and the command group class."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
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



class CommandLine(click.Group):
    """The command group; remembers the arguments it was invoked with, for the results' provenance."""

    invoked_args: list[str] = []

    def main(self, args: Any = None, *more: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        CommandLine.invoked_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().main(args, *more, **kwargs)

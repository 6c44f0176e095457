"""The ``routing-rl`` command line: every click command of the package, one module each.

``run`` (:mod:`.run`), ``list`` and ``show`` (:mod:`.inspect`), ``suite`` (:mod:`.suite`), ``sweep``
(:mod:`.sweep`), ``report`` (:mod:`.report`), ``analyze`` (:mod:`.analyze`) and ``compare``
(:mod:`.compare`); the shared exit codes, plugin loading and group class are in :mod:`.common`, the
console output in :mod:`.render`. This is the top floor: it imports every floor below it, and no
module outside this package imports click commands.
"""

from __future__ import annotations

import click

from routing_rl.cli.common import EXIT_BAD_INPUT, EXIT_DIVERGED, CommandLine, default_threads, load_plugins

@click.group(cls=CommandLine, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="routing-rl")
def main() -> None:
    """Routing networks for multi-task learning: learned and fixed routes and multi-task models on one interface."""


def _attach_commands() -> None:
    from routing_rl.cli.analyze import analyze
    from routing_rl.cli.compare import compare
    from routing_rl.cli.inspect import list_command, show_command
    from routing_rl.cli.report import report
    from routing_rl.cli.run import run_command
    from routing_rl.cli.suite import suite
    from routing_rl.cli.sweep import sweep

    for command in (list_command, run_command, show_command, analyze, compare, report, suite, sweep):
        main.add_command(command)


_attach_commands()

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGED", "CommandLine", "default_threads", "load_plugins", "main"]

if __name__ == "__main__":
    main()

"""``routing-rl list`` (what can be run) and ``routing-rl show`` (a run's results table)."""

from __future__ import annotations

from pathlib import Path

import click

from routing_rl.cli.common import CheckedPath, load_plugins

@click.command("list")
@click.option("--plugin", "plugins", multiple=True, help="Import this module first (registers your routers/models/suites).")
def list_command(plugins: tuple[str, ...]) -> None:
    """Show the task suites (--env) and the routers and multi-task models (--agent), with their options."""
    load_plugins(plugins)
    from routing_rl.agents import Router
    from routing_rl.data import Suite
    from routing_rl.registry import AGENTS
    from routing_rl.cli.render import catalogue

    from routing_rl.cli.render import make_console

    console = make_console()
    catalogue("task suites (--env NAME; options -e KEY=VALUE)", Suite.registry.items(), console)
    agents = AGENTS.items()
    catalogue("routers (--agent NAME; options -o KEY=VALUE): choose blocks in a routed network, on every suite",
              [(n, c) for n, c in agents if issubclass(c, Router)], console)  # fmt: skip
    catalogue("multi-task models (--agent NAME; options -o KEY=VALUE): output every task at once, on every suite",
              [(n, c) for n, c in agents if not issubclass(c, Router)], console)  # fmt: skip
    from routing_rl.training.setup.presets import PRESETS

    console.print("\n[bold]presets[/bold] (--preset NAME): a paper's protocol; options you give still win")
    for preset in PRESETS.values():
        console.print(f"  {preset.name}  {preset.description}")
        console.print("    " + ", ".join(f"{k}={v}" for k, v in preset.options.items()))


@click.command("show")
@click.argument("run_dir", type=CheckedPath(path_type=Path))
def show_command(run_dir: Path) -> None:
    """Print the results table of a finished or interrupted run (its directory or results.json)."""
    from routing_rl.cli.render import make_console, print_results
    from routing_rl.training import ResultsError, load_results

    try:
        results = load_results(run_dir)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    print_results(results, make_console())

"""What the command line prints: the catalogue of ``list``, the progress of a run, and results tables.

One renderer serves every run: the results schema is the same for routers and multi-task models
on every task family, so a table has one shape (per-task validation and test metric, and the
route or the sub-network usage of each task).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from routing_rl.analysis.gate_routes import route_cells
from routing_rl.registry import Registered
from routing_rl.core.contracts import metric_label
from routing_rl.data.summary import data_summary

if TYPE_CHECKING:
    from routing_rl.training import Trainer
    from routing_rl.training.records.tb_logger import TensorBoardLogger


def _fmt(value: float | None, digits: int = 4) -> str:
    return "nan" if value is None or value != value else f"{value:.{digits}f}"


def catalogue(title: str, classes: list[tuple[str, type[Registered]]], console: Console) -> None:
    """One section of ``routing-rl list``: each name, its family and description, and its typed options."""
    console.print(f"[bold]{title}[/]")
    for name, cls in classes:
        gym_id = getattr(cls, "gym_id", "")
        console.print(f"  [bold]{name}[/]  [dim]({cls.family})[/]  {cls.description}" + (f"  [dim]gymnasium id {gym_id}[/]" if gym_id else ""))
        for option in cls.options().values():
            console.print(
                f"      {option.name}: {option.type_name} = {option.default!r}" + (f"  [dim]{option.help}[/]" if option.help else ""),
                highlight=False,
            )
    console.print()


def epoch_line(record: dict[str, Any], metric: str) -> str:
    """One line per finished epoch: losses, validation and test means, sizes and speed."""
    extra = f"  reg {record['regularization']:.2e}" if "regularization" in record else ""
    params = record["parameters"]
    return (
        f"epoch {record['epoch']:3d}  loss {record['train_loss']:.4f}{extra}  val {metric} {_fmt(record['val']['mean'])}  "
        f"test {_fmt(record['test']['mean'])}  params {params['train']} train / {params['serving']} serving  "
        f"{record['train_seconds']:.1f}s ({record['samples_per_second']:.0f} samples/s)"
    )


def run_header(trainer: Any) -> str:
    """What is about to train, on what, where."""
    data, learner, cfg = trainer.data, trainer.learner, trainer.config
    if learner.kind == "router":
        net = learner.network
        built = (f"routed layers {net.routed_layer_names or 'none'} x {max(net.blocks_per_layer, default=0)} blocks")
    else:
        built = f"model {type(learner.model).__name__}"
    described = "".join(f"\n  [dim]{escape(line)}[/]" for line in data_summary(getattr(data, "info", None) or {}))
    return (
        f"[bold]{cfg.agent}[/] on [bold]{data.name}[/] ({trainer.family.name}, metric {metric_label(trainer.family.metric)}): "
        f"{data.num_tasks} tasks, {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, {built}, "
        f"device {trainer.device}, run dir {trainer.run_dir}{described}"
    )


def fit_with_progress(trainer: Trainer, console: Console, quiet: bool, logger: TensorBoardLogger | None) -> None:
    """Run ``trainer.fit`` with a progress bar and one :func:`epoch_line` per epoch."""
    from routing_rl.training import Callbacks

    n_train = len(trainer.data.train)
    if trainer.config.max_batches_per_epoch:
        n_train = min(n_train, trainer.config.max_batches_per_epoch * trainer.config.batch_size)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=True,
    )  # fmt: skip
    bar: dict[str, Any] = {}

    def start(epoch: int, total: int) -> None:
        bar["id"] = progress.add_task(f"epoch {epoch}/{total}", total=n_train, loss=float("nan"))

    def batch(n: int, loss: float) -> None:
        progress.update(bar["id"], advance=n, loss=loss)

    def end(record: dict[str, Any]) -> None:
        progress.remove_task(bar["id"])
        console.print(epoch_line(record, metric_label(trainer.family.metric)), highlight=False)

    trainer.callbacks = Callbacks(start, batch, end)
    with progress:
        trainer.fit(logger)


def make_console() -> Console:
    """The console of every command: a terminal's width when there is one; piped or redirected
    output is not wrapped at rich's default of 80 columns, so lines stay whole for grep and logs."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=not tty, width=None if tty else 200)


def status_label(results: dict[str, Any]) -> str:
    """The run's status as shown: a run cut short by --max-batches is a smoke test, not a complete run."""
    status = str(results["status"])
    limit = results.get("config", {}).get("max_batches_per_epoch")
    return f"{status}, smoke test: --max-batches {limit}" if limit and status == "complete" else status


def print_results(results: dict[str, Any], console: Console) -> None:
    """The results table of a run, then sizes, the serving check and the best-validation line."""
    epochs = results["epochs"]
    if not epochs:
        console.print(f"{results['status']}: no finished epoch yet")
        return
    final, last = results["final"], epochs[-1]
    metric = metric_label(results["metric"]["name"])
    routes = route_cells(results.get("learner") or {}, last.get("routing") or {})
    usage = last.get("utilization_per_task")
    table = Table(title=f"{results['config']['agent']} on {results['env']['name']} (epoch {final['epoch']}, {status_label(results)})")
    columns = ["task", f"val {metric}", f"test {metric}"] + (["route"] if routes is not None else ["sub-networks used"])
    for col in columns:
        table.add_column(col, justify="left" if col == "task" else "right")
    own = [metric_label(t["metric"]) for t in results["metric"].get("tasks", [])]
    mixed = len(set(own)) > 1  # each task's own metric beside its name; the columns' metric is their mean
    for k, name in enumerate(results["env"]["task_names"]):
        name = f"{name} ({own[k]})" if mixed else name
        if routes is not None:
            where = routes[k] if k < len(routes) else ""
        else:
            where = f"{usage[k]:.0%}" if usage is not None else "-"
        table.add_row(f"{k} {name}", _fmt(last["val"]["per_task"][k]), _fmt(last["test"]["per_task"][k]), where)
    table.add_row("mean", _fmt(last["val"]["mean"]), _fmt(last["test"]["mean"]), "", style="bold")
    table.add_row("micro", _fmt(last["val"]["micro"]), _fmt(last["test"]["micro"]), "", style="bold")
    console.print(table)
    params = final["parameters"]
    gates = last.get("gates")
    gate_text = f"; gates open {gates['open']}/{gates['total']}" if gates else ""
    console.print(f"parameters: {params['train']} train, {params['serving']} serving{gate_text}")
    serving = results.get("serving")
    if serving:
        verdict = "equal" if serving["metrics_equal"] else "DIFFERENT"
        console.print(
            f"serving (pruned) model: test {metric} {_fmt(serving['test']['mean'])}; {verdict} to the gated model's "
            f"(max output difference {serving['max_output_difference']:.2e})"
        )
    best = final["best_val"]
    console.print(
        f"best validation epoch {best['epoch']}: val {_fmt(best['val_mean'])}, test {_fmt(best['test_mean'])}; "
        f"mean train time {final['mean_train_seconds_per_epoch']:.1f}s/epoch"
    )

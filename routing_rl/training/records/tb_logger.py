"""TensorBoard logging of a run: losses, per-task metrics, routing perplexity and the papers' figures.

Tags are grouped CleanRL-style: ``losses/``, ``charts/`` (means, speed, sizes), ``<metric>_<split>/``
(per task) and ``routing/<layer>/`` (each task's policy perplexity and their mean). A task's part of
a tag is its index and name (:func:`task_tag`: ``task03_colour``), so that a chart says which task it
shows and the tasks still sort in their order. A custom layout puts each layer's task perplexities
on one multi-line chart (the Re-examining paper's Figure 1); routers with fixed routes get neither
perplexities nor heatmaps, only a note why (their policy is the route table itself). The
task-similarity heatmaps (Figure 2) and sub-network utilisation are the labelled
matplotlib figures of :mod:`routing_rl.plots.figures`, on a fixed 0-1 scale; the run's options
and final metrics are logged as hparams, so TensorBoard can filter and compare runs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.tensorboard import SummaryWriter

from routing_rl.metrics.routing import perplexity

if TYPE_CHECKING:
    from matplotlib.figure import Figure


_UNSAFE = re.compile(r"[^\w.\-]+")
"""Characters a task name keeps out of a tag: TensorBoard (as TensorFlow's summary names) allows word
characters, ``.``, ``-`` and ``/``, and a ``/`` inside a name would open another level of the tag tree."""


def task_tag(index: int, name: str | None) -> str:
    """The task part of a tag: ``task{index:02d}_{name}`` with the name made tag-safe (``t-shirt/top``
    -> ``t-shirt-top``, ``hair colour`` -> ``hair_colour``); ``task{index:02d}`` where a task has no
    name (or none of its characters survives)."""
    safe = _UNSAFE.sub("_", (name or "").replace("/", "-")).strip("_.")
    return f"task{index:02d}_{safe}" if safe else f"task{index:02d}"


FIXED_ROUTES_NOTE = ("no routing perplexity or task-similarity figures: this router's routes are fixed before training, "
                     "so its policy is its route table and has nothing to learn or show")  # fmt: skip


FIGURE_SHARE = 0.1
"""Largest share of a run's wall time that drawing TensorBoard figures may take.

A labelled matplotlib heatmap costs about a second to draw whatever the network: on Fashion-MNIST
(a minute per epoch) nothing, on a small vector table (12 tasks, 3 routed layers, about a second
of training per epoch) more than the epoch itself, which doubled a suite trial's time. (Laying a
figure out is most of that; a logger lays each figure out once and redraws it with each epoch's
data; see :meth:`TensorBoardLogger._figure`.) So a figure
is drawn when the figures drawn so far took at most this share of the time since the logger
started, and always at the first and the last step: the scalars (perplexities) are written every
epoch, and what a figure shows between two drawn ones is in them. The members of a population
share one budget (:class:`FigureBudget`): their figures together take this share of the
population's time, as one trial's figures take of its own.
"""


class FigureBudget:
    """The seconds spent drawing figures and the clock they are weighed against (:data:`FIGURE_SHARE`);
    one per logger, or one shared by the loggers of the trials that train together."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds = 0.0

    def allows(self) -> bool:
        """Whether the figures drawn so far took at most :data:`FIGURE_SHARE` of the time since the budget started."""
        return self.seconds <= FIGURE_SHARE * (time.perf_counter() - self.started)


class TensorBoardLogger:
    """Writes one event file per (re)start of a run; ``purge_step`` drops steps a resumed run repeats.

    ``last_step`` (the run's last epoch) is always given its figures; between the first and the
    last, figures are drawn within :data:`FIGURE_SHARE` of the run's time (of the population's,
    with a ``budget`` its members share).
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None, last_step: int | None = None,
                 budget: FigureBudget | None = None) -> None:  # fmt: skip
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
        self._layout_done = False
        self._fixed_noted = False
        self.last_step = last_step
        self.budget = budget or FigureBudget()
        self._drawn_steps: set[int] = set()
        self._figures: dict[str, Figure] = {}  # each tag's figure, laid out once (see _figure)

    def _draws_figures(self, step: int) -> bool:
        """Whether ``step`` gets its figures: the first step drawn, the last step, or any step while
        the figures' time is within :data:`FIGURE_SHARE` of the time since the budget started."""
        if not self._drawn_steps or step == self.last_step or step in self._drawn_steps:
            return True
        return self.budget.allows()

    def _figure(self, tag: str, make: Callable[[], Figure], redraw: Callable[[Figure], bool], step: int) -> None:
        """Draw ``tag`` at ``step`` if the budget allows, timing it: the first time ``make()`` lays the
        figure out; later ``redraw(figure)`` puts the step's data into that figure and its layout
        (the same pixels a new figure gives; ``make()`` again where ``redraw`` says it does not fit)."""
        if not self._draws_figures(step):
            return
        from matplotlib import pyplot as plt

        start = time.perf_counter()
        figure = self._figures.get(tag)
        laid_out = figure is not None and redraw(figure)
        if not laid_out:
            figure = make()
            plt.close(figure)  # out of pyplot's registry (no open-figure warnings); drawing needs no window
        self.writer.add_figure(tag, figure, step, close=False)  # the first drawing lays the figure out
        if not laid_out:
            figure.set_layout_engine("none")  # and the next steps keep that layout
            self._figures[tag] = figure
        self.budget.seconds += time.perf_counter() - start
        self._drawn_steps.add(step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def routing(self, layer_names: list[str], policies: list[torch.Tensor], task_names: list[str], step: int,
                learned: bool = True) -> None:  # fmt: skip
        """Per routed layer: each task's policy perplexity and their mean, and the task-similarity
        heatmaps; for a router that does not learn its routes (``learned`` False), one text note instead."""
        if not learned:
            if not self._fixed_noted:
                self.writer.add_text("routing/note", FIXED_ROUTES_NOTE, step)
                self._fixed_noted = True
            return
        if not self._layout_done:
            self.writer.add_custom_scalars({"routing perplexity": {
                name: ["Multiline", [rf"routing/{re.escape(name)}/perplexity_task\d+.*", f"routing/{name}/perplexity_mean"]]
                for name in layer_names
            }})  # fmt: skip
            self._layout_done = True
        for name, probs in zip(layer_names, policies):
            ppl = perplexity(probs)
            for k, value in enumerate(ppl.tolist()):
                self.writer.add_scalar(f"routing/{name}/perplexity_{task_tag(k, task_names[k] if k < len(task_names) else None)}", value, step)
            self.writer.add_scalar(f"routing/{name}/perplexity_mean", float(ppl.mean()), step)
        if layer_names:
            from routing_rl.plots import figures  # matplotlib only once there is something to draw

            if figures.similarity_too_large(len(layer_names), task_names) is not None:
                return  # too many layers or tasks to draw every epoch (routing-rl report says which)
            rows = [p.tolist() for p in policies]
            title = f"task similarity, epoch {step}"
            self._figure("routing/task_similarity", lambda: figures.similarity_figure(rows, task_names, layer_names, title),
                         lambda figure: figures.redraw_similarity_figure(figure, rows, title), step)  # fmt: skip

    def utilization(self, utilization: list[list[float]], task_names: list[str], step: int) -> None:
        from routing_rl.plots import figures

        title = f"sub-network utilisation, epoch {step}"
        self._figure("utilization", lambda: figures.utilization_figure(utilization, task_names, title),
                     lambda figure: figures.redraw_utilization_figure(figure, utilization, title), step)  # fmt: skip

    def hparams(self, config: dict[str, Any], final: dict[str, Any]) -> None:
        """The run's options with its final metrics, for TensorBoard's HPARAMS tab."""
        simple = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items() if v is not None}
        metrics = {"hparam/test_mean_last": final["last"]["test_mean"], "hparam/test_mean_best_val": final["best_val"]["test_mean"]}
        self.writer.add_hparams(simple, {k: float("nan") if v is None else v for k, v in metrics.items()}, run_name="hparams")

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        self._figures.clear()
        self.writer.flush()
        self.writer.close()

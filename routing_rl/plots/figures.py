"""The papers' figures from results files, with matplotlib.

* Re-examining paper, Figure 1: policy perplexity of each routed layer over training.
* Figures 2 and 4: task-similarity heatmaps (cosine similarity of the tasks' policy rows), labelled
  with task names, with a colorbar on a fixed 0-1 scale so that two heatmaps can be compared.
* Figure 3: test accuracy of every run against the number of function blocks, with a cubic fit
  through the runs.
* SNR paper, Figure 2: a sweep's grid points as bars, the top-k trials' test mean ± standard error.
* SNR paper, Figures 3-4: test metric against training parameters, and against serving parameters
  with one series per model and L0 weight (dense and sparse SNR-Trans apart).
* SNR paper, Figure 5: the share of sub-networks each task uses, averaged over the top-k trials.
* A suite's methods as bars with error bars (mean ± std over seeds), the methods that beat the
  baseline starred, the baseline's mean and the chance level as lines.

Every function returns a :class:`matplotlib.figure.Figure`, so the same figure goes to a PNG
(``routing-rl report``) and to TensorBoard (``SummaryWriter.add_figure``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.lines  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from routing_rl.metrics.routing import cosine_similarity_matrix  # noqa: E402
from routing_rl.core.contracts import metric_label  # noqa: E402


def run_label(results: dict[str, Any], label: str | None = None) -> str:
    """What a run's figure titles call it: ``label`` (a suite's run name and seed), else its agent."""
    return label or results["config"]["agent"]


def data_label(results: dict[str, Any]) -> str:
    """What figure titles call a run's data: the data file's name for a run of ``--env files`` (every
    such run's env is "files", which tells the reader nothing), else the env's name."""
    info = results["env"].get("info")
    file = info.get("file") if isinstance(info, dict) else None
    return PurePath(file).name if isinstance(file, str) and file else results["env"]["name"]


PERPLEXITY_MAX_LEGEND = 16
"""The most routed layers the perplexity figure names in its legend; with more, the lines go unnamed
and a note gives their number."""


def perplexity_figure(results: dict[str, Any], label: str | None = None) -> Figure:
    """Mean policy perplexity over tasks of each routed layer per epoch, with the tasks' range shaded."""
    epochs = [e for e in results["epochs"] if "routing" in e]
    layers = results["learner"].get("routed_layers") or []
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    x = [e["epoch"] for e in epochs]
    for d, name in enumerate(layers):
        per_task = np.array([e["routing"]["perplexity"][d] for e in epochs])  # [epochs, T]
        ax.plot(x, per_task.mean(axis=1), marker="o", ms=3, label=name)
        ax.fill_between(x, per_task.min(axis=1), per_task.max(axis=1), alpha=0.15)
    ax.set_xlabel("epoch (policy at its end)")
    ax.set_ylabel("policy perplexity\n(line: mean over tasks; band: range)")
    ax.set_title(f"{run_label(results, label)} on {data_label(results)}: routing perplexity")
    ax.set_ylim(bottom=0.9)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if layers and len(layers) <= PERPLEXITY_MAX_LEGEND:
        ax.legend(title="routed layer")
    elif layers:  # a longer legend squeezes the axes to nothing (matplotlib warns that its layout collapsed)
        ax.text(0.99, 0.98, f"{len(layers)} routed layers", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return fig


SIMILARITY_MAX_PANELS = 32
"""The most heatmaps (routed layers, or seeds) one similarity figure draws side by side; matplotlib
lays out hundreds of panels for minutes, and no reader compares them."""

SIMILARITY_MAX_PIXELS = 64_000_000
"""The largest similarity figure drawn, in pixels at the saved resolution (8000 x 8000): three
heatmaps of 100 tasks are about 51 million and take a gigabyte of memory to draw, a heatmap of
30,000 tasks would take terabytes."""

DPI = 120


def similarity_size(panels: int, task_names: Sequence[str]) -> tuple[float, float]:
    """The size in inches of a similarity figure of ``panels`` heatmaps of these tasks."""
    size = 1.2 + 0.32 * len(task_names)
    labels = 0.06 * max((len(t) for t in task_names), default=0)  # inches the tick labels take at fontsize 7
    return (size + labels) * max(panels, 1) + 1.2, size + labels + 0.6


def similarity_too_large(panels: int, task_names: Sequence[str]) -> str | None:
    """Why a similarity figure of ``panels`` heatmaps of these tasks is not drawn (None when it is)."""
    if panels > SIMILARITY_MAX_PANELS:
        return f"{panels} heatmaps, more than the {SIMILARITY_MAX_PANELS} a figure shows side by side"
    width, height = (round(v * DPI) for v in similarity_size(panels, task_names))
    if width * height > SIMILARITY_MAX_PIXELS:
        return (f"{panels} heatmap{'s' if panels != 1 else ''} of {len(task_names)} tasks would make a {width} x {height}-pixel "
                f"image, more than the {SIMILARITY_MAX_PIXELS // 1_000_000} million pixels a figure may have")  # fmt: skip
    return None


def similarity_figure(policies: Sequence[Sequence[Sequence[float]]], task_names: Sequence[str],
                      layer_names: Sequence[str], title: str) -> Figure:  # fmt: skip
    """One task-similarity heatmap per routed layer, on a fixed 0-1 colour scale (see
    :func:`similarity_too_large` for the figures too large to draw)."""
    n = max(len(policies), 1)
    fig, axes = plt.subplots(1, n, figsize=similarity_size(n, task_names), layout="constrained", squeeze=False)
    image = None
    for ax, policy, name in zip(axes[0], policies, layer_names):
        image = ax.imshow(cosine_similarity_matrix(policy), vmin=0.0, vmax=1.0, cmap="magma")
        ticks = range(len(task_names))
        ax.set_xticks(ticks, task_names, rotation=90, fontsize=7)
        ax.set_yticks(ticks, task_names, fontsize=7)
        ax.set_title(name)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="cosine similarity of task policies", shrink=0.8)
    fig.suptitle(title)
    return fig


def redraw_similarity_figure(fig: Figure, policies: Sequence[Sequence[Sequence[float]]], title: str) -> bool:
    """Put new policies and title into a figure :func:`similarity_figure` drew, keeping its layout;
    False (nothing changed) when they do not fit its panels (another layer count or task count).

    TensorBoard gets a similarity figure every epoch; laying it out again each time (constrained
    layout, tick labels) is most of a small figure's drawing, and the layout depends
    only on the tasks' and layers' names, which an epoch does not change."""
    images = [ax.images[0] for ax in fig.axes if ax.images]
    matrices = [cosine_similarity_matrix(policy) for policy in policies]
    if len(images) != len(matrices) or any(image.get_array().shape != m.shape for image, m in zip(images, matrices)):
        return False
    for image, matrix in zip(images, matrices):
        image.set_data(matrix)
    for text in fig.texts:  # the suptitle's Text where the layout put it (fig.suptitle() would move it back)
        if text.get_text() == fig.get_suptitle():
            text.set_text(title)
            break
    return True


def run_similarity_figure(results: dict[str, Any], label: str | None = None) -> Figure:
    """:func:`similarity_figure` of a run's last epoch."""
    last = results["epochs"][-1]
    return similarity_figure(last["routing"]["policy"], results["env"]["task_names"], results["learner"]["routed_layers"],
                             f"{run_label(results, label)} on {data_label(results)}, epoch {last['epoch']}")  # fmt: skip


def blocks_figure(points: Sequence[tuple[int, float]], metric: str, title: str) -> Figure:
    """Test metric against blocks per routed layer: every run a point, the mean ± std of each
    block count beside it, and a cubic least-squares fit through the runs (Figure 3)."""
    blocks, values = (np.asarray(v, dtype=float) for v in zip(*points)) if points else (np.zeros(0),) * 2
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    ax.plot(blocks, values, "o", alpha=0.6, label="one run")
    levels = sorted(set(blocks.tolist()))
    means = [float(values[blocks == b].mean()) for b in levels]
    stds = [float(values[blocks == b].std(ddof=1)) if (blocks == b).sum() > 1 else 0.0 for b in levels]
    ax.errorbar(levels, means, yerr=stds, fmt="_", ms=14, capsize=3, color="black", label="mean ± std")
    if len(levels) >= 4:
        coeffs = cubic_fit(blocks, values)
        grid = np.linspace(blocks.min(), blocks.max(), 200)
        ax.plot(grid, np.polyval(coeffs, grid), label="cubic fit through the runs")
    ax.set_xlabel("function blocks per routed layer")
    ax.set_ylabel(f"test {metric_label(metric)}")
    ax.set_xticks(levels)
    ax.set_title(title)
    ax.legend()
    return fig


def cubic_fit(blocks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares cubic through every (blocks, value) point; ``np.polyval`` coefficients."""
    return np.polyfit(np.asarray(blocks, dtype=float), np.asarray(values, dtype=float), 3)


def size_figure(points: Sequence[tuple[str, int, float]], metric: str, title: str, parameters: str = "serving") -> Figure:
    """Test metric against model size, one marker series per label (SNR paper: Figure 3 against
    ``parameters="training"`` size, Figure 4 against ``"serving"`` size)."""
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for method in dict.fromkeys(m for m, _, _ in points):
        xs = [p for m, p, _ in points if m == method]
        ys = [v for m, _, v in points if m == method]
        order = np.argsort(xs)
        ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], marker="o", label=method)
    ax.set_xlabel(f"{parameters} parameters")
    ax.set_ylabel(f"test {metric_label(metric)}")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def utilization_figure(utilization: Sequence[Sequence[float]], task_names: Sequence[str], title: str) -> Figure:
    """Sub-network utilisation by task (SNR paper, Figure 5): which sub-networks each task reaches."""
    matrix = np.asarray(utilization, dtype=float)
    fig, ax = plt.subplots(figsize=(1.5 + 0.4 * matrix.shape[1], 1.2 + 0.35 * matrix.shape[0]), layout="constrained")
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(task_names)), task_names, fontsize=7)
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_xlabel("sub-network")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="utilisation")
    return fig


def redraw_utilization_figure(fig: Figure, utilization: Sequence[Sequence[float]], title: str) -> bool:
    """Put a new utilisation matrix and title into a figure :func:`utilization_figure` drew, keeping
    its layout (see :func:`redraw_similarity_figure`); False when the matrix has another shape."""
    matrix = np.asarray(utilization, dtype=float)
    ax = fig.axes[0]
    if not ax.images or ax.images[0].get_array().shape != matrix.shape:
        return False
    ax.images[0].set_data(matrix)
    ax.set_title(title)
    return True


def task_utilization_figure(tasks: Sequence[str], means: Sequence[float], errors: Sequence[float], title: str, order_note: str) -> Figure:
    """The share of sub-networks each task uses, averaged over models (SNR paper, Figure 5), with
    the standard error as error bars; ``tasks`` come in the order they are drawn (``order_note`` says which)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 + 0.45 * len(tasks)), 3.8), layout="constrained")
    ax.bar(range(len(tasks)), means, yerr=np.nan_to_num(np.asarray(errors, dtype=float)), capsize=3, color="tab:green")
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel(f"task ({order_note})")
    ax.set_ylabel("share of sub-networks used (mean ± s.e.)")
    ax.set_title(title)
    return fig


def bars_figure(rows: Sequence[tuple[str, float, float]], metric: str, title: str, baseline: str | None = None,
                error_name: str = "std", average: str = "macro", counts: Sequence[int] | None = None,
                references: Sequence[float | None] | None = None, reference_name: str = "paper",
                significant: Sequence[bool] | None = None, significance_note: str = "better than the baseline",
                higher_is_better: bool = True, chance: float | None = None) -> Figure:  # fmt: skip
    """A suite's methods as bars: mean with the standard deviation over seeds as error bars (or,
    ``error_name="standard error"``, a sweep's top-k trials with the standard error of their mean:
    the SNR paper's Figure 2). ``counts`` (runs behind each bar) go under the names, and a bar of
    one run gets no error bar: a flat cap would read as a spread of zero. ``references`` (a
    paper's mean per bar, None where it has none) are drawn as markers over the bars.

    The figure answers the table's question at a glance: a star over each bar ``significant`` marks
    (the legend says what it means: ``significance_note``), a dashed line at the baseline's mean,
    and a dotted line at ``chance`` (the majority-class accuracy, where the data records one). The
    y axis never goes below 0 when nothing drawn is negative (a metric such as MSE or accuracy
    cannot be), and says "lower is better" for a metric where it is."""
    names = [r[0] for r in rows]
    means = np.array([r[1] for r in rows], dtype=float)
    stds = np.nan_to_num(np.array([r[2] for r in rows], dtype=float))
    errors = stds if counts is None else np.where(np.asarray(counts) >= 2, stds, np.nan)
    labels = [f"{n} (baseline)" if n == baseline else n for n in names]
    if counts is not None:
        labels = [f"{label}, n = {k}" for label, k in zip(labels, counts)]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.75 * len(rows)), 3.8), layout="constrained")
    colours = ["tab:gray" if n == baseline else "tab:blue" for n in names]
    ax.bar(range(len(rows)), means, yerr=errors, capsize=4, color=colours)
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    tops = means + np.nan_to_num(errors)  # where a bar's error bar ends: its star goes above it
    lows = means - np.nan_to_num(errors)
    extra: list[float] = []  # other y values the axis must show
    if baseline in names and np.isfinite(means[names.index(baseline)]):
        level = float(means[names.index(baseline)])
        ax.axhline(level, ls="--", lw=1, color="tab:gray", zorder=0.5, label=f"{baseline} mean (baseline)")
    if chance is not None and math.isfinite(chance):
        ax.axhline(chance, ls=":", lw=1.2, color="tab:red", zorder=0.5, label=f"majority class: {chance:.3g} (chance)")
        extra.append(chance)
    finite = np.isfinite(means)
    starred = [i for i, mark in enumerate(significant or []) if mark and i < len(rows) and finite[i]]
    if starred:
        span = float(np.max(np.concatenate([tops[finite], extra])) - np.min(np.concatenate([lows[finite], extra])))
        ys = [float(tops[i]) + 0.1 * max(span, 1e-3) for i in starred]
        ax.scatter(starred, ys, marker="*", s=90, color="black", zorder=3, gid="significance", label=significance_note)
        extra.extend(ys)
    marked = [(i, v) for i, v in enumerate(references or []) if v is not None]
    if marked:
        ax.scatter([i for i, _ in marked], [v for _, v in marked], marker="D", color="tab:red", zorder=3, s=24,
                   label=f"{reference_name} mean")  # fmt: skip
        extra.extend(v for _, v in marked)  # the y range holds the paper's means too
    if finite.any():
        low = float(np.min(np.concatenate([lows[finite], extra])))  # the lowest and highest thing drawn
        high = float(np.max(np.concatenate([tops[finite], extra])))
        spread = max(high - low, 1e-3)
        below, above = (0.4, 0.25) if marked else (1.5, 1.0)  # a paper's far-off mean widens the spread itself
        bottom = min(float(np.min(np.concatenate([means[finite], extra]))) - below * spread, low - 0.1 * spread)
        top = max(float(np.max(np.concatenate([means[finite], extra]))) + above * spread, high + 0.1 * spread)
        if low >= 0:
            bottom = max(bottom, 0.0)  # nothing drawn is negative: an axis below 0 would show values the metric cannot take
        ax.set_ylim(bottom, top)
    handles, texts = ax.get_legend_handles_labels()
    if handles:  # under the figure: beside the axes, a legend of long lines would squeeze them to nothing
        fig.legend(handles, texts, loc="outside lower center", fontsize=8, frameon=False)
    averaged = "" if average == "macro" else f"{average}-averaged "
    direction = "" if higher_is_better else "\nlower is better"
    ax.set_ylabel(f"test {averaged}{metric_label(metric)} (mean ± {error_name}){direction}")
    ax.set_title(title)
    return fig


SettingPoint = tuple[float, float, float, float, bool]
"""One method in one setting: x, difference to the baseline, the 95% interval's ends, and whether
it beats the baseline after Holm's correction."""


def settings_figure(panels: Sequence[tuple[str, dict[str, Sequence[SettingPoint]]]], ticks: Sequence[tuple[float, str]], metric: str,
                    title: str, x_label: str, baseline: str, ceiling: str | None = None, log_x: bool = False) -> Figure:  # fmt: skip
    """A suite's settings side by side: in each panel, each method's test metric minus the same
    setting's baseline (mean of the per-seed differences with its 95% interval) against the
    setting's x. The baseline is the line at 0; ``ceiling`` (the oracle's routes) is drawn in black
    as the line learned routing aims for. A filled marker beats the baseline after Holm's
    correction over the suite's comparisons, a hollow one does not."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 1.0, 4.2), layout="constrained", sharey=True, squeeze=False)
    methods = list(dict.fromkeys(m for _, series in panels for m in series))
    palette = [c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"] if c not in ("#7f7f7f",)]
    colours = {m: "black" if m == ceiling else palette[i % len(palette)] for i, m in enumerate(methods)}
    span = max((x for x, _ in ticks), default=1.0) - min((x for x, _ in ticks), default=0.0) or 1.0
    offsets = {m: i - (len(methods) - 1) / 2 for i, m in enumerate(methods)}  # methods side by side, not on top of each other
    for ax, (panel, series) in zip(axes[0], panels):
        ax.axhline(0.0, color="tab:gray", lw=1.2, ls="--", zorder=0.5, label=f"{baseline} (baseline)")
        for method, points in series.items():
            ordered = sorted(points)
            xs = np.array([p[0] for p in ordered], dtype=float)
            shift = xs * (1.0 + 0.025 * offsets[method]) if log_x else xs + 0.01 * span * offsets[method]
            ys = np.array([p[1] for p in ordered], dtype=float)
            low = ys - np.array([p[2] for p in ordered], dtype=float)
            high = np.array([p[3] for p in ordered], dtype=float) - ys
            colour = colours[method]
            style = dict(lw=2.2, ls="-", zorder=3) if method == ceiling else dict(lw=1.2, ls="-", zorder=2)
            ax.errorbar(shift, ys, yerr=np.nan_to_num(np.vstack([low, high])), color=colour, capsize=3, label=method + (" (ceiling)" if method == ceiling else ""), **style)
            filled = [i for i, p in enumerate(ordered) if p[4]]
            ax.scatter(shift, ys, s=28, facecolors=[colour if i in filled else "white" for i in range(len(ordered))],
                       edgecolors=colour, zorder=4)  # fmt: skip
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks([x for x, _ in ticks], [label for _, label in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(x_label)
    axes[0][0].set_ylabel(f"test {metric_label(metric)} minus {baseline}'s\n(mean over seeds, 95% interval)")
    handles, texts = axes[0][0].get_legend_handles_labels()
    handles.append(matplotlib.lines.Line2D([], [], marker="o", ls="", color="black", markerfacecolor="black"))
    texts.append(f"filled: beats {baseline} (Holm-corrected p < 0.05)")
    fig.legend(handles, texts, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


def save(fig: Figure, path: Any) -> None:
    """Write a figure as PNG and free it; ``bbox_inches="tight"`` keeps long tick labels (task names) inside the image."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)

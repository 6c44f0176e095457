"""``routing-rl report RUN_OR_SUITE_DIR``: the papers' figures of a run or a suite, as PNG files.

A run directory gets its routing perplexity (Figure 1) and task-similarity heatmaps (Figure 2), or
a model's sub-network utilisation. A suite directory gets its methods as bars with error bars,
each method's perplexity and the similarity heatmaps of its first routed FC layer for every seed
side by side (Figure 4), the metric of every run against the number of blocks with a cubic fit
through the runs when the methods differ in ``blocks`` (Figure 3), and the metric against serving size when they differ in size (the SNR paper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from routing_rl.training.results import ResultsError, load_results


def run_figures(results: dict[str, Any], out: Path, prefix: str = "") -> list[Path]:
    """The figures of one run into ``out``; returns the files written."""
    from routing_rl.analysis import figures  # matplotlib is imported only when drawing

    written = []
    last = results["epochs"][-1] if results["epochs"] else None
    if last is None:
        return written
    if "routing" in last and results["learner"].get("routed_layers"):
        for name, fig in (("perplexity", figures.perplexity_figure(results)), ("similarity", figures.run_similarity_figure(results))):
            path = out / f"{prefix}{name}.png"
            figures.save(fig, path)
            written.append(path)
    if last.get("utilization") is not None:
        path = out / f"{prefix}utilization.png"
        figures.save(figures.utilization_figure(last["utilization"], results["env"]["task_names"],
                                                f"{results['config']['agent']}: sub-network utilisation"), path)  # fmt: skip
        written.append(path)
    return written


def blocks_points(by_method: dict[str, list[dict[str, Any]]], blocks: dict[str, int | None], block: str = "last") -> list[tuple[int, float]]:
    """Figure 3's points: one (blocks, test metric) per finished run, not one per method.

    The paper's caption: "Each point is an independent experiment ... The curve is a cubic
    polynomial best fit", so the fit sees every run (a method with more seeds weighs more).
    ``block`` is the results' ``final`` entry the suite tabulates (``last`` or ``best_val``).
    """
    return [(int(blocks[m]), float(r["final"][block]["test_mean"])) for m, rs in by_method.items() if blocks.get(m) for r in rs]


def seeds_figure_layer(routed_layers: list[str]) -> tuple[int, str]:
    """The routed layer whose policies Figure 4 compares across seeds: the first fully connected
    one ("the similarity of the routing policy for the first fully connected layer"), else the
    first routed layer. Returns its index among the routed layers and its name."""
    for index, name in enumerate(routed_layers):
        if name.startswith("fc"):
            return index, name
    return 0, routed_layers[0] if routed_layers else "layer 0"


def suite_figures(directory: Path, out: Path) -> list[Path]:
    """The figures of a suite directory (one written by ``routing-rl suite run``)."""
    from routing_rl.analysis import figures
    from routing_rl.suites.manifest import read_manifest
    from routing_rl.suites.table import build_rows, collect

    manifest = read_manifest(directory)
    head = manifest["suite"]
    kept = head.get("kept")
    rows, metric, _ = build_rows(manifest["trials"], directory, head["baseline"], head.get("metric", "last"), kept=kept)
    by_method, _, _, _ = collect(manifest["trials"], directory, kept)
    written = []
    path = out / "methods.png"
    figures.save(figures.bars_figure([(r.method, r.mean, r.std) for r in rows if r.n], metric,
                                     f"suite {head['name']}", head["baseline"]), path)  # fmt: skip
    written.append(path)
    configs = {t["run"]: t["config"] for t in manifest["trials"]}
    blocks = {m: configs[m].get("blocks") for m in by_method}
    if len({b for b in blocks.values() if b}) >= 2:
        block = "last" if head.get("metric", "last") == "last" else "best_val"
        points = blocks_points(by_method, blocks, block)
        path = out / "blocks.png"
        figures.save(figures.blocks_figure(points, metric, f"suite {head['name']}: metric against blocks"), path)
        written.append(path)
    sizes = [(configs[m]["agent"], rs[0]["final"]["parameters"]["serving"], r.mean)
             for r in rows for m, rs in by_method.items() if m == r.method and rs]  # fmt: skip
    models_only = all(rs[0]["learner"]["kind"] == "model" for rs in by_method.values() if rs)
    if models_only and len({p for _, p, _ in sizes}) >= 2 and len(sizes) > len({a for a, _, _ in sizes}):
        path = out / "size.png"
        figures.save(figures.size_figure(sizes, metric, f"suite {head['name']}: metric against serving size"), path)
        written.append(path)
    for method, results in by_method.items():
        if not results:
            continue
        written += run_figures(results[0], out, prefix=f"{method}-")
        if results[0]["epochs"][-1].get("routing", {}).get("policy") and len(results) > 1:  # routed layers to compare
            layer, layer_name = seeds_figure_layer(results[0]["learner"].get("routed_layers") or [])
            policies = [r["epochs"][-1]["routing"]["policy"][layer] for r in results]
            names = [f"seed {r['config']['seed']}" for r in results]
            path = out / f"{method}-seeds.png"
            figures.save(figures.similarity_figure(policies, results[0]["env"]["task_names"], names,
                                                   f"{method}: task similarity of {layer_name}'s policy by seed"), path)  # fmt: skip
            written.append(path)
    return written


@click.command("report")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out", default=None, type=click.Path(path_type=Path), help="Where to write the PNG files (default: SOURCE/figures).")
def report(source: Path, out: Path | None) -> None:
    """Write the papers' figures of a run directory or a suite directory as PNG files."""
    from routing_rl.suites.manifest import MANIFEST, read_manifest
    from routing_rl.suites.spec import SuiteError

    if source.is_file() and source.name != "results.json":
        raise click.ClickException(f"{source} is a file; give a run directory (or its results.json) or a suite directory")
    base = source.parent if source.is_file() else source
    out = out or base / "figures"
    try:
        is_suite = (base / MANIFEST).exists() and not source.is_file()
        results = None if is_suite else load_results(source)
        if is_suite:
            read_manifest(source)  # checked before the output folder is made
        out.mkdir(parents=True, exist_ok=True)
        written = suite_figures(source, out) if results is None else run_figures(results, out)
    except (ResultsError, SuiteError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise click.ClickException(f"cannot draw the figures of {source}: {type(exc).__name__}: {exc}") from None
    if not written:
        raise click.ClickException(f"{source} has nothing to draw (no finished epoch)")
    for path in written:
        click.echo(str(path))

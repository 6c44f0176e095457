"""``routing-rl report SOURCE``: the papers' figures of a run, a suite or a sweep, as PNG files.

SOURCE is a run directory (or its results.json), a suite directory, a sweep directory, or a suite
file (``.toml``: its finished trials in its suite directory and its kept folder, ``--scale`` for
another scale, so kept results draw on a fresh clone); ``--runs`` draws only the named runs of a
suite.

A run directory gets its routing perplexity (Figure 1) and task-similarity heatmaps (Figure 2) when
its router learns its routes (fixed routes have no policy to show: a line on stderr says so), or a
model's sub-network utilisation. A suite directory gets its methods as bars with error bars
(a star on each method that beats the baseline by the table's test, the baseline's mean and, where
the data records it, the majority-class accuracy as lines),
each learning router's perplexity and the similarity heatmaps of its first routed FC layer for every
seed side by side (Figure 4; not for fixed routes, nor for a method whose seeds all have the same
policy), the metric of every run against the number of blocks with a cubic fit through the runs
when the methods differ in ``blocks`` (Figure 3), and, for multi-task models of several sizes, the
metric against training size and against serving size, one series per model and L0 weight (the SNR
paper's Figures 3 and 4). A sweep directory gets its grid points' top-k test mean ± standard error
as bars, macro and micro averaged (SNR paper, Figure 2), and, for models that report it, each
point's sub-network use by task averaged over its top k (Figure 5).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import click

from routing_rl.analysis.routing_flags import flag_lines
from routing_rl.cli.common import CheckedPath, run_names
from routing_rl.core.files import RESULTS_LIMIT, FileCheckError, read_regular
from routing_rl.training.records.results import ResultsError, load_results
from routing_rl.training.records.results import RESULTS_NAME


FIXED_ROUTES = "fixed routes, no learned policy: its perplexity and task similarity would only redraw the route table"
"""Why a router that does not learn its routes gets no perplexity, similarity or seeds figure."""


def learns_routes(results: dict[str, Any]) -> bool:
    """Whether a run's router learned its routes: the ``learns_routes`` its results record (the
    router's class attribute), else, for results written before it was recorded, the attribute of the
    agent's class today; a model, or an agent no longer known, counts as learning (its figures are drawn)."""
    learner = results["learner"]
    if isinstance(learner.get("learns_routes"), bool):
        return bool(learner["learns_routes"])
    if learner.get("kind") != "router":
        return True
    from routing_rl.training.setup.composition import agent_class

    try:
        return bool(getattr(agent_class(results["config"]["agent"]), "learns_routes", True))
    except (KeyError, ValueError):
        return True


def run_figures(results: dict[str, Any], out: Path, prefix: str = "", label: str | None = None, note: bool = True) -> list[Path]:
    """The figures of one run into ``out`` (titled ``label``, else the agent's name); returns the files
    written. A router with fixed routes gets no perplexity or similarity figure, and (``note``) one line
    on stderr saying why."""
    from routing_rl.plots import figures  # matplotlib is imported only when drawing

    written: list[Path] = []
    last = results["epochs"][-1] if results["epochs"] else None
    if last is None:
        return written
    routed = "routing" in last and bool(results["learner"].get("routed_layers"))
    if routed and not learns_routes(results):
        if note:
            click.echo(f"no {prefix}perplexity.png or {prefix}similarity.png: {results['config']['agent']} has {FIXED_ROUTES}", err=True)
    elif routed:
        path = out / f"{prefix}perplexity.png"
        figures.save(figures.perplexity_figure(results, label), path)
        written.append(path)
        path = out / f"{prefix}similarity.png"
        if too_large := figures.similarity_too_large(len(results["learner"]["routed_layers"]), results["env"]["task_names"]):
            click.echo(f"skipped {path}: {too_large}", err=True)
        else:
            figures.save(figures.run_similarity_figure(results, label), path)
            written.append(path)
    if last.get("utilization") is not None:
        path = out / f"{prefix}utilization.png"
        figures.save(figures.utilization_figure(last["utilization"], results["env"]["task_names"],
                                                f"{results['config']['agent']} on {figures.data_label(results)}: sub-network utilisation"), path)  # fmt: skip
        written.append(path)
    return written


def blocks_points(by_method: dict[str, list[dict[str, Any]]], blocks: dict[str, int | None], block: str = "last") -> list[tuple[int, float]]:
    """Figure 3's points: one (blocks, test metric) per finished run, not one per method.

    The paper's caption: "Each point is an independent experiment ... The curve is a cubic
    polynomial best fit", so the fit sees every run (a method with more seeds weighs more).
    ``block`` is the results' ``final`` entry the suite tabulates (``last`` or ``best_val``).
    """
    return [(int(blocks[m]), float(r["final"][block]["test_mean"])) for m, rs in by_method.items() if blocks.get(m) for r in rs]


def size_series(config: dict[str, Any]) -> str:
    """The series of a model in the size figures: its agent name, and for a model with an L0 weight
    (the SNR models), that weight too, so that the paper's Figure 4 can set dense (lambda 1e-5)
    against sparse (1e-4) SNR-Trans."""
    import inspect

    from routing_rl.training.setup.composition import agent_class

    agent = config["agent"]
    parameter = inspect.signature(agent_class(agent).__init__).parameters.get("l0_lambda")
    if parameter is None:
        return agent
    return f"{agent} λ={float(config.get('agent_options', {}).get('l0_lambda', parameter.default)):g}"


def size_points(methods: list[tuple[str, float]], by_method: dict[str, list[dict[str, Any]]], configs: dict[str, dict[str, Any]],
                kind: str) -> list[tuple[str, float, float]]:
    """The size figures' points: (series, size, tabulated metric) per method, the size being the
    mean over its seeds of the ``kind`` parameter count (``train``: the SNR paper's Figure 3,
    ``serving``: its Figure 4; an L0-pruned serving model differs from seed to seed)."""
    return [(size_series(configs[m]), statistics.fmean(x["final"]["parameters"][kind] for x in by_method[m]), value)
            for m, value in methods]  # fmt: skip


def seeds_figure_layer(routed_layers: list[str]) -> tuple[int, str]:
    """The routed layer whose policies Figure 4 compares across seeds: the first fully connected
    one ("the similarity of the routing policy for the first fully connected layer"), else the
    first routed layer. Returns its index among the routed layers and its name."""
    for index, name in enumerate(routed_layers):
        if name.startswith("fc"):
            return index, name
    return 0, routed_layers[0] if routed_layers else "layer 0"


def significance_p(row: Any) -> float | None:
    """The p-value by which methods.png stars a method as better than the baseline: the one the
    table's verdict reads, Holm-corrected over the table's comparisons (the uncorrected p where
    there was nothing to correct)."""
    return row.p_holm if row.p_holm is not None else row.p


def significant_rows(rows: list[Any]) -> list[bool]:
    """Per row, whether :func:`significance_p` is below the table's level (:data:`routing_rl.suites.table_text.SIGNIFICANCE`)."""
    from routing_rl.suites.table_text import SIGNIFICANCE

    marks = []
    for row in rows:
        p = significance_p(row)
        marks.append(p is not None and not math.isnan(p) and p < SIGNIFICANCE)
    return marks


def significance_note(baseline: str | None) -> str:
    """The legend of methods.png's stars: what test, against what, at what level."""
    from routing_rl.suites.table_text import SIGNIFICANCE

    return f"beats {baseline or 'the baseline'}: the table's one-tailed test, Holm-corrected p < {SIGNIFICANCE:g}"


def chance_level(results: dict[str, Any]) -> float | None:
    """The majority-class accuracy of a run's data as the macro mean over its tasks (what the
    accuracy bars average), where its suite records it: ``env.info.chance``, one number or one
    per task name (``--env files``); None otherwise."""
    chance = (results["env"].get("info") or {}).get("chance")
    if isinstance(chance, (int, float)) and not isinstance(chance, bool):
        return float(chance)
    if isinstance(chance, dict):
        values = [chance.get(name) for name in results["env"]["task_names"]]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return statistics.fmean(float(v) for v in values)
    return None


def suite_manifest(suite_file: Path, scale: str | None) -> tuple[dict[str, Any], Path]:
    """A suite file read as ``suite run`` would write its ``suite.json``, and its default directory:
    so that the figures of kept trials can be drawn from a fresh clone, where no suite directory exists."""
    from routing_rl.suites import load_suite_file
    from routing_rl.suites.runner import manifest_of

    spec = load_suite_file(suite_file)
    return manifest_of(spec, scale, spec.trials(scale)), spec.directory(scale)


def suite_figures(directory: Path, out: Path, manifest: dict[str, Any] | None = None) -> list[Path]:
    """The figures of a suite directory (one written by ``routing-rl suite run``), or of the trials of
    ``manifest`` (a suite file's) found there or in its kept folder."""
    from routing_rl.plots import figures
    from routing_rl.suites.manifest import read_manifest
    from routing_rl.suites.table import build_rows, collect

    manifest = manifest if manifest is not None else read_manifest(directory)
    head = manifest["suite"]
    if head.get("settings"):  # a sweep over settings: one figure of every setting (a method's runs are drawn by `report` of each trial)
        from routing_rl.cli.settings_figure import settings_figures

        return settings_figures(directory, out, manifest)
    kept = head.get("kept")
    rows, metric, higher = build_rows(manifest["trials"], directory, head["baseline"], head.get("metric", "last"),
                                      head.get("reference") or {}, kept=kept, test=head.get("test", "paired"))  # fmt: skip
    by_method, _, _, _ = collect(manifest["trials"], directory, kept)
    written: list[Path] = []
    if not any(by_method.values()):
        return written
    data = {figures.data_label(r) for rs in by_method.values() for r in rs}
    suite = f"suite {head['name']}" + (f" on {data.pop()}" if len(data) == 1 else "")  # the data file of a user's own battery
    path = out / "methods.png"
    drawn = [r for r in rows if r.n]
    chances = {chance_level(r) for rs in by_method.values() for r in rs}  # chance is the data's, the same for every run
    chance = chances.pop() if metric == "accuracy" and len(chances) == 1 else None
    figures.save(figures.bars_figure([(r.method, r.mean, r.std) for r in drawn], metric, suite, head["baseline"],
                                     counts=[r.n for r in drawn], references=[r.reference_mean for r in drawn],
                                     reference_name=head.get("reference_source") or "paper",
                                     significant=significant_rows(drawn), significance_note=significance_note(head["baseline"]),
                                     higher_is_better=higher, chance=chance), path)  # fmt: skip
    written.append(path)
    configs = {t["run"]: t["config"] for t in manifest["trials"]}
    blocks = {m: configs[m].get("blocks") for m in by_method}
    if len({b for b in blocks.values() if b}) >= 2:
        block = "last" if head.get("metric", "last") == "last" else "best_val"
        points = blocks_points(by_method, blocks, block)
        path = out / "blocks.png"
        figures.save(figures.blocks_figure(points, metric, f"{suite}: metric against blocks"), path)
        written.append(path)
    models_only = all(rs[0]["learner"]["kind"] == "model" for rs in by_method.values() if rs)
    for kind, label, figure in (("train", "training", "Figure 3"), ("serving", "serving", "Figure 4")):
        sizes = size_points([(r.method, r.mean) for r in rows if r.n], by_method, configs, kind)
        if models_only and len({p for _, p, _ in sizes}) >= 2 and len(sizes) > len({a for a, _, _ in sizes}):
            path = out / f"size-{kind}.png"
            figures.save(figures.size_figure(sizes, metric, f"{suite}: metric against {label} size ({figure})", label), path)
            written.append(path)
    fixed: list[str] = []
    for method, results in by_method.items():
        if not results:
            continue
        for trial in results:  # a router that did not route makes its verdict misleading: say so
            for line in flag_lines(trial, f"{method} seed {trial['config']['seed']}"):
                click.echo(line, err=True)
        written += run_figures(results[0], out, prefix=f"{method}-", label=f"{method} (seed {results[0]['config']['seed']})", note=False)
        routed = bool(results[0]["epochs"][-1].get("routing", {}).get("policy"))
        if routed and not learns_routes(results[0]):
            fixed.append(method)
        elif routed and len(results) > 1:  # routed layers to compare
            layer, layer_name = seeds_figure_layer(results[0]["learner"].get("routed_layers") or [])
            policies = [r["epochs"][-1]["routing"]["policy"][layer] for r in results]
            if all(p == policies[0] for p in policies[1:]):
                continue  # routes fixed by construction (no sharing, shared bottom): the seeds have nothing to disagree on
            names = [f"seed {r['config']['seed']}" for r in results]
            path = out / f"{method}-seeds.png"
            if too_large := figures.similarity_too_large(len(policies), results[0]["env"]["task_names"]):
                click.echo(f"skipped {path}: {too_large}", err=True)
                continue
            figures.save(figures.similarity_figure(policies, results[0]["env"]["task_names"], names,
                                                   f"{method}: task similarity of {layer_name}'s policy by seed"), path)  # fmt: skip
            written.append(path)
    if fixed:
        click.echo(f"no perplexity, similarity or seeds figures of {', '.join(fixed)}: {FIXED_ROUTES}", err=True)
    return written


def sweep_figures(directory: Path, out: Path) -> list[Path]:
    """The figures of a sweep directory (its ``sweep.json``, written by ``routing-rl sweep``)."""
    import json

    import numpy as np

    from routing_rl.plots import figures
    from routing_rl.suites.sweep import SUMMARY
    summary = json.loads(read_regular(directory / SUMMARY, RESULTS_LIMIT, SUMMARY))
    points = [p for p in summary["points"] if p["k"]]
    written: list[Path] = []
    if not points:
        return written
    label = lambda p: p["label"] or summary["sweep"]  # noqa: E731
    path = out / "top-k.png"
    title = f"sweep {summary['sweep']}: top {summary['top_k']} by validation (Figure 2)"
    higher = summary.get("higher_is_better", True) is not False
    figures.save(figures.bars_figure([(label(p), p["test_mean"], p["test_stderr"]) for p in points], summary["metric"], title,
                                     error_name="standard error", higher_is_better=higher), path)  # fmt: skip
    written.append(path)
    if all(not math.isnan(p.get("test_micro_mean", math.nan)) for p in points):  # the paper's Figure 2 has both averages
        path = out / "top-k-micro.png"
        figures.save(figures.bars_figure([(label(p), p["test_micro_mean"], p["test_micro_stderr"]) for p in points],
                                         summary["metric"], title + ", micro average", error_name="standard error",
                                         average="micro", higher_is_better=higher), path)  # fmt: skip
        written.append(path)
    for point in points:
        runs = [load_results(directory / o["trial"]) for o in point["top"]]
        # Figure 5 is the share of sub-networks a task reaches through open L0 gates (SNR models); an
        # MMoE's gate weights sum to one per task, so their "share" says nothing and is not drawn.
        last = [r["epochs"][-1] for r in runs if r["epochs"]]
        shares = [e.get("utilization_per_task") for e in last if e.get("gates")]
        if not shares or len(shares) != len(runs) or any(s is None for s in shares):
            continue
        tasks = runs[0]["env"]["task_names"]
        volume = runs[0]["env"].get("info", {}).get("videos_per_vertical") or {}
        by_volume = bool(tasks) and all(t in volume for t in tasks)  # YouTube-8M records each vertical's training videos
        order = sorted(range(len(tasks)), key=lambda t: -volume[tasks[t]]) if by_volume else list(range(len(tasks)))
        note = "by training videos, most first" if by_volume else "in the data's order"
        matrix = np.asarray(shares, dtype=float)[:, order]
        errors = matrix.std(axis=0, ddof=1) / math.sqrt(len(matrix)) if len(matrix) > 1 else np.zeros(len(order))
        path = out / f"{label(point)}-utilization.png"
        figures.save(figures.task_utilization_figure([tasks[t] for t in order], matrix.mean(axis=0).tolist(), errors.tolist(),
                                                     f"{label(point)}: sub-network use, mean of the top {len(matrix)} (Figure 5)", note), path)  # fmt: skip
        written.append(path)
    return written


@click.command("report")
@click.argument("source", type=CheckedPath(path_type=Path))
@click.option("--out", "out", default=None, type=CheckedPath(path_type=Path, file_okay=False),
              help="Where to write the PNG files (default: SOURCE/figures; for a suite file, its suite directory's figures/).")
@click.option("--scale", default=None, help="With a suite file: the scale whose trials to draw.")
@click.option("--runs", "only", default=None, help="With a suite: comma-separated run names, draw only these runs (default: every run).")
def report(source: Path, out: Path | None, scale: str | None, only: str | None) -> None:
    """Write the papers' figures of a run, suite or sweep directory, or of a suite file's finished and kept trials, as PNG files."""
    from routing_rl.suites.manifest import MANIFEST, read_manifest
    from routing_rl.suites.spec import SuiteError
    from routing_rl.suites.sweep import SUMMARY

    suite_file = source.is_file() and source.suffix == ".toml"
    if scale is not None and not suite_file:
        raise click.BadParameter("applies to a suite file (.toml) only", param_hint="--scale")
    if source.is_file() and not suite_file and source.name != RESULTS_NAME:
        raise click.ClickException(f"{source} is a file; give a run directory (or its results.json), a suite directory or a suite file (.toml)")
    try:
        manifest, directory = suite_manifest(source, scale) if suite_file else (None, source)
        base = directory if suite_file else source.parent if source.is_file() else source
        out = out or base / "figures"
        is_sweep = not suite_file and (base / SUMMARY).exists() and not source.is_file()
        is_suite = suite_file or ((base / MANIFEST).exists() and not source.is_file() and not is_sweep)
        results = None if is_suite or is_sweep else load_results(source)
        if is_suite and manifest is None:
            manifest = read_manifest(source)  # checked before the output folder is made
        if only is not None:
            if manifest is None:
                raise click.BadParameter("applies to a suite file or directory only", param_hint="--runs")
            from routing_rl.suites.settings import split_setting_row

            has_settings = bool(manifest["suite"].get("settings"))
            runs = {t["run"]: split_setting_row(t["run"], has_settings)[1] for t in manifest["trials"]}
            names = run_names(only, list(dict.fromkeys(runs.values())), source)
            manifest = {**manifest, "trials": [t for t in manifest["trials"] if runs[t["run"]] in names]}
        made = [p for p in (out, *out.parents) if not p.exists()]
        out.mkdir(parents=True, exist_ok=True)
        if is_sweep:
            written = sweep_figures(source, out)
        else:
            written = suite_figures(directory, out, manifest) if results is None else run_figures(results, out)
        for line in flag_lines(results) if results is not None else []:
            click.echo(line, err=True)
        if not written:
            for folder in made:  # leave no empty folder behind
                folder.rmdir()
    except (ResultsError, SuiteError, FileCheckError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise click.ClickException(f"cannot draw the figures of {source}: {type(exc).__name__}: {exc}") from None
    if not written and results is not None and results["epochs"]:
        raise click.ClickException(f"{source} has no figure to draw: a run gets routing figures when its router learns its routes, "
                                   "and a sub-network utilisation figure when its model records one")  # fmt: skip
    if not written:
        raise click.ClickException(f"{source} has nothing to draw (no finished trial or epoch)")
    for path in written:
        click.echo(str(path))


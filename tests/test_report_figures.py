"""What `routing-rl report` draws for a decision: methods.png's significance stars, baseline and chance
lines and axis, titles that name a user's data file, and no policy figures for fixed routes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing_rl.cli import report as report_cli
from routing_rl.plots import figures


@pytest.fixture
def document(write_results, tmp_path_factory):
    """``document(test_mean, **fields)``: the minimal results.json of tests/conftest.py, as a dict."""

    def make(*args, **kwargs):
        return json.loads((write_results(tmp_path_factory.mktemp("doc"), *args, **kwargs) / "results.json").read_text())

    return make


def _stars(ax):
    """The offsets of methods.png's significance stars (none when no method is starred)."""
    found = [c for c in ax.collections if c.get_gid() == "significance"]
    return found[0].get_offsets() if found else np.zeros((0, 2))


def _lines(ax):
    """The horizontal reference lines of an axis, by label."""
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


def test_bars_star_the_significant_methods_and_draw_the_baseline_and_chance_lines():
    fig = figures.bars_figure([("base", 0.60, 0.01), ("a", 0.70, 0.02), ("b", 0.62, 0.03), ("c", 0.75, 0.0)], "accuracy", "t",
                              baseline="base", counts=[3, 3, 3, 1], significant=[False, True, False, True],
                              significance_note="beats base: t-test, p < 0.05", chance=0.5)  # fmt: skip
    ax = fig.axes[0]
    stars = _stars(ax)
    assert stars[:, 0].tolist() == [1, 3]  # one star over each significant method, above its error bar
    assert stars[0, 1] > 0.72 and stars[1, 1] > 0.75
    lines = _lines(ax)
    assert lines["base mean (baseline)"].get_linestyle() == "--" and lines["base mean (baseline)"].get_ydata()[0] == 0.60
    assert lines["majority class: 0.5 (chance)"].get_ydata()[0] == 0.5
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["base mean (baseline)", "majority class: 0.5 (chance)", "beats base: t-test, p < 0.05"]
    low, high = ax.get_ylim()
    assert 0 <= low < 0.5 and high > stars[:, 1].max()  # chance and every star in view
    assert "lower is better" not in ax.get_ylabel()


def test_bars_of_a_lower_is_better_metric_never_go_below_zero_and_say_so():
    fig = figures.bars_figure([("base", 0.30, 0.02), ("a", 0.011, 0.001)], "mse", "t", baseline="base", higher_is_better=False)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0.0  # the spread would have put the axis at about -0.4
    assert ax.get_ylabel().endswith("lower is better") and "MSE" in ax.get_ylabel()
    assert len(_stars(ax)) == 0
    negative = figures.bars_figure([("base", -0.2, 0.05), ("a", 0.1, 0.05)], "score", "t", baseline="base")
    assert negative.axes[0].get_ylim()[0] < -0.25  # a metric that does go below zero keeps its whole range


def _suite(document, tmp_path: Path, values: dict[str, list[float]], metric: str, higher: bool, info: dict, baseline: str = "base"):
    """A suite directory's trials with these test means (one trial per value), on data described by ``info``."""
    trials = []
    for method, seeds in values.items():
        for seed, value in enumerate(seeds):
            name = f"{method}-s{seed}-x"
            results = document(value, metric=metric, higher_is_better=higher, env="files")
            results["env"]["info"] = info
            results["config"]["seed"] = seed
            (tmp_path / name).mkdir(parents=True)
            (tmp_path / name / "results.json").write_text(json.dumps(results))
            trials.append({"run": method, "seed": seed, "name": name, "config": results["config"]})
    return {"suite": {"name": "battery", "baseline": baseline, "metric": "last"}, "trials": trials}


@pytest.fixture
def drawn(monkeypatch):
    """The figures ``report`` saves, by file name (saved all the same)."""
    seen = {}
    save = figures.save

    def keep(fig, path):
        seen[Path(path).name] = fig
        save(fig, path)

    monkeypatch.setattr(figures, "save", keep)
    return seen


def test_methods_png_of_an_mse_battery_on_a_file(tmp_path, drawn, document):
    """Lower is better: ``a`` beats the baseline (p < 0.05), ``b`` does not, ``c`` has one seed (not
    testable); one star, the baseline's line, an axis from 0 and the data file in the title."""
    from routing_rl.suites.table import build_rows

    values = {"base": [0.30, 0.31, 0.29], "a": [0.010, 0.012, 0.011], "b": [0.29, 0.33, 0.31], "c": [0.005]}
    manifest = _suite(document, tmp_path / "suite", values, "mse", False, {"file": "/home/me/data/table.csv", "target_scale": {}})
    out = tmp_path / "fig"
    out.mkdir()
    written = report_cli.suite_figures(tmp_path / "suite", out, manifest)
    assert [p.name for p in written] == ["methods.png"] and (out / "methods.png").stat().st_size > 0
    rows, _, _ = build_rows(manifest["trials"], tmp_path / "suite", "base")
    significant = [r.method for r in rows if r.p_holm is not None and r.p_holm < 0.05]
    assert significant == ["a"]
    ax = drawn["methods.png"].axes[0]
    assert len(_stars(ax)) == len(significant) and _stars(ax)[0, 0] == 1
    assert ax.get_title() == "suite battery on table.csv" and "files" not in ax.get_title()
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylabel().endswith("lower is better")
    assert _lines(ax)["base mean (baseline)"].get_ydata()[0] == pytest.approx(0.30)
    assert not [label for label in _lines(ax) if "chance" in label]  # no chance level for a regression
    legend = [t.get_text() for t in drawn["methods.png"].legends[0].get_texts()]
    assert "beats base: the table's one-tailed test, Holm-corrected p < 0.05" in legend


def test_methods_png_draws_the_majority_class_of_a_classification_file(tmp_path, drawn, document):
    values = {"base": [0.80, 0.81, 0.79], "a": [0.90, 0.91, 0.92]}
    info = {"file": "cells.parquet", "chance": {"task0": 0.6, "task1": 0.8}}  # per task, as --env files records it
    manifest = _suite(document, tmp_path / "suite", values, "accuracy", True, info)
    report_cli.suite_figures(tmp_path / "suite", tmp_path, manifest)
    ax = drawn["methods.png"].axes[0]
    chance = _lines(ax)["majority class: 0.7 (chance)"]
    assert chance.get_ydata()[0] == pytest.approx(0.7) and ax.get_ylim()[0] < 0.7
    assert len(_stars(ax)) == 1 and ax.get_title() == "suite battery on cells.parquet"


def test_the_stars_follow_the_one_p_value_the_figure_reads(tmp_path, drawn, monkeypatch, document):
    """The p that stars a method is read in one place (significance_p): switching it there (say, to a
    corrected p) changes the figure and nothing else needs to."""
    values = {"base": [0.80, 0.81, 0.79], "a": [0.90, 0.91, 0.92], "b": [0.95, 0.96, 0.94]}
    manifest = _suite(document, tmp_path / "suite", values, "accuracy", True, {})
    report_cli.suite_figures(tmp_path / "suite", tmp_path, manifest)
    assert len(_stars(drawn["methods.png"].axes[0])) == 2
    monkeypatch.setattr(report_cli, "significance_p", lambda row: None if row.p is None else 1.0)
    report_cli.suite_figures(tmp_path / "suite", tmp_path, manifest)
    assert len(_stars(drawn["methods.png"].axes[0])) == 0
    assert drawn["methods.png"].axes[0].get_title() == "suite battery on files"  # no file recorded: the env's name


def _routed(document, agent: str, learns: bool | None, file: str | None) -> dict:
    policy = [[[0.9, 0.1], [0.2, 0.8]]]
    results = document(0.8, routing={"policy": policy, "perplexity": [[1.2, 1.5]], "routes": [[0], [1]]}, env="files")
    results["config"]["agent"] = agent
    if learns is not None:
        results["learner"]["learns_routes"] = learns
    if file is not None:
        results["env"]["info"] = {"file": file}
    return results


def test_run_titles_name_the_data_file_and_other_envs_by_name(document):
    results = _routed(document, "wpl", True, "/data/own/table.csv")
    assert figures.data_label(results) == "table.csv"
    perplexity = figures.perplexity_figure(results, "wpl (seed 0)")
    assert perplexity.axes[0].get_title() == "wpl (seed 0) on table.csv: routing perplexity"
    assert figures.run_similarity_figure(results).get_suptitle() == "wpl on table.csv, epoch 1"
    plain = document(0.8, env="synthetic-groups")
    assert figures.data_label(plain) == "synthetic-groups"


@pytest.mark.parametrize(("agent", "learns", "draws"), [
    ("wpl", True, True), ("hard-concrete", True, True), ("shared-bottom", False, False),
    ("no-sharing", None, False), ("fixed-random", None, False), ("reinforce", None, True), ("qlearning", None, True),
])  # fmt: skip
def test_policy_figures_are_drawn_for_learned_routes_only(tmp_path, capsys, document, agent, learns, draws):
    """The results' learner.learns_routes decides; results written before it fall back to the class's attribute."""
    written = report_cli.run_figures(_routed(document, agent, learns, None), tmp_path)
    assert bool(written) is draws
    assert ([p.name for p in written] == ["perplexity.png", "similarity.png"]) if draws else not written
    note = capsys.readouterr().err
    assert (note == "") if draws else note.startswith(f"no perplexity.png or similarity.png: {agent} has fixed routes")


def test_chance_level_reads_one_number_or_one_per_task(document):
    results = document(0.8)
    assert report_cli.chance_level(results) is None
    results["env"]["info"] = {"chance": 0.25}
    assert report_cli.chance_level(results) == 0.25
    results["env"]["info"] = {"chance": {"task0": 0.5, "task1": 0.75}}
    assert report_cli.chance_level(results) == 0.625
    results["env"]["info"] = {"chance": {"task0": 0.5}}  # a task without one: no line rather than a wrong one
    assert report_cli.chance_level(results) is None

"""The Re-examining paper's figure suites run its protocol, and the figures read what the paper plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing_rl.cli.report import blocks_points, seeds_figure_layer
from routing_rl.plots.figures import cubic_fit
from routing_rl.suites import load_suite_file

SUITES = Path(__file__).resolve().parents[2] / "suites"
PAPER_LEARNER = {"variant": "public-code-corrected", "parameterization": "softmax"}


@pytest.mark.parametrize("name", ["reexamining-fig1-perplexity", "reexamining-fig3-blocks", "reexamining-fig4-seeds"])
def test_figure_suites_train_the_papers_protocol_and_learner(name):
    suite = load_suite_file(SUITES / f"{name}.toml")
    for scale, preset, env in ((None, "reexamining-cifar100", "cifar100-superclass"), ("quick", "reexamining-fmnist", "fmnist-mtl")):
        for trial in suite.trials(scale):
            c = trial.config
            assert (c.preset, c.env, c.agent, c.agent_options) == (preset, env, "wpl", PAPER_LEARNER)
            assert c.routed == "fc" and c.fc_layers == 3 and c.separate_optimizers and (c.lr, c.router_lr) == (1.5e-4, 2e-2)
            assert c.collab_reward == 0.0
    blocks = {t.config.blocks for t in suite.trials()}
    expected = {"reexamining-fig1-perplexity": {10}, "reexamining-fig3-blocks": {3, 6, 9, 12, 15, 18}, "reexamining-fig4-seeds": {6, 10}}
    assert blocks == expected[name]
    if name == "reexamining-fig4-seeds":
        assert sorted({t.config.seed for t in suite.trials()}) == [0, 1, 2, 3, 4]


def _result(value: float) -> dict:
    return {"final": {"last": {"test_mean": value}, "best_val": {"test_mean": value - 0.1}}}


def test_figure3_fits_the_cubic_through_every_run_not_the_means():
    by_method = {"b3": [_result(0.40), _result(0.44)], "b6": [_result(0.54)], "b9": [_result(0.50), _result(0.52), _result(0.47)],
                 "b12": [_result(0.45)], "b15": [_result(0.43), _result(0.41)]}
    blocks = {"b3": 3, "b6": 6, "b9": 9, "b12": 12, "b15": 15}
    points = blocks_points(by_method, blocks)
    assert points == [(3, 0.40), (3, 0.44), (6, 0.54), (9, 0.50), (9, 0.52), (9, 0.47), (12, 0.45), (15, 0.43), (15, 0.41)]
    assert blocks_points(by_method, blocks, "best_val")[0] == (3, pytest.approx(0.30))
    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points])
    coeffs = cubic_fit(x, y)
    # the least-squares normal equations of the nine points, by hand
    design = np.vander(x, 4)
    assert np.allclose(coeffs, np.linalg.solve(design.T @ design, design.T @ y))
    means = {b: np.mean([r["final"]["last"]["test_mean"] for r in by_method[m]]) for m, b in blocks.items()}
    through_means = np.polyfit(list(means), list(means.values()), 3)
    assert not np.allclose(coeffs, through_means)  # unequal seeds per point: the two fits differ


def test_figure4_compares_the_first_fc_layer():
    assert seeds_figure_layer(["fc1", "fc2", "fc3"]) == (0, "fc1")
    assert seeds_figure_layer(["conv1", "conv2", "fc1", "fc2"]) == (2, "fc1")
    assert seeds_figure_layer(["conv3"]) == (0, "conv3")


def test_size_series_set_dense_and_sparse_snr_apart():
    from routing_rl.cli.report import size_series

    assert size_series({"agent": "snr-trans", "agent_options": {"l0_lambda": 1e-4}}) == "snr-trans λ=0.0001"
    assert size_series({"agent": "snr-trans", "agent_options": {}}) == "snr-trans λ=1e-05"  # the model's default
    assert size_series({"agent": "mmoe", "agent_options": {"shared_hidden": 8}}) == "mmoe"


SIZES = """
[suite]
name = "sizes"
seeds = [0]
[defaults]
env = "multilabel-synthetic"
epochs = 1
threads = 1
env_options = { num_tasks = 3, num_train = 200, num_test = 60 }
[runs.dense-a]
agent = "snr-trans"
agent_options = { hidden_sizes = [8, 4], l0_lambda = 1e-5 }
[runs.dense-b]
agent = "snr-trans"
agent_options = { hidden_sizes = [8, 12], l0_lambda = 1e-5 }
[runs.sparse-a]
agent = "snr-trans"
agent_options = { hidden_sizes = [8, 4], l0_lambda = 1e-4 }
[runs.sparse-b]
agent = "snr-trans"
agent_options = { hidden_sizes = [8, 12], l0_lambda = 1e-4 }
"""


def test_size_figures_plot_training_and_serving_size(tmp_path):
    from click.testing import CliRunner

    from routing_rl.cli import main

    suite = tmp_path / "sizes.toml"
    suite.write_text(SIZES)
    out = tmp_path / "suite"
    assert CliRunner().invoke(main, ["suite", "run", str(suite), "--out", str(out)]).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    names = {Path(line).name for line in result.output.split()}
    assert {"size-train.png", "size-serving.png"} <= names  # two series (one per lambda) of two sizes each


@pytest.mark.parametrize("path", sorted((SUITES.parent / "sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_sweep_parses(path):
    from routing_rl.suites.sweep import load_sweep_file

    sweep = load_sweep_file(path)
    drawn = sweep.draw(1)
    assert len(drawn) == len(sweep.grid) and len({t.key for t, _, _ in drawn}) == len(drawn)
    lambdas = sorted({t.config.agent_options["l0_lambda"] for t, _, _ in drawn if t.config.agent.startswith("snr-")})
    assert lambdas == [1e-5, 1e-4, 1e-3]  # the SNR paper's grid


def _sized(agent: str, l0_lambda: float, train: int, serving: int) -> dict:
    return {"config": {"agent": agent, "agent_options": {"l0_lambda": l0_lambda}},
            "final": {"parameters": {"train": train, "serving": serving}}}


def test_size_points_take_training_size_for_figure3_and_the_seeds_mean_serving_size_for_figure4():
    from routing_rl.cli.report import size_points

    by_method = {"dense": [_sized("snr-trans", 1e-5, 1000, 900), _sized("snr-trans", 1e-5, 1000, 700)],
                 "sparse": [_sized("snr-trans", 1e-4, 1000, 300)]}
    configs = {m: rs[0]["config"] for m, rs in by_method.items()}
    methods = [("dense", 0.5), ("sparse", 0.4)]
    assert size_points(methods, by_method, configs, "train") == [("snr-trans λ=1e-05", 1000, 0.5), ("snr-trans λ=0.0001", 1000, 0.4)]
    assert size_points(methods, by_method, configs, "serving") == [("snr-trans λ=1e-05", 800, 0.5), ("snr-trans λ=0.0001", 300, 0.4)]


FIRST_LAYER_UNITS = {"snr-trans": lambda o: o["num_subnetworks"] * o["hidden_sizes"][0],
                     "snr-aver": lambda o: o["num_subnetworks"] * o["hidden_sizes"][0],
                     "mmoe": lambda o: o["shared_hidden"], "ml-mmoe": lambda o: 8 * o["hidden_sizes"][0],
                     "shared-bottom-mlp": lambda o: o["hidden_sizes"][0]}


@pytest.mark.parametrize(("name", "units"), [("snr-model-size", 2048), ("snr-sparse-dense", 1024)])
def test_youtube8m_scales_give_every_model_the_papers_first_shared_layer(name, units):
    """SNR paper: the first shared layer is fixed across its size comparisons (2,048 units in the
    model-size figure, 1,024 in the dense/sparse one); the second is what varies."""
    suite = load_suite_file(SUITES / f"{name}.toml")
    trials = suite.trials("youtube8m")
    assert trials and {t.config.env for t in trials} == {"youtube8m"}
    for trial in trials:
        assert FIRST_LAYER_UNITS[trial.config.agent](trial.config.agent_options) == units, trial.name
    assert len({json.dumps(t.config.agent_options, sort_keys=True) for t in trials}) > 3  # the sizes do vary


def test_methods_bars_mark_the_papers_means_and_the_seeds_behind_each_bar():
    """Ours next to the paper's at a glance: a marker at each paper mean (none for a row the paper
    lacks), ``n = k`` under each bar, and no error bar over a single run (a zero cap reads as no spread)."""
    from routing_rl.plots.figures import bars_figure

    fig = bars_figure([("routed", 0.91, float("nan")), ("none", 0.96, 0.002), ("extra", 0.95, 0.01)], "accuracy", "t",
                      baseline="none", counts=[1, 2, 3], references=[0.64, 0.962, None], reference_name="paper (Table 2)")  # fmt: skip
    ax = fig.axes[0]
    markers = ax.collections[-1].get_offsets()
    assert np.allclose(markers, [[0, 0.64], [1, 0.962]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["routed, n = 1", "none (baseline), n = 2", "extra, n = 3"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["none mean (baseline)", "paper (Table 2) mean"]
    low, high = ax.get_ylim()
    assert low < 0.64 and high > 0.96  # the paper's far-off mean is in view
    bars = next(c for c in ax.containers if hasattr(c, "errorbar"))
    (errors,) = bars.errorbar.lines[2]
    spans = [round(float(abs(s[1][1] - s[0][1])), 6) if len(s) else None for s in errors.get_segments()]
    assert spans == [None, 0.004, 0.02]  # no error bar over one run; 2 std over the others

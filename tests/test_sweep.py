"""Random-search sweeps: reproducible draws within the declared ranges, top-k selection by validation."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites import SuiteError
from routing_rl.suites.sweep import load_sweep_file, select_top_k

SWEEP = """
[sweep]
name = "tiny"
trials = 4
top_k = 2
seed = 3
[base]
env = "synthetic-groups"
agent = "hard-concrete"
epochs = 1
threads = 1
env_options = { num_tasks = 3, train_per_task = 40, test_per_task = 20 }
[space]
lr = { low = 1e-4, high = 1e-1, log = true }
"agent_options.l0_lambda" = { choices = [1e-5, 1e-3, 1e-1] }
"agent_options.beta" = { low = 0.5, high = 0.9 }
blocks = { low = 2, high = 4 }
"""


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SWEEP)
    return path


def test_draws_are_reproducible_and_inside_the_ranges(sweep_file):
    first = load_sweep_file(sweep_file).draw()
    again = load_sweep_file(sweep_file).draw()
    assert [t.key for t, _, _ in first] == [t.key for t, _, _ in again]
    assert len({t.key for t, _, _ in first}) == 4
    for trial, chosen, label in first:
        assert label is None and trial.run.startswith("trial")
        cfg = trial.config
        assert 1e-4 <= cfg.lr <= 1e-1 and cfg.blocks in (2, 3, 4) and isinstance(cfg.blocks, int)
        assert cfg.agent_options["l0_lambda"] in (1e-5, 1e-3, 1e-1) and 0.5 <= cfg.agent_options["beta"] <= 0.9
        assert chosen["lr"] == cfg.lr


def test_top_k_is_chosen_by_validation_and_reports_the_test_standard_error():
    outcomes = [{"trial": "a", "val": 0.9, "test": 0.80}, {"trial": "b", "val": 0.7, "test": 0.95},
                {"trial": "c", "val": 0.8, "test": 0.84}, {"trial": "d", "val": math.nan, "test": 0.99}]  # fmt: skip
    chosen = select_top_k(outcomes, 2, higher_is_better=True)
    assert [o["trial"] for o in chosen["top"]] == ["a", "c"]
    assert chosen["test_mean"] == pytest.approx(0.82)
    assert chosen["test_stderr"] == pytest.approx(statistics.stdev([0.80, 0.84]) / math.sqrt(2))
    lowest = select_top_k(outcomes, 1, higher_is_better=False)  # e.g. MSE
    assert [o["trial"] for o in lowest["top"]] == ["b"]
    assert math.isnan(chosen["test_micro_mean"])  # no micro average recorded: none reported


def test_top_k_reports_the_micro_average_of_the_trials_chosen_by_the_macro_validation():
    """The SNR paper's Figure 2 shows macro and micro MAP@10 of the same top 10 models."""
    outcomes = [{"trial": "a", "val": 0.9, "test": 0.80, "test_micro": 0.70}, {"trial": "b", "val": 0.7, "test": 0.95, "test_micro": 0.99},
                {"trial": "c", "val": 0.8, "test": 0.84, "test_micro": 0.76}]  # fmt: skip
    chosen = select_top_k(outcomes, 2, higher_is_better=True)
    assert chosen["test_micro_mean"] == pytest.approx(0.73)
    assert chosen["test_micro_stderr"] == pytest.approx(statistics.stdev([0.70, 0.76]) / math.sqrt(2))


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda t: t.replace("low = 1e-4, high = 1e-1", "low = 1e-1, high = 1e-4"), "needs numbers low < high"),
     (lambda t: t.replace("top_k = 2", "top_k = 9"), "1 <= top_k <= trials"),
     (lambda t: t.replace('"agent_options.beta"', '"agent_options.bta"'), "hard-concrete has no option 'bta'")],
)  # fmt: skip
def test_bad_sweep_files_are_one_line_errors(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(edit(SWEEP))
    with pytest.raises(SuiteError):
        load_sweep_file(path)
    result = CliRunner().invoke(main, ["sweep", str(path)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_the_sweep_command_trains_selects_and_resumes(sweep_file, tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", str(sweep_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "top 2 of 4 trials by validation accuracy" in result.output and (out / "sweep.md").exists()
    again = CliRunner().invoke(main, ["sweep", str(sweep_file), "--out", str(out)])
    assert "4 finished, training 0" in again.output


GRID = """
[sweep]
name = "grid"
trials = 3
top_k = 2
seed = 1
[base]
env = "multilabel-synthetic"
agent = "snr-trans"
epochs = 1
threads = 1
env_options = { num_tasks = 3, num_train = 200, num_test = 60 }
[[grid]]
label = "dense"
"agent_options.l0_lambda" = 1e-5
[[grid]]
label = "sparse"
agent_options = { l0_lambda = 0.5 }
[[grid]]
label = "mmoe"
agent = "mmoe"
[space]
lr = { low = 1e-3, high = 1e-2, log = true }
"agent_options.beta" = { low = 0.5, high = 0.9, agents = ["snr-trans"] }
"""


def test_grid_points_search_the_same_draws_each_with_its_own_top_k(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    spec = load_sweep_file(path)
    drawn = spec.draw()
    assert [t.run for t, _, _ in drawn][:4] == ["dense-trial000", "dense-trial001", "dense-trial002", "sparse-trial000"]
    by_label = {}
    for trial, chosen, label in drawn:
        by_label.setdefault(label, []).append((trial.config, chosen))
    assert [c.agent_options["l0_lambda"] for c, _ in by_label["dense"]] == [1e-5] * 3
    assert [c.agent_options["l0_lambda"] for c, _ in by_label["sparse"]] == [0.5] * 3
    # the same seed draws the same values at every point with the same space: only the point's options differ
    assert [ch for _, ch in by_label["dense"]] == [ch for _, ch in by_label["sparse"]]
    # a dimension scoped to snr-trans is not searched for mmoe (which has no beta)
    assert all(set(ch) == {"lr"} and c.agent == "mmoe" and "beta" not in c.agent_options for c, ch in by_label["mmoe"])
    assert [t.name for t, _, _ in spec.draw(2)] == [t.name for t, _, _ in drawn if not t.run.endswith("002")]
    assert [t.key for t, _, _ in spec.draw(2)] == [t.key for t, _, _ in drawn if not t.run.endswith("002")]

    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(out), "--trials", "2"])
    assert result.exit_code == 0, result.output
    assert "6 trials in 3 grid points, 0 finished, training 6" in result.output
    summary = json.loads((out / "sweep.json").read_text())
    assert [p["label"] for p in summary["points"]] == ["dense", "sparse", "mmoe"] and summary["metric"] == "map@10"
    for point in summary["points"]:
        tests = [o["test"] for o in point["top"]]
        assert point["k"] == 2 and point["test_mean"] == pytest.approx(statistics.fmean(tests))
        assert point["test_stderr"] == pytest.approx(statistics.stdev(tests) / math.sqrt(2))
        vals = [o["val"] for o in point["top"]]
        assert vals == sorted(vals, reverse=True)
    assert "### sparse" in (out / "sweep.md").read_text()
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0, report.output
    names = {Path(line).name for line in report.output.split()}
    # macro and micro MAP@10 of the top k (the SNR paper's Figure 2); mmoe reports no sub-network use
    assert names == {"top-k.png", "top-k-micro.png", "dense-utilization.png", "sparse-utilization.png"}
    for point in summary["points"]:
        micro = [o["test_micro"] for o in point["top"]]
        assert point["test_micro_mean"] == pytest.approx(statistics.fmean(micro)) and micro != [o["test"] for o in point["top"]]
    bad = CliRunner().invoke(main, ["sweep", str(path), "--out", str(out), "--trials", "4"])
    assert bad.exit_code == 2 and "draws 3 trials per point" in bad.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda t: t.replace('label = "sparse"', 'label = "dense"'), "grid labels repeat: dense"),
     (lambda t: t.replace('label = "mmoe"\n', ''), "grid point 3 needs a label"),
     (lambda t: t.replace('agents = ["snr-trans"]', 'agents = "snr-trans"'), "agents must be a non-empty list"),
     (lambda t: t.replace('"agent_options.l0_lambda" = 1e-5', '"agent_options.l0_lamda" = 1e-5'), "snr-trans has no option 'l0_lamda'")],
)  # fmt: skip
def test_bad_grids_are_one_line_errors(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(edit(GRID))
    result = CliRunner().invoke(main, ["sweep", str(path)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["suite", "run"], ["suite", "table"], ["report"]])
def test_a_sweep_file_given_as_a_suite_says_which_command_takes_it(sweep_file, command):
    result = CliRunner().invoke(main, [*command, str(sweep_file)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is a sweep file, not a suite file: `routing-rl sweep" in " ".join(result.output.split())

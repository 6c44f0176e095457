"""Suites with settings: every run in every setting, a table per setting against its own baseline,
Holm over all of them, the settings figure, and the shipped relatedness sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.table import build_setting_tables
from routing_rl.suites.table_text import settings_csv, settings_markdown

ROOT = Path(__file__).resolve().parent.parent

SWEEP = """
[suite]
name = "sweep"
seeds = [0, 1]
baseline = "shared"
x_label = "groups"
[defaults]
env = "synthetic-groups"
epochs = 1
batch_size = 32
threads = 1
env_options = { num_tasks = 4, train_per_task = 40, test_per_task = 20 }
[runs.shared]
agent = "shared-bottom"
routed = "none"
[runs.oracle]
agent = "oracle-groups"
blocks = 4
[runs.random]
agent = "fixed-random"
blocks = 4
env_options = { num_tasks = 4, train_per_task = 40, test_per_task = 20, hidden = 4 }
[settings.g1]
env_options = { num_groups = 1 }
figure = { x = 1, panel = "clean" }
[settings.g4]
env_options = { num_groups = 4 }
figure = { x = 4, panel = "clean" }
[settings.g4-noisy]
env_options = { num_groups = 4, label_noise = 0.5 }
epochs = 2
figure = { x = 4, panel = "noisy" }
[scales.quick]
settings = ["g4"]
env_options = { train_per_task = 30 }
"""


def sweep_file(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_every_run_is_trained_in_every_setting_with_the_settings_options_merged_over_the_runs(tmp_path):
    spec = load_suite_file(sweep_file(tmp_path))
    trials = spec.trials()
    assert len(trials) == 2 * 3 * 3
    assert [t.run for t in trials[:9]] == [f"{s}.{r}" for s in ("g1", "g4", "g4-noisy") for r in ("shared", "oracle", "random")]
    assert [t.seed for t in trials] == [0] * 9 + [1] * 9  # seed-major: a stopped sweep has every setting at its first seeds
    by_row = {t.run: t.config for t in trials if t.seed == 0}
    # a setting's env_options go over the run's key by key: the run keeps its own hidden, the defaults' sizes stay
    assert by_row["g4-noisy.random"].env_options == {"num_tasks": 4, "train_per_task": 40, "test_per_task": 20, "hidden": 4,
                                                     "num_groups": 4, "label_noise": 0.5}  # fmt: skip
    assert by_row["g1.shared"].env_options == {"num_tasks": 4, "train_per_task": 40, "test_per_task": 20, "num_groups": 1}
    assert by_row["g4-noisy.shared"].epochs == 2 and by_row["g4.shared"].epochs == 1  # a setting's plain options too
    assert spec.split_row("g4-noisy.random") == ("g4-noisy", "random")
    assert spec.placement["g4-noisy"] == {"x": 4, "panel": "noisy"} and spec.x_label == "groups"
    assert len({t.name for t in trials}) == len(trials)  # every trial its own directory


def test_a_scale_trains_the_settings_it_lists_and_merges_its_env_options(tmp_path):
    spec = load_suite_file(sweep_file(tmp_path))
    quick = spec.trials("quick")
    assert {t.run.split(".")[0] for t in quick} == {"g4"} and len(quick) == 2 * 3
    assert all(t.config.env_options["train_per_task"] == 30 and t.config.env_options["num_groups"] == 4 for t in quick)


@pytest.mark.parametrize(("change", "message"), [
    (("[settings.g1]", "[settings.\"g.1\"]"), "setting name 'g.1' must not hold '.'"),
    (('figure = { x = 1, panel = "clean" }', 'figure = { y = 1 }'), "settings.g1.figure must be"),
    (('settings = ["g4"]', 'settings = ["g5"]'), "scales.quick.settings must list settings of the suite; settings: g1, g4, g4-noisy"),
    (("[settings.g1]\n", "[settings.g1]\nseed = 3\n"), "settings.g1.seed: a suite's seeds are suite.seeds"),
    (('x_label = "groups"', "x_label = 3"), "suite.x_label must be a string"),
    (("env_options = { num_groups = 1 }", "env_options = { num_groups = 9 }"), "runs.shared in settings.g1: env_options"),
])  # fmt: skip
def test_a_bad_setting_is_refused_in_one_line_naming_it(tmp_path, change, message):
    with pytest.raises(SuiteError) as error:
        load_suite_file(sweep_file(tmp_path, SWEEP.replace(*change)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_each_setting_is_tested_against_its_own_baseline_and_holm_spans_every_setting(tmp_path, write_results):
    """In each of two settings one method is ahead of that setting's baseline at p = 0.033 on its
    own; a table of one setting would say yes, but the suite asked two questions: Holm doubles the
    smaller p and the verdicts say no."""
    base = {"g1": [0.80, 0.82, 0.78, 0.81], "g4": [0.60, 0.64, 0.58, 0.61]}
    ahead = (0.010, 0.002, 0.012, 0.004)
    trials = []
    for setting, values in base.items():
        for method, shift in (("shared", (0, 0, 0, 0)), ("random", ahead)):
            for seed, (value, d) in enumerate(zip(values, shift)):
                name = f"{setting}.{method}-s{seed}-x"
                write_results(tmp_path / name, value + d)
                trials.append({"run": f"{setting}.{method}", "seed": seed, "name": name})
    tables = build_setting_tables(trials, tmp_path, "shared", ["g1", "g4"])
    rows = [t.table.rows[1] for t in tables]
    assert [r.method for r in rows] == ["random", "random"]
    for row in rows:  # same differences on different baselines: each against its own
        assert row.difference == pytest.approx(sum(ahead) / 4)
        assert row.p < 0.05 <= row.p_holm and row.comparisons == 2
    text = settings_markdown(tables, {"g1": {"env_options": {"num_groups": 1}}, "g4": {"env_options": {"num_groups": 4}}}, "shared", "last")
    assert "## setting g1 (env_options.num_groups = 1)" in text and "## setting g4 (env_options.num_groups = 4)" in text
    assert "over the suite's 2 comparisons (every method against the shared of its own setting, in all 2 settings)" in text
    assert text.count("- random beats shared: no, p = ") == 2
    csv_text = settings_csv(tables)
    assert csv_text.splitlines()[0].startswith("setting,method,") and csv_text.count("\ng4,random,") == 1


def test_a_sweep_trains_tabulates_and_draws_from_the_command_line(tmp_path):
    path = sweep_file(tmp_path)
    out = tmp_path / "runs"
    runner = CliRunner()
    result = runner.invoke(main, ["suite", "run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    table = runner.invoke(main, ["suite", "table", str(out)])
    assert table.exit_code == 0, table.output
    assert table.output.count("## setting ") == 3 and "p Holm (6 comparisons)" in table.output
    assert (out / "table.csv").read_text().count("\n") == 1 + 3 * 3
    drawn = runner.invoke(main, ["report", str(out), "--out", str(tmp_path / "fig")])
    assert drawn.exit_code == 0, drawn.output
    assert drawn.output.split() == [str(tmp_path / "fig" / "settings.png")]
    assert (tmp_path / "fig" / "settings.png").stat().st_size > 10_000
    only = runner.invoke(main, ["report", str(out), "--out", str(tmp_path / "fig2"), "--runs", "shared,oracle"])
    assert only.exit_code == 0, only.output
    again = runner.invoke(main, ["suite", "run", str(path), "--out", str(out), "--runs", "oracle", "--dry-run"])
    assert again.exit_code == 0 and "oracle" in again.output


def test_the_shipped_sweep_has_the_issue_s_design():
    """10 tasks, three routed FC layers of 10 blocks, groups 1..10 clean and with label noise, the
    eight methods, five seeds; its quick scale (CI) trains two settings."""
    spec = load_suite_file(ROOT / "suites" / "where-routing-pays.toml")
    assert spec.seeds == [0, 1, 2, 3, 4] and spec.baseline == "shared-bottom"
    assert list(spec.runs) == ["shared-bottom", "no-sharing", "fixed-random", "oracle", "wpl", "reinforce", "hard-concrete", "wpl-warmup"]
    groups = [(o["env_options"]["num_groups"], o["env_options"].get("label_noise", 0.0)) for o in spec.settings.values()]
    assert groups == [(g, n) for n in (0.0, 0.4) for g in (1, 2, 5, 10)]
    config = {t.run: t.config for t in spec.trials() if t.seed == 0}
    assert config["groups-5.wpl"].routed == "fc" and config["groups-5.wpl"].blocks == 10
    assert config["groups-5.wpl"].env_options == {"num_tasks": 10, "num_groups": 5}
    assert config["groups-5.wpl-warmup"].warmup_epochs == 5
    assert len(spec.trials("quick")) == 2 * 8 * 2

"""`suite table`'s verdicts: paired by seed, Holm-corrected, with intervals, delta-m for mixed metrics.

Every case is a handful of results.json files written with the tests' own helper, with numbers
chosen so that the answer can be computed by hand (or by scipy on the same numbers).
"""

from __future__ import annotations

import csv
import io
import statistics

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from routing_rl.analysis.significance import holm
from routing_rl.cli import main
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.suites.table import build_table
from routing_rl.suites.table_text import markdown, to_csv, verdict
from tests.suite_texts import tiny_suite


def write_suite(tmp_path, write_results, scores: dict[str, list[float]], **fields) -> list[dict]:
    """Trials of methods x seeds whose last-epoch test mean is ``scores[method][seed]``."""
    trials = []
    for method, values in scores.items():
        for seed, value in enumerate(values):
            name = f"{method}-s{seed}-x"
            write_results(tmp_path / name, value, **fields)
            trials.append({"run": method, "seed": seed, "name": name})
    return trials


def rendered(table, baseline: str = "base") -> str:
    return markdown(table.rows, table.metric, table.higher, baseline, "last", "", table.tasks, table.notes)


def test_holm_turns_an_uncorrected_yes_into_a_no(tmp_path, write_results):
    """Three methods against one baseline: "close" is ahead at p < 0.05 on its own, but not once
    the table's three comparisons are accounted for (Holm multiplies the smallest p by 3)."""
    base = [0.80, 0.82, 0.78, 0.81]
    scores = {"base": base,
              "close": [b + d for b, d in zip(base, (0.010, 0.002, 0.012, 0.004))],
              "level": [b + d for b, d in zip(base, (0.010, -0.012, 0.004, -0.003))],
              "behind": [b + d for b, d in zip(base, (-0.010, -0.002, -0.012, -0.004))]}  # fmt: skip
    table = build_table(write_suite(tmp_path, write_results, scores), tmp_path, "base")
    rows = {r.method: r for r in table.rows}
    close = rows["close"]
    diffs = np.array(scores["close"]) - np.array(base)
    assert close.p == pytest.approx(stats.ttest_rel(scores["close"], base, alternative="greater").pvalue)
    assert close.t == pytest.approx(diffs.mean() / (diffs.std(ddof=1) / 2)) and close.df == 3 and close.pairs == 4
    assert close.p < 0.05 <= close.p_holm
    assert [rows[m].p_holm for m in ("close", "level", "behind")] == pytest.approx(holm([rows[m].p for m in ("close", "level", "behind")]))
    assert close.p_holm == pytest.approx(3 * close.p) and close.comparisons == 3
    line = verdict(close, "base")
    assert line.startswith("- close beats base: no, p = ") and "Holm-corrected over 3 comparisons; uncorrected" in line
    assert f"uncorrected {close.p:.3g}" in line and f"p = {close.p_holm:.3g}" in line
    half = stats.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2
    assert (close.difference, close.ci_low, close.ci_high) == pytest.approx((diffs.mean(), diffs.mean() - half, diffs.mean() + half))
    text = rendered(table)
    assert "| difference to base [95% CI] |" in text and "| p Holm (3 comparisons) |" in text
    assert f"| {close.difference:+.4f} [{close.ci_low:+.4f}, {close.ci_high:+.4f}] |" in text
    assert "one-tailed paired t-test by seed" in text and "(4 pairs per method; df = pairs - 1)" in text
    assert "Holm's step-down correction over the table's 3 comparisons" in text


def test_one_comparison_has_nothing_to_correct(tmp_path, write_results):
    base = [0.80, 0.82, 0.78]
    table = build_table(write_suite(tmp_path, write_results, {"base": base, "a": [b + 0.01 + 0.001 * i for i, b in enumerate(base)]}),
                        tmp_path, "base")  # fmt: skip
    row = table.rows[1]
    assert row.p_holm == row.p and row.comparisons == 1
    assert verdict(row, "base") == f"- a beats base: yes, p = {row.p:.3g} (one comparison: nothing to correct)"


def test_pairing_by_seed_finds_a_difference_that_the_unpaired_test_misses(tmp_path, write_results):
    """The seeds spread the baseline over 0.70-0.90 and the method moves with it, always about
    0.01 ahead: the paired test sees five differences of about 0.01, the unpaired one two wide
    overlapping samples."""
    base = [0.70, 0.80, 0.90, 0.75, 0.85]
    method = [b + d for b, d in zip(base, (0.010, 0.012, 0.009, 0.011, 0.010))]
    trials = write_suite(tmp_path, write_results, {"base": base, "method": method})
    paired = build_table(trials, tmp_path, "base").rows[1]
    unpaired = build_table(trials, tmp_path, "base", test="paper-a2").rows[1]
    assert paired.test == "paired" and paired.p < 0.001 and verdict(paired, "base").startswith("- method beats base: yes")
    assert paired.ci_low > 0  # the interval of the paired difference excludes 0
    assert unpaired.test == "paper-a2" and unpaired.p > 0.4 and verdict(unpaired, "base").startswith("- method beats base: no")
    assert unpaired.p == pytest.approx(stats.ttest_ind(method, base, alternative="greater").pvalue) and unpaired.df == 8
    assert unpaired.ci_low < 0 < unpaired.ci_high
    assert paired.difference == pytest.approx(unpaired.difference) == pytest.approx(0.0104)
    text = rendered(build_table(trials, tmp_path, "base", test="paper-a2"))
    assert "one-tailed two-sample t-test (pooled variance, unpaired; the Re-examining paper's appendix A.2 test)" in text


def test_pairs_are_the_seeds_both_have_finished(tmp_path, write_results):
    """A seed the baseline has not finished is no pair: the test uses the three seeds both have."""
    trials = write_suite(tmp_path, write_results, {"base": [0.80, 0.82, 0.78], "a": [0.81, 0.84, 0.785, 0.99]})
    row = build_table(trials, tmp_path, "base").rows[1]
    assert row.pairs == 3 and row.df == 2 and row.n == 4
    assert row.p == pytest.approx(stats.ttest_rel([0.81, 0.84, 0.785], [0.80, 0.82, 0.78], alternative="greater").pvalue)


def test_a_lower_is_better_metric_is_tested_in_its_direction(tmp_path, write_results):
    base = [0.30, 0.40, 0.35]
    trials = write_suite(tmp_path, write_results, {"base": base, "a": [b - 0.02 - 0.001 * i for i, b in enumerate(base)]},
                         metric="mse", higher_is_better=False)  # fmt: skip
    row = build_table(trials, tmp_path, "base").rows[1]
    assert row.t > 0 and row.p < 0.05 and row.difference == pytest.approx(-0.021) and row.ci_high < 0


DELTA_TASKS = [{"metric": "accuracy", "higher_is_better": True}, {"metric": "mse", "higher_is_better": False}]


def delta_m_trials(directory, write_results, per_task: dict[str, list[list[float]]]) -> list[dict]:
    """One finished trial per method and seed, with an accuracy and an MSE task, for delta-m."""
    trials = []
    for method, seeds in per_task.items():
        for seed, scores in enumerate(seeds):
            write_results(directory / f"{method}-s{seed}", statistics.fmean(scores), per_task=scores, task_metrics=DELTA_TASKS)
            trials.append({"run": method, "seed": seed, "name": f"{method}-s{seed}"})
    return trials


def test_delta_m_summarises_a_suite_of_an_accuracy_and_an_mse_task(tmp_path, write_results):
    """Per seed: accuracy (task0) and MSE (task1) against the same seed's baseline.
    seed 0: +(0.90-0.80)/0.80 = +0.125, -(0.20-0.25)/0.25 = +0.20  -> delta-m = 16.25
    seed 1: +(0.84-0.80)/0.80 = +0.05,  -(0.24-0.20)/0.20 = -0.20  -> delta-m = -7.5
    seed 2: +(0.88-0.80)/0.80 = +0.10,  -(0.18-0.20)/0.20 = +0.10  -> delta-m = 10.0"""
    per_task = {"base": [[0.80, 0.25], [0.80, 0.20], [0.80, 0.20]], "mixed": [[0.90, 0.20], [0.84, 0.24], [0.88, 0.18]]}
    table = build_table(delta_m_trials(tmp_path, write_results, per_task), tmp_path, "base")
    base, mixed = table.rows
    expected = [16.25, -7.5, 10.0]
    assert table.metric == "delta-m" and table.higher and [t.metric for t in table.tasks] == ["accuracy", "mse"]
    assert (mixed.mean, mixed.std, mixed.best) == pytest.approx((statistics.fmean(expected), statistics.stdev(expected), 16.25))
    assert (base.mean, base.std) == (0.0, 0.0) and base.p is None
    one_sample = stats.ttest_1samp(expected, 0.0, alternative="greater")
    assert mixed.test == "delta-m" and mixed.p == pytest.approx(one_sample.pvalue) and mixed.t == pytest.approx(one_sample.statistic)
    assert mixed.difference == pytest.approx(statistics.fmean(expected)) and mixed.p_holm == mixed.p
    assert mixed.per_task == pytest.approx({"task0": 0.8733333, "task1": 0.2066667})
    text = rendered(table)
    assert "| delta-m vs base (%, last epoch) mean ± std |" in text and f"| mixed | 3 | 6.25 ± {statistics.stdev(expected):.2f} | 16.25 |" in text
    assert "one-sample one-tailed t-test (scipy.stats.ttest_1samp) that delta-m > 0" in text
    assert verdict(mixed, "base").startswith("- mixed beats base by delta-m: no, p = ")
    assert "| method | task0 (accuracy, ↑) | task1 (MSE, ↓) |" in text and "| mixed | 0.8733 | 0.2067 |" in text


def test_delta_m_leaves_out_a_seed_whose_baseline_scores_zero(tmp_path, write_results):
    per_task = {"base": [[0.80, 0.25], [0.80, 0.0], [0.80, 0.20]], "mixed": [[0.90, 0.20], [0.84, 0.24], [0.88, 0.18]]}
    table = build_table(delta_m_trials(tmp_path, write_results, per_task), tmp_path, "base")
    assert table.rows[1].pairs == 2 and table.rows[1].mean == pytest.approx((16.25 + 10.0) / 2)
    assert table.notes == ["seed 1 is left out of delta-m: base scores 0 on task task1, whose relative change is undefined"]
    assert "Note: seed 1 is left out of delta-m" in rendered(table)


def test_a_single_metric_suite_keeps_its_metric_and_shows_parameters_and_per_task_means(tmp_path, write_results):
    trials = []
    for method, seeds in {"base": [([0.8, 0.9], 100), ([0.7, 0.9], 100)], "a": [([0.9, 0.9], 120), ([0.8, 1.0], 130)]}.items():
        for seed, (scores, parameters) in enumerate(seeds):
            write_results(tmp_path / f"{method}-s{seed}", statistics.fmean(scores), per_task=scores, parameters=parameters)
            trials.append({"run": method, "seed": seed, "name": f"{method}-s{seed}"})
    table = build_table(trials, tmp_path, "base")
    assert table.metric == "accuracy" and table.rows[1].mean == pytest.approx(0.9)
    assert (table.rows[0].parameters_min, table.rows[1].parameters_min, table.rows[1].parameters_max) == (100, 120, 130)
    text = rendered(table)
    assert "| trainable parameters | train+eval time (all seeds) |" in text.splitlines()[0]
    assert text.splitlines()[2].endswith("| 100 | 2.5 s |") and text.splitlines()[3].endswith("| 120-130 | 2.5 s |")
    assert "Test accuracy per task (last epoch), mean over the finished seeds (higher is better):" in text
    assert "| method | task0 | task1 |" in text and "| a | 0.8500 | 0.9500 |" in text
    rows = list(csv.DictReader(io.StringIO(to_csv(table.rows))))
    assert {"p_holm", "comparisons", "test", "pairs", "difference", "ci_low", "ci_high", "parameters_min", "parameters_max",
            "test task0", "test task1"} <= set(rows[0])  # fmt: skip
    assert rows[1]["test"] == "paired" and float(rows[1]["test task1"]) == pytest.approx(0.95) and rows[1]["parameters_max"] == "130"
    assert float(rows[1]["difference"]) == pytest.approx(0.9 - 0.825) and rows[0]["p_holm"] == ""


def test_suite_file_chooses_the_test_and_the_key_changes_no_trial(tmp_path):
    plain, paper = tmp_path / "plain.toml", tmp_path / "paper.toml"
    plain.write_text(tiny_suite())
    paper.write_text(tiny_suite().replace('baseline = "shared"\n', 'baseline = "shared"\ntest = "paper-a2"\n'))
    assert load_suite_file(plain).test == "paired" and load_suite_file(paper).test == "paper-a2"
    assert [t.name for t in load_suite_file(plain).trials()] == [t.name for t in load_suite_file(paper).trials()]
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_suite().replace('baseline = "shared"\n', 'baseline = "shared"\ntest = "welch"\n'))
    with pytest.raises(SuiteError, match="suite.test must be one of paired, paper-a2, got 'welch'"):
        load_suite_file(bad)


def test_every_reproduction_suite_keeps_the_papers_test():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "suites"
    paths = sorted([*root.glob("reexamining-*.toml"), *root.glob("snr-*.toml")])
    assert paths and all(load_suite_file(p).test == "paper-a2" for p in paths)


@pytest.mark.parametrize("test", ["paired", "paper-a2"])
def test_suite_table_reads_the_test_from_the_suite_file_and_its_directory(tmp_path, write_results, test):
    """`suite table FILE` and `suite table DIR` (its suite.json) test as the suite file says."""
    from routing_rl.suites.runner import write_manifest

    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite().replace('seeds = [0, 1]', 'seeds = [0, 1, 2]').replace('baseline = "shared"\n', f'baseline = "shared"\ntest = "{test}"\n'))
    spec = load_suite_file(path)
    out = tmp_path / "runs"
    for trial in spec.trials():
        write_results(out / trial.name, 0.8 + 0.1 * trial.seed + (0.01 + 0.001 * trial.seed if trial.run == "random" else 0.0), tasks=3)
    write_manifest(spec, None, spec.trials(), out)
    from_file = CliRunner().invoke(main, ["suite", "table", str(path), "--out", str(out)])
    from_dir = CliRunner().invoke(main, ["suite", "table", str(out)])
    assert from_file.exit_code == 0, from_file.output
    assert from_file.output == from_dir.output
    named = "one-tailed paired t-test by seed" if test == "paired" else "the Re-examining paper's appendix A.2 test"
    answer = "yes" if test == "paired" else "no"
    assert named in from_file.output and f"- random beats shared: {answer}, p = " in from_file.output
    assert (out / "table.csv").read_text().startswith("method,n,mean")


def test_a_router_that_did_not_route_is_flagged_in_its_verdict(tmp_path):
    from routing_rl.suites.table import Row
    from routing_rl.suites.table_text import verdict

    row = Row("hard-concrete", 5, 0.8, 0.01, 0.81, 0.8, 0.01, 2.0, 4, 0.01, 1.0, 0, p_holm=0.03, comparisons=7, test="paired")
    row.flags = {"every gate stayed open": 5}
    line = verdict(row, "shared-bottom")
    assert line.startswith("- hard-concrete beats shared-bottom: yes, p = 0.03")
    assert line.endswith("; warning: every gate stayed open in 5 of 5 seeds")

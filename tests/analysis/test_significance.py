"""The one-tailed t-test over runs matches a hand computation and reads finished runs only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from routing_rl.analysis.significance import one_tailed_ttest, run_value
from routing_rl.cli.compare import compare


@pytest.fixture
def write_run(write_results):
    def write(path, accuracy, status="complete", **kwargs):
        return write_results(path, accuracy, status=status, best_val_test_mean=accuracy - 0.01, **kwargs)

    return write


def test_pooled_t_statistic_by_hand():
    a, b = [0.964, 0.966, 0.961, 0.965, 0.963], [0.960, 0.962, 0.959, 0.963, 0.961]
    res = one_tailed_ttest(a, b)
    xa, xb = np.array(a), np.array(b)
    pooled = ((len(a) - 1) * xa.var(ddof=1) + (len(b) - 1) * xb.var(ddof=1)) / (len(a) + len(b) - 2)
    t = (xa.mean() - xb.mean()) / np.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    assert res.t == pytest.approx(t) and res.df == 8
    assert 0 < res.p_value < 0.05
    assert one_tailed_ttest(b, a).p_value > 0.95


def test_needs_two_runs_per_side():
    with pytest.raises(ValueError, match="at least two runs"):
        one_tailed_ttest([0.9], [0.8, 0.7])


def test_unfinished_runs_are_refused(tmp_path, write_run):
    run = write_run(tmp_path / "r", 0.9, status="running")
    with pytest.raises(ValueError, match="not a finished run"):
        run_value(run)


def test_compare_command(tmp_path, write_run):
    a = [write_run(tmp_path / f"a{i}", v) for i, v in enumerate([0.96, 0.97, 0.965])]
    b = [write_run(tmp_path / f"b{i}", v) for i, v in enumerate([0.90, 0.91, 0.905])]
    args = [x for p in a for x in ("--a", str(p))] + [x for p in b for x in ("--b", str(p))]
    result = CliRunner().invoke(compare, args)
    assert result.exit_code == 0, result.output
    assert "reject H0 at 0.05: A is better" in result.output
    best = CliRunner().invoke(compare, [*args, "--metric", "best-val", "--json"])
    assert json.loads(best.output)["mean_a"] == pytest.approx(0.955)


def args_of(a, b):
    return [x for p in a for x in ("--a", str(p))] + [x for p in b for x in ("--b", str(p))]


@pytest.mark.parametrize(
    ("other", "reason"),
    [({"env": "fmnist-mtl"}, "envs differ"), ({"epochs": 3}, "epoch counts differ"),
     ({"metric": "map@10"}, "metrics differ")],
)  # fmt: skip
def test_mismatched_runs_are_refused_unless_forced(tmp_path, write_run, other, reason):
    a = [write_run(tmp_path / f"a{i}", v) for i, v in enumerate([0.96, 0.97])]
    b = [write_run(tmp_path / f"b{i}", v, **other) for i, v in enumerate([0.90, 0.91])]
    refused = CliRunner().invoke(compare, args_of(a, b))
    assert refused.exit_code == 1 and reason in refused.output and "--force" in refused.output
    assert "Traceback" not in refused.output
    forced = CliRunner().invoke(compare, [*args_of(a, b), "--force"])
    assert forced.exit_code == 0 and "A is better" in forced.output


def test_lower_is_better_metrics_are_tested_in_their_direction(tmp_path, write_run):
    mse = {"metric": "mse", "higher_is_better": False}
    low = [write_run(tmp_path / f"a{i}", v, **mse) for i, v in enumerate([0.10, 0.11, 0.105])]
    high = [write_run(tmp_path / f"b{i}", v, **mse) for i, v in enumerate([0.20, 0.21, 0.205])]
    result = CliRunner().invoke(compare, [*args_of(low, high), "--json"])
    report = json.loads(result.output)
    assert report["p_value"] < 0.01 and report["mean_a"] == pytest.approx(0.105)
    reverse = json.loads(CliRunner().invoke(compare, [*args_of(high, low), "--json"]).output)
    assert reverse["p_value"] > 0.99


def test_a_complete_run_without_epochs_or_with_an_infinite_mean_is_refused(tmp_path, write_run):
    import json as _json

    empty = write_run(tmp_path / "e", 0.9)
    doc = _json.loads((empty / "results.json").read_text())
    doc["epochs"] = []
    doc.pop("final")
    (empty / "results.json").write_text(_json.dumps(doc))
    with pytest.raises(ValueError, match="no epoch is recorded"):
        run_value(empty)
    infinite = write_run(tmp_path / "i", float("inf"))
    with pytest.raises(ValueError, match="not a number to compare"):
        run_value(infinite)


def test_paired_t_test_and_its_interval_by_hand():
    """d = a - b = (0.5, 1, 1.5): mean 1, sd 0.5, se 0.5 / sqrt(3); t = 2 sqrt(3), df 2."""
    from scipy import stats

    from routing_rl.analysis.significance import paired_ttest

    res = paired_ttest([1.0, 2.0, 3.5], [0.5, 1.0, 2.0])
    se = 0.5 / np.sqrt(3)
    assert res.t == pytest.approx(1 / se) and res.df == 2 and res.n == 3
    assert res.p_value == pytest.approx(stats.t.sf(1 / se, 2)) and res.p_value == pytest.approx(0.0371, abs=1e-4)
    half = stats.t.ppf(0.975, 2) * se
    assert (res.difference, res.low, res.high) == pytest.approx((1.0, 1 - half, 1 + half))
    lower = paired_ttest([0.5, 1.0, 2.0], [1.0, 2.0, 3.5], higher_is_better=False)  # an MSE below the baseline's is ahead
    assert lower.t == pytest.approx(res.t) and lower.p_value == pytest.approx(res.p_value) and lower.difference == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two seeds"):
        paired_ttest([1.0], [0.5])


def test_two_sample_interval_is_the_pooled_one_of_the_papers_test():
    from scipy import stats

    from routing_rl.analysis.significance import two_sample_difference

    a, b = [0.964, 0.966, 0.961, 0.965, 0.963], [0.960, 0.962, 0.959, 0.963, 0.961]
    res = two_sample_difference(a, b)
    xa, xb = np.array(a), np.array(b)
    pooled = ((len(a) - 1) * xa.var(ddof=1) + (len(b) - 1) * xb.var(ddof=1)) / (len(a) + len(b) - 2)
    se = np.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    half = stats.t.ppf(0.975, 8) * se
    assert res.p_value == pytest.approx(one_tailed_ttest(a, b).p_value) and res.df == 8
    assert (res.difference, res.low, res.high) == pytest.approx((xa.mean() - xb.mean(), xa.mean() - xb.mean() - half, xa.mean() - xb.mean() + half))
    assert two_sample_difference(b, a, higher_is_better=False).p_value == pytest.approx(res.p_value)


def test_holm_step_down_by_hand():
    """Sorted p 0.005, 0.01, 0.03, 0.04 of m = 4 become 4 x 0.005 = 0.02, 3 x 0.01 = 0.03,
    2 x 0.03 = 0.06 and max(0.06, 1 x 0.04) = 0.06, returned in the order given; none exceeds 1."""
    from routing_rl.analysis.significance import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([0.02]) == [0.02] and holm([]) == []

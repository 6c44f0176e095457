"""The one-tailed t-test over runs matches a hand computation and reads finished runs only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from routing_rl.analysis.significance import compare, one_tailed_ttest, run_metric


def write_run(path, accuracy, status="complete"):
    path.mkdir(parents=True)
    results = {"status": status, "final": {"test_accuracy_mean": accuracy, "test_accuracy_mean_at_best_val": accuracy - 0.01}}
    (path / "results.json").write_text(json.dumps(results))
    return path


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


def test_unfinished_runs_are_refused(tmp_path):
    run = write_run(tmp_path / "r", 0.9, status="running")
    with pytest.raises(ValueError, match="not a finished run"):
        run_metric(run)


def test_compare_command(tmp_path):
    a = [write_run(tmp_path / f"a{i}", v) for i, v in enumerate([0.96, 0.97, 0.965])]
    b = [write_run(tmp_path / f"b{i}", v) for i, v in enumerate([0.90, 0.91, 0.905])]
    args = [x for p in a for x in ("--a", str(p))] + [x for p in b for x in ("--b", str(p))]
    result = CliRunner().invoke(compare, args)
    assert result.exit_code == 0, result.output
    assert "reject H0 at 0.05: A is better" in result.output
    best = CliRunner().invoke(compare, [*args, "--metric", "best-val", "--json"])
    assert json.loads(best.output)["mean_a"] == pytest.approx(0.955)

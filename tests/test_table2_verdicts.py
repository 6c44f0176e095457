"""docs/table2_verdicts.py turns a Table 2 suite's results into verdicts on the paper's claims."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "table2_verdicts.py"
spec = importlib.util.spec_from_file_location("table2_verdicts", SCRIPT)
verdicts_module = importlib.util.module_from_spec(spec)
sys.modules["table2_verdicts"] = verdicts_module  # dataclasses look their module up
spec.loader.exec_module(verdicts_module)


def rows(means: dict[str, float], spread: float = 0.001) -> dict[str, list[float]]:
    return {m: [mu - 2 * spread, mu - spread, mu, mu + spread, mu + 2 * spread] for m, mu in means.items()}


PAPER = {"public-code": 0.642, "corrected": 0.837, "separate-optimizers": 0.959, "routing-conv1": 0.959,
         "routing-conv123": 0.961, "shared-bottom": 0.956, "no-sharing": 0.962, "fixed-random-fc": 0.963,
         "fixed-random-conv3": 0.968}  # fmt: skip


def test_the_papers_own_numbers_reproduce_every_claim():
    result = {v.claim[:3]: v.verdict for v in verdicts_module.verdicts(rows(PAPER))}
    assert result == {"(a)": "reproduced", "(b)": "reproduced", "(c)": "reproduced", "(d)": "reproduced"}


def test_contrary_numbers_refute_them_and_one_seed_is_not_testable():
    contrary = dict(PAPER, corrected=0.5, **{"fixed-random-conv3": 0.94, "shared-bottom": 0.975, "routing-conv1": 0.93})
    result = {v.claim[:3]: v.verdict for v in verdicts_module.verdicts(rows(contrary))}
    assert result == {"(a)": "refuted", "(b)": "refuted", "(c)": "refuted", "(d)": "refuted"}
    single = {m: [mu] for m, mu in PAPER.items()}
    result = {v.claim[:3]: v.verdict for v in verdicts_module.verdicts(single)}
    assert result["(a)"] == "not testable" and result["(d)"] == "not testable"
    assert "| claim | evidence" in verdicts_module.markdown(verdicts_module.verdicts(single))


def test_a_row_ahead_by_its_mean_alone_neither_refutes_nor_reproduces():
    """No sharing 0.2 points ahead of fixed random conv3 with seed spreads of a point: not significant either
    way, so (b) is not shown; learned conv routing far below no sharing is not "near" it, so (d) is refuted."""
    close = dict(PAPER, **{"no-sharing": 0.966, "fixed-random-conv3": 0.964, "routing-conv1": 0.95, "shared-bottom": 0.94})
    values = rows(close, spread=0.005)
    result = {v.claim[:3]: v.verdict for v in verdicts_module.verdicts(values)}
    assert result["(b)"] == "not shown"
    assert result["(d)"] == "refuted"  # conv1 beats shared bottom but is 1.6 points below no sharing


def test_the_papers_appendix_t_values_do_not_follow_from_its_tables():
    """A.2 reports t = -2.2421 (CIFAR-100) and -2.0305 (Fashion-MNIST) for fixed random conv3 against no
    sharing, with p < 0.05 for "random is better": its t is (no sharing - random). From the means and
    standard deviations of its own Tables 1 and 2 (five seeds each) the same test gives t = 1.24 and 1.66
    in the method-minus-baseline direction (p = 0.125 and 0.068): not significant."""
    from scipy import stats

    cifar = stats.ttest_ind_from_stats(73.8, 0.45, 5, 73.5, 0.30, 5, alternative="greater")
    fmnist = stats.ttest_ind_from_stats(96.4, 0.18, 5, 96.2, 0.20, 5, alternative="greater")
    assert round(cifar.statistic, 2) == 1.24 and round(fmnist.statistic, 2) == 1.66
    assert round(cifar.pvalue, 3) == 0.125 and round(fmnist.pvalue, 3) == 0.068  # not significant
    # the paper's own p for its t: one-tailed with df 8 in the direction "random better"
    assert round(stats.t.cdf(-2.2421, 8), 4) == 0.0276 and round(stats.t.cdf(-2.0305, 8), 4) == 0.0384


def test_the_table_states_the_direction_of_its_t():
    from routing_rl.suites.table import Row
    from routing_rl.suites.table_text import markdown

    text = markdown([Row("a", 2, 0.9, 0.01, 0.91, 0.9, 0.01, 2.0, 2, 0.04, 1.0, 0)], "accuracy", True, "b", "last")
    assert "t (> 0: ahead of b)" in text and "opposite sign" in text

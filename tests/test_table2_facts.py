"""docs/table2_facts.py reads how the Table 2 rows learned (collapse, shipped-loop accuracy, seed agreement)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "table2_facts.py"
spec = importlib.util.spec_from_file_location("table2_facts", SCRIPT)
facts_module = importlib.util.module_from_spec(spec)
sys.modules["table2_facts"] = facts_module
spec.loader.exec_module(facts_module)


def epoch(k: int, accuracy: float, perplexity: list[list[float]], active: bool = True, routes=None, policy=None) -> dict:
    routing = {"active": active, "perplexity": perplexity, "policy": policy or [], "routes": routes or []}
    return {"epoch": k, "test": {"mean": accuracy}, "routing": routing}


def results(epochs: list[dict], last: float = 0.9) -> dict:
    return {"status": "complete", "epochs": epochs, "final": {"last": {"test_mean": last}}}


def test_collapse_counts_from_the_first_routed_epoch_and_reports_what_follows():
    """Warm-up: routing inactive for two epochs, then uniform (10), 3.0, then every task below 1.1
    in the fourth routed epoch (epoch 6); from routed epoch 6 (epoch 8) on, one task returns to 1.5."""
    ppl = [[10.0, 10.0]], [[3.0, 1.0]], [[1.5, 1.05]], [[1.05, 1.02]], [[1.0, 1.0]], [[1.0, 1.5]], [[1.0, 1.0]]
    warm = [epoch(1, 0.5, [[1.0, 1.0]], active=False), epoch(2, 0.5, [[1.0, 1.0]], active=False)]
    warm += [epoch(3 + i, 0.5, p) for i, p in enumerate(ppl)]
    never = [epoch(1 + i, 0.5, [[1.4, 3.0]]) for i in range(7)]
    trials = {"warm-up": [(0, Path("w"), results(warm))], "corrected": [(1, Path("c"), results(never))]}
    lines = facts_module.collapse_lines(trials)
    assert "warm-up s0: routed from epoch 3; every task below 1.1: first at epoch 6 (routed epoch 4)" in lines[2]
    assert "from epoch 8: mean over tasks at most 1.250, single task at most 1.50" in lines[2]
    assert "corrected s1: routed from epoch 1; every task below 1.1: never" in lines[1]


def test_shipped_loop_lines_read_epoch_one_and_the_late_spread():
    eps = [epoch(k, 0.80 if k == 1 else (0.91 if k % 2 else 0.913), [[1.5, 1.3], [1.4, 1.4]]) for k in range(1, 15)]
    line = facts_module.shipped_loop_lines({"public-code": [(2, Path("p"), results(eps))]})[1]
    assert "public-code s2: accuracy after epoch 1 0.8000, over epochs 11-14 0.9100-0.9130 (moves 0.0030)" in line
    assert "perplexity over epochs 1-14 1.40-1.40" in line


def test_reverse_d_is_the_other_direction_of_the_verdicts_test():
    rows = {"shared-bottom": [0.965, 0.966], "routing-conv1": [0.958, 0.959, 0.957], "routing-conv123": [0.96]}
    trials = {row: [(s, Path(row), results([], last=v)) for s, v in enumerate(vals)] for row, vals in rows.items()}
    lines = facts_module.reverse_d_lines(trials)
    assert lines[1].startswith("   shared-bottom > routing-conv1: t = ") and "(2 and 3 seeds)" in lines[1]
    assert float(lines[1].split("p = ")[1].split(" ")[0]) < 0.01
    assert lines[2] == "   shared-bottom > routing-conv123: fewer than two seeds"


def test_agreement_counts_seed_pairs_below_alpha(tmp_path):
    """Nine tasks in three groups: seeds 0 and 1 group them alike (a Mantel p near 0.004), seed 2
    crosses the groups; one of the three pairs is below 0.05."""
    groups = np.repeat(np.arange(3), 3)
    crossed = np.tile(np.arange(3), 3)
    names = [f"t{i}" for i in range(9)]
    trials = []
    for seed, blocks in enumerate([groups, (groups + 1) % 3, crossed]):
        policy = np.eye(3)[blocks].tolist()
        score = {"per_task": [0.5] * 9, "mean": 0.5, "micro": 0.5}
        at = {"epoch": 1, "test_mean": 0.5, "test_per_task": score["per_task"]}
        run = {
            "schema_version": 1, "status": "complete", "config": {"epochs": 1},
            "metric": {"name": "accuracy", "higher_is_better": True},
            "env": {"name": "synthetic-groups", "task_names": names}, "learner": {"kind": "router", "routed_layers": ["fc1"]},
            "epochs": [{"epoch": 1, "val": score, "test": score, "routing": {"policy": [policy], "routes": [[int(b)] for b in blocks]}}],
            "final": {"epoch": 1, "last": at, "best_val": at, "routes": [[int(b)] for b in blocks], "parameters": {"train": 1, "serving": 1}},
        }  # fmt: skip
        path = tmp_path / f"separate-optimizers-s{seed}"
        path.mkdir()
        (path / "results.json").write_text(json.dumps(run))
        trials.append((seed, path, run))
    lines = facts_module.agreement_lines({"separate-optimizers": trials}, samples=500)
    assert "1 of 3 comparisons below 0.05 (chance alone: about 0.2); r from -0.33 to 1.00" in lines[1]
    assert lines[2].startswith("   separate-optimizers s0 vs s1 at fc1: r 1.00, Mantel p ")

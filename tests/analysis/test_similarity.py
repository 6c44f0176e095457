"""Task-similarity matrices, the adjusted Rand index, grouping tests, cross-run comparison and `analyze`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from routing_rl.analysis import (
    adjusted_rand_index,
    compare_runs,
    cosine_similarity_matrix,
    grouping_test,
    load_run,
    mantel_p_value,
    mean_by_layer,
    policy_similarities,
    route_partition,
    trivial_agreement,
)
from routing_rl.analysis.report import analyze_runs
from routing_rl.cli.analyze import analyze


def test_cosine_of_identical_policies_is_one_and_of_disjoint_is_zero():
    policy = np.array([[0.7, 0.3, 0.0], [0.7, 0.3, 0.0], [0.0, 0.0, 1.0], [0.35, 0.15, 0.0]])
    sim = cosine_similarity_matrix(policy)
    assert sim.shape == (4, 4)
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 3] == pytest.approx(1.0)  # scale does not matter
    assert sim[0, 2] == pytest.approx(0.0)
    assert np.allclose(np.diag(sim), 1.0) and np.allclose(sim, sim.T)
    uniform = cosine_similarity_matrix(np.full((2, 4), 0.25))
    assert np.allclose(uniform, 1.0)


def test_policy_similarities_stack_layers():
    layers = [np.eye(3), np.full((3, 3), 1 / 3)]
    sims = policy_similarities(layers)
    assert sims.shape == (2, 3, 3)
    assert np.allclose(sims[0], np.eye(3)) and np.allclose(sims[1], 1.0)


def test_adjusted_rand_index_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 1]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 2, 2]) == 1.0  # labels are names, not values
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(0.5714285714)
    assert adjusted_rand_index([0, 0, 0, 0], [0, 0, 0, 0]) == 1.0
    assert adjusted_rand_index([0, 1, 2, 3], [0, 1, 2, 3]) == 1.0
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0


def test_adjusted_rand_index_of_random_partitions_is_about_zero():
    rng = np.random.default_rng(0)
    truth = np.arange(40) % 4
    values = [adjusted_rand_index(rng.integers(0, 5, 40), truth) for _ in range(300)]
    assert abs(np.mean(values)) < 0.01
    assert np.std(values) < 0.05


def test_route_partition_per_layer_and_whole_route():
    routes = np.array([[0, 1], [0, 2], [3, 1], [0, 1]])
    assert route_partition(routes, 0).tolist() == [0, 0, 3, 0]
    whole = route_partition(routes)
    assert whole[0] == whole[3] and len({whole[0], whole[1], whole[2]}) == 3


def test_grouping_test_separates_recovered_groups_from_chance():
    groups = np.arange(12) % 3
    recovered = grouping_test(groups * 2 + 1, groups, num_blocks=6, samples=500, seed=0)
    assert recovered.ari == 1.0
    assert recovered.p_permutation < 0.01 and recovered.p_random < 0.01
    assert abs(recovered.expected_permutation) < 0.05 and abs(recovered.expected_random) < 0.05
    unrelated = grouping_test(np.array([0, 1, 2, 3] * 3), groups, num_blocks=6, samples=500, seed=0)
    assert unrelated.ari < 0.1 and unrelated.p_permutation > 0.2


def write_results(path, policies, routes, task_names=None):
    """A minimal results.json as the trainer writes it."""
    names = task_names or [f"task{t}-group{t % 2}" for t in range(len(routes))]
    score = {"per_task": [0.5] * len(names), "mean": 0.5, "micro": 0.5}
    at = {"epoch": 1, "test_mean": 0.5, "test_per_task": score["per_task"]}
    results = {
        "schema_version": 1, "status": "complete", "config": {"epochs": 1}, "metric": {"name": "accuracy", "higher_is_better": True},
        "env": {"name": "synthetic-groups", "task_names": names},
        "learner": {"kind": "router", "routed_layers": [f"fc{d + 1}" for d in range(len(policies))]},
        "epochs": [{"epoch": 1, "val": score, "test": score, "routing": {"policy": policies, "routes": routes}}],
        "final": {"epoch": 1, "last": at, "best_val": at, "routes": routes, "parameters": {"train": 1, "serving": 1}},
    }  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(results))
    return path


def one_hot_policies(routes, blocks):
    routes = np.asarray(routes)
    return [np.eye(blocks)[routes[:, d]].tolist() for d in range(routes.shape[1])]


def test_runs_routing_alike_agree_and_unlike_disagree(tmp_path):
    grouped = [[0, 1], [2, 3], [0, 1], [2, 3]]  # tasks 0, 2 together, 1, 3 together: the true groups
    relabelled = [[3, 0], [1, 2], [3, 0], [1, 2]]  # the same partition under other block names
    crossed = [[0, 1], [0, 1], [2, 3], [2, 3]]
    runs = [
        load_run(write_results(tmp_path / name, one_hot_policies(r, 4), r))
        for name, r in [("a", grouped), ("b", relabelled), ("c", crossed)]
    ]
    assert runs[0].groups_from_task_names() == [0, 1, 0, 1]
    pairs = {(p.run_a, p.run_b, p.layer): p for p in compare_runs(runs)}
    ab = pairs[("a", "b", 0)]
    assert ab.correlation == pytest.approx(1.0) and ab.mean_abs_difference == 0.0 and ab.route_ari == 1.0
    ac = pairs[("a", "c", 0)]
    assert ac.correlation < 0 and ac.mean_abs_difference > 0.5 and ac.route_ari < 0
    assert pairs[("a", "b", None)].route_ari == 1.0
    means = mean_by_layer(list(pairs.values()))
    assert set(means) == {0, 1, None}


def test_analyze_command_prints_similarity_grouping_and_agreement(tmp_path):
    grouped = [[0, 1], [2, 3], [0, 1], [2, 3]]
    a = write_results(tmp_path / "seed0", one_hot_policies(grouped, 4), grouped)
    b = write_results(tmp_path / "seed1", one_hot_policies(grouped, 4), grouped)
    result = CliRunner().invoke(analyze, [str(a), str(b / "results.json"), "--samples", "50"])
    assert result.exit_code == 0, result.output
    assert "cosine similarity of the task policies at fc1" in result.output
    assert "grouping vs. true groups [0, 1, 0, 1]" in result.output
    assert "seed0 vs seed1" in result.output and "ARI 1.00" in result.output
    assert "blocks in use: fc1 2 of 4, fc2 2 of 4; distinct routes: 2 for 4 tasks" in result.output
    as_json = CliRunner().invoke(analyze, [str(a), "--json", "--samples", "20", "--groups", "0,0,1,1"])
    report = json.loads(as_json.output)
    assert report["runs"][0]["groups"] == [0, 0, 1, 1]
    assert report["runs"][0]["grouping"][0]["ari"] == pytest.approx(-0.5)
    bad = CliRunner().invoke(analyze, [str(a), "--groups", "0,1"])
    assert bad.exit_code != 0 and "2 groups given for 4 tasks" in bad.output


def test_analyze_runs_without_known_groups(tmp_path):
    routes = [[0], [1], [0]]
    path = write_results(tmp_path / "run", one_hot_policies(routes, 2), routes, task_names=["x", "y", "z"])
    report = analyze_runs([path], samples=10)
    assert report["runs"][0]["grouping"] is None and report["pairs"] == []
    assert report["runs"][0]["similarity"][0] == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
    assert report["runs"][0]["blocks_in_use"] == [{"layer": "fc1", "used": 2, "blocks": 2}]
    assert report["runs"][0]["distinct_routes"] == 2  # x and z share their whole route


def test_mantel_test_tells_shared_groupings_from_chance():
    """Nine tasks in three groups of three: the same grouping twice keeps its correlation only under
    the 3! * (3!)^3 of 9! task relabellings that map groups onto groups (0.4%), so p is small; a
    grouping that crosses it correlates negatively (p near 1); a constant matrix has no correlation."""
    groups = np.repeat(np.arange(3), 3)
    grouped = (groups[:, None] == groups[None, :]).astype(float)
    crossed_groups = np.tile(np.arange(3), 3)
    crossed = (crossed_groups[:, None] == crossed_groups[None, :]).astype(float)
    assert mantel_p_value(grouped, grouped, samples=2000, seed=0) < 0.02
    assert mantel_p_value(grouped, crossed, samples=2000, seed=0) > 0.9
    assert np.isnan(mantel_p_value(grouped, np.ones((9, 9)), samples=10, seed=0))
    assert mantel_p_value(grouped, crossed, samples=50, seed=3) == mantel_p_value(grouped, crossed, samples=50, seed=3)


def test_agreement_that_is_one_only_because_nobody_shares_is_marked(tmp_path):
    """Two runs that give every task its own route have identical (all-singleton) partitions, so
    their ARI is 1 by definition; the report must not let that read as "the seeds group alike"."""
    assert trivial_agreement([0, 1, 2], [5, 3, 4]) == "both put every task apart"
    assert trivial_agreement([2, 2, 2], [0, 0, 0]) == "both put all tasks together"
    assert trivial_agreement([0, 0, 1], [0, 0, 1]) == ""  # real agreement: a shared pair
    assert trivial_agreement([0, 1, 2], [0, 0, 0]) == ""  # disagree (ARI 0), not trivially 1
    apart = [[0, 1], [1, 2], [2, 0]]  # three tasks, three distinct whole routes
    also_apart = [[2, 0], [0, 0], [1, 1]]
    shared = [[0, 0], [0, 0], [1, 1]]  # tasks 0 and 1 share their route
    paths = [
        write_results(tmp_path / name, one_hot_policies(r, 3), r, task_names=["x", "y", "z"])
        for name, r in [("a", apart), ("b", also_apart), ("c", shared)]
    ]
    report = analyze_runs(paths, samples=10)
    whole = {(p["run_a"], p["run_b"]): p for p in report["pairs"] if p["layer_name"] == "route"}
    assert whole[("a", "b")]["route_ari"] == 1.0 and whole[("a", "b")]["trivial"] == "both put every task apart"
    assert whole[("a", "c")]["trivial"] == "" and whole[("a", "c")]["route_ari"] == 0.0
    route_mean = next(m for m in report["pair_means"] if m["layer"] == "route")
    assert route_mean["trivial_pairs"] == 1 and route_mean["pairs"] == 3
    text = CliRunner().invoke(analyze, [str(p) for p in paths] + ["--samples", "10"]).output
    assert "a vs b    route: ARI 1.00 (trivially: both put every task apart)" in text
    assert "route: ARI 0.33 (1 of 3 pairs trivially 1)" in text


def test_analyze_names_the_tasks_and_keeps_the_index_where_a_name_is_missing(tmp_path):
    """A user's own tasks (columns of a table) are read by name: in the routes, on every row of a
    similarity matrix and in the grouping's task order; a task without a name keeps its number."""
    routes = [[0, 1], [1, 0], [0, 1]]
    path = write_results(tmp_path / "run", one_hot_policies(routes, 2), routes, task_names=["colour", "hair length", ""])
    result = CliRunner().invoke(analyze, [str(path), "--samples", "10", "--groups", "0,1,0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "routes (task: blocks): colour: [0, 1]; hair length: [1, 0]; task 2: [0, 1]" in lines
    start = lines.index("-- cosine similarity of the task policies at fc1 (columns: the rows' task numbers)")
    header, *rows = lines[start + 1 : start + 5]
    assert header.split() == ["0", "1", "2"]
    assert [r.split()[:3] for r in rows] == [["0", "colour", "1.00"], ["1", "hair", "length"], ["2", "task", "2"]]
    assert rows[1].split()[3:] == ["0.00", "1.00", "0.00"]
    assert "-- grouping vs. true groups [0, 1, 0] (in task order: colour, hair length, task 2)" in lines

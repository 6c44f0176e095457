"""Flags on a router that did not route, and a gated router's route shown as its open gates, on hand-made results."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from routing_rl.analysis.gate_routes import open_gates, route_cells
from routing_rl.analysis.report import format_run
from routing_rl.analysis.routing_flags import GATES_OPEN, POLICY_COLLAPSED, flag_lines, routing_flags
from routing_rl.cli.render import print_results


def epoch(n: int, policy: list[list[list[float]]], perplexity: list[list[float]], gates: Any = None, active: bool = True) -> dict[str, Any]:
    routing: dict[str, Any] = {"active": active, "policy": policy, "perplexity": perplexity, "routes": [[0] * len(policy) for _ in policy[0]]}
    if gates is not None:
        routing["gates"] = gates
    split = {"per_task": [0.5, 0.5], "mean": 0.5, "micro": 0.5}
    return {"epoch": n, "val": split, "test": split, "routing": routing}


def results(agent: str, epochs: list[dict[str, Any]], router_parameters: int = 12, blocks: int = 3) -> dict[str, Any]:
    return {"status": "complete", "config": {"agent": agent, "seed": 0}, "env": {"name": "t", "task_names": ["a", "b"]},
            "metric": {"name": "accuracy"}, "epochs": epochs,
            "final": {"epoch": epochs[-1]["epoch"], "parameters": {"train": 10, "serving": 10},
                      "best_val": {"epoch": 1, "val_mean": 0.5, "test_mean": 0.5}, "mean_train_seconds_per_epoch": 1.0},
            "learner": {"agent": agent, "routed_layers": ["fc1", "fc2"], "blocks_per_layer": [blocks] * 2,
                        "router_parameters": router_parameters, "router_lr": 0.1}}  # fmt: skip


UNIFORM = [[1 / 3] * 3, [1 / 3] * 3]
ONE_HOT = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
OPEN = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
SOME_CLOSED = [[1.0, 0.0, 0.4], [0.0, 1.0, 0.0]]


def test_every_gate_open_is_flagged_with_its_counts():
    run = results("hard-concrete", [epoch(1, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2, gates=[OPEN, OPEN])])
    (flag,) = routing_flags(run)
    assert flag.name == GATES_OPEN and flag.epoch == 1
    assert flag.numbers == {"open_per_layer": [6, 6], "gates_per_layer": [6, 6]}
    assert "fc1 6/6, fc2 6/6" in flag.message
    assert flag_lines(run, "hc seed 0") == [f"warning: hc seed 0: {GATES_OPEN}: {flag.message}"]


def test_a_closed_gate_in_any_layer_or_an_early_open_epoch_raises_no_flag():
    closed = results("hard-concrete", [epoch(1, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2, gates=[OPEN, OPEN]),
                                       epoch(2, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2, gates=[OPEN, SOME_CLOSED])])  # fmt: skip
    assert routing_flags(closed) == []


def test_gates_of_a_run_recorded_without_them_are_read_from_the_hard_concrete_policy():
    run = results("hard-concrete", [epoch(1, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2)])
    assert [f.name for f in routing_flags(run)] == [GATES_OPEN]
    assert routing_flags(results("wpl", [epoch(1, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2)])) == []  # a hard router has no gates


def test_a_gated_model_with_every_gate_open_is_flagged():
    last = {"epoch": 4, "gates": {"open": 24, "total": 24, "expected_l0": 23.9}}
    run = {"epochs": [last], "learner": {"kind": "model", "agent": "snr-trans"}}
    (flag,) = routing_flags(run)
    assert flag.name == GATES_OPEN and flag.numbers == {"open": 24, "total": 24}
    assert routing_flags({"epochs": [{**last, "gates": {"open": 20, "total": 24}}], "learner": {}}) == []


def test_a_policy_deterministic_after_epoch_one_is_flagged_with_its_perplexity_and_rate():
    run = results("wpl", [epoch(1, [ONE_HOT, ONE_HOT], [[1.0, 1.01], [1.02, 1.0]]), epoch(2, [ONE_HOT, ONE_HOT], [[1.0, 1.0]] * 2)])
    (flag,) = routing_flags(run)
    assert flag.name == POLICY_COLLAPSED and flag.epoch == 1
    assert flag.numbers == {"max_perplexity": 1.02, "router_lr": 0.1}
    assert "after epoch 1 at router lr 0.1 (largest perplexity 1.020)" in flag.message


def test_no_collapse_flag_for_a_policy_that_explores_in_epoch_one_a_fixed_router_or_one_block():
    exploring = results("wpl", [epoch(1, [UNIFORM, ONE_HOT], [[2.9, 2.8], [1.0, 1.0]]), epoch(2, [ONE_HOT, ONE_HOT], [[1.0, 1.0]] * 2)])
    assert routing_flags(exploring) == []  # converged later: the flag is about epoch 1 only
    fixed = results("fixed-random", [epoch(1, [ONE_HOT, ONE_HOT], [[1.0, 1.0]] * 2)], router_parameters=0)
    assert routing_flags(fixed) == []
    one_block = results("wpl", [epoch(1, [[[1.0]] * 2] * 2, [[1.0, 1.0]] * 2)], blocks=1)
    assert routing_flags(one_block) == []
    assert routing_flags({"epochs": [], "learner": {}}) == []


def test_the_first_routing_epoch_after_warm_up_is_the_one_read():
    warm = epoch(1, [ONE_HOT, ONE_HOT], [[1.0, 1.0]] * 2, active=False)
    run = results("reinforce", [warm, epoch(2, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2)])
    assert routing_flags(run) == []
    collapsed = results("reinforce", [warm, epoch(2, [ONE_HOT, ONE_HOT], [[1.0, 1.0]] * 2)])
    assert [(f.name, f.epoch) for f in routing_flags(collapsed)] == [(POLICY_COLLAPSED, 2)]


def test_a_gated_router_route_is_printed_as_its_open_gates():
    run = results("hard-concrete", [epoch(1, [UNIFORM, UNIFORM], [[3.0, 3.0]] * 2, gates=[SOME_CLOSED, OPEN])])
    learner, routing = run["learner"], run["epochs"][-1]["routing"]
    assert open_gates(learner, routing) == [[[0, 2], [0, 1, 2]], [[1], [0, 1, 2]]]
    assert route_cells(learner, routing) == ["{0,2} {0,1,2}", "{1} {0,1,2}"]
    assert route_cells(run["learner"] | {"agent": "wpl"}, {"routes": [[0, 2], [1, 1]]}) == ["0 2", "1 1"]  # a hard router's blocks
    console = Console(width=120, record=True)
    print_results(run, console)
    shown = console.export_text()
    assert "{0,2} {0,1,2}" in shown and "{1} {0,1,2}" in shown and "0 0" not in shown
    report = {"name": "r", "task_names": ["a", "b"], "layers": ["fc1", "fc2"], "routes": [[0, 0], [0, 0]],
              "open_gates": open_gates(learner, routing), "blocks_in_use": [], "similarity": [], "grouping": None}  # fmt: skip
    assert "open gates (task: blocks per layer): a: {0,2} {0,1,2}; b: {1} {0,1,2}" in format_run(report, 3)

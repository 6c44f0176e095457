"""The oracle router: routes that follow the suite's known task groups."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from routing_rl.agents import RouterConfigError
from routing_rl.agents.oracle_groups import OracleGroupsRouter
from routing_rl.cli import main


def test_tasks_of_a_group_share_every_layer_and_groups_never_share():
    router = OracleGroupsRouter(6, 3, 6, task_groups=(2, 0, 2, 5, 0, 5))  # group ids need not be 0..G-1
    assert router.routes().tolist() == [[1, 1, 1], [0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 0, 0], [2, 2, 2]]
    assert not router.learns_routes and "task_groups" not in OracleGroupsRouter.options()


def test_it_needs_a_group_per_task_and_a_block_per_group():
    with pytest.raises(RouterConfigError, match="needs the group of each of the 4 tasks, got 0"):
        OracleGroupsRouter(4, 3, 4)
    with pytest.raises(RouterConfigError, match="give --blocks 3 or more"):
        OracleGroupsRouter(6, 3, 2, task_groups=(0, 1, 2, 0, 1, 2))


def test_a_run_routes_synthetic_groups_by_their_teacher_and_a_suite_without_groups_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["run", "--env", "synthetic-groups", "-e", "num_tasks=6", "-e", "num_groups=3", "-e", "train_per_task=60",
                                       "--agent", "oracle-groups", "--epochs", "1", "--threads", "1", "--logdir", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["epochs"][-1]["routing"]["routes"] == [[t % 3] * 3 for t in range(6)]  # task t is in group t mod 3
    refused = CliRunner().invoke(main, ["run", "--env", "mmoe-synthetic", "--agent", "oracle-groups", "--epochs", "1",
                                        "--logdir", str(tmp_path / "x")])  # fmt: skip
    assert refused.exit_code != 0 and "records none; use synthetic-groups or multilabel-synthetic" in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "x").exists()

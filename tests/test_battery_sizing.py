"""Every method of the battery ``suite init`` writes is sized to the shared bottom: checked on the
networks the trainer builds from the written suite file (not on the sizing formula), for a table
of vectors and for images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data.families import task_family
from routing_rl.suites.router_sizing import closest
from routing_rl.suites.spec import load_suite_file
from routing_rl.training.loop.learner_factory import make_learner
from routing_rl.training.setup.composition import compose

TOLERANCE = 0.10
"""How far from the shared bottom's trainable parameters a method of the battery may be."""


def vector_table(path, rows: int = 120) -> list[str]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 12)), columns=[f"x{i}" for i in range(12)])
    for t in range(4):
        frame[f"t{t}"] = rng.integers(0, 3, rows)
    frame.to_csv(path / "d.csv", index=False)
    return ["-e", f"path={path / 'd.csv'}", "-e", "tasks=t0,t1,t2,t3"]


def image_table(path, rows: int = 60) -> list[str]:
    rng = np.random.default_rng(0)
    np.savez(path / "d.npz", x=rng.integers(0, 255, (rows, 3, 16, 16)).astype(np.uint8),
             a=rng.integers(0, 2, rows), b=rng.integers(0, 3, rows), c=rng.integers(0, 2, rows))  # fmt: skip
    return ["-e", f"path={path / 'd.npz'}", "-e", "tasks=a,b,c", "-e", "kinds=b:multi-class"]


def trainer_counts(suite_file) -> dict[str, int]:
    """Each run's trainable parameters as the trainer's learner counts them, from the written suite file."""
    counts = {}
    for trial in load_suite_file(suite_file).trials():
        if trial.seed != 0:
            continue
        parts = compose(trial.config)
        family = task_family(parts.load_data())
        learner = make_learner(parts, family, torch.device("cpu"))
        counts[trial.run] = learner.epoch_record(1)["parameters"]["train"]
    return counts


@pytest.mark.parametrize("inputs", [vector_table, image_table])
def test_every_battery_method_is_sized_to_the_shared_bottom(tmp_path, inputs):
    suite_file = tmp_path / "battery.toml"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", *inputs(tmp_path), "--out", str(suite_file), "--seeds", "2"])
    assert init.exit_code == 0, init.output
    counts = trainer_counts(suite_file)
    assert len(counts) == 8
    baseline = counts["shared-bottom"]
    off = {run: n / baseline - 1 for run, n in counts.items() if abs(n / baseline - 1) > TOLERANCE}
    assert not off, f"shared bottom {baseline}: {counts}"
    header = suite_file.read_text().split("[suite]")[0]
    printed = init.output.split("trainable parameters")[1]
    for run, n in counts.items():  # the header and the command state the counts the trainer has
        assert f"{run:<14} {n:>10,}" in header
        assert f"{run} {n:,}" in printed


def test_image_battery_shrinks_routed_conv_layers_with_the_fc_width(tmp_path):
    suite_file = tmp_path / "battery.toml"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", *image_table(tmp_path), "--out", str(suite_file), "--seeds", "2"])
    assert init.exit_code == 0, init.output
    runs = load_suite_file(suite_file).runs
    assert "filters" not in runs["shared-bottom"] and "hidden" not in runs["shared-bottom"]  # the baseline keeps the defaults
    assert runs["no-sharing"]["filters"] < 32  # its conv layers are routed: their copies must shrink too
    assert "filters" not in runs["wpl"] and runs["wpl"]["hidden"] < 64  # shared conv layers keep the baseline's width


def test_closest_width_is_the_nearest_count_and_ties_go_to_the_smaller():
    def count(w: int) -> int:
        return 10 * w * w

    assert closest(count, 1000) == 10
    assert closest(count, 1105) == 10 and closest(count, 1110) == 11  # 1000 and 1210: a tie at 1105
    assert closest(count, 1) == 1 and closest(count, 10**12, high=50) == 50


def test_the_battery_sets_router_rates_and_l0_weight_at_which_they_route(tmp_path):
    from routing_rl.suites.battery import HARD_CONCRETE_L0_LAMBDA, HARD_CONCRETE_ROUTER_LR, REINFORCE_ROUTER_LR, WPL_ROUTER_LR

    suite_file = tmp_path / "battery.toml"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", *vector_table(tmp_path), "--out", str(suite_file), "--seeds", "2"])
    assert init.exit_code == 0, init.output
    configs = {t.run: t.config for t in load_suite_file(suite_file).trials() if t.seed == 0}
    assert configs["wpl"].router_lr == WPL_ROUTER_LR and configs["reinforce"].router_lr == REINFORCE_ROUTER_LR
    assert configs["hard-concrete"].router_lr == HARD_CONCRETE_ROUTER_LR
    assert configs["hard-concrete"].agent_options == {"l0_lambda": HARD_CONCRETE_L0_LAMBDA}

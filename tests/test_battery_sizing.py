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
from routing_rl.models.sizing import closest
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

    assert closest(count, 1000, 1, 4096) == 10
    assert closest(count, 1105, 1, 4096) == 10 and closest(count, 1110, 1, 4096) == 11  # 1000 and 1210: a tie at 1105
    assert closest(count, 1, 1, 4096) == 1 and closest(count, 10**12, 1, 50) == 50


def test_the_battery_sets_router_rates_and_l0_weight_at_which_they_route(tmp_path):
    from routing_rl.suites.battery import HARD_CONCRETE_L0_LAMBDA, REINFORCE_ROUTER_LR, WPL_ROUTER_LR, hard_concrete_router_lr

    suite_file = tmp_path / "battery.toml"
    init = CliRunner().invoke(main, ["suite", "init", "--env", "files", *vector_table(tmp_path), "--out", str(suite_file), "--seeds", "2"])
    assert init.exit_code == 0, init.output
    configs = {t.run: t.config for t in load_suite_file(suite_file).trials() if t.seed == 0}
    assert configs["wpl"].router_lr == WPL_ROUTER_LR and configs["reinforce"].router_lr == REINFORCE_ROUTER_LR
    hc = configs["hard-concrete"]
    assert hc.router_lr == hard_concrete_router_lr(train_rows(init.output), hc.epochs, hc.batch_size)
    assert configs["hard-concrete"].agent_options == {"l0_lambda": HARD_CONCRETE_L0_LAMBDA}


def train_rows(output: str) -> int:
    """The training rows ``suite init`` prints (``rows: N train, ...``)."""
    return int(output.split("rows: ")[1].split(" train")[0].replace(",", ""))


def test_hard_concrete_rate_is_the_rate_at_which_a_gate_can_close_in_half_the_batches():
    from routing_rl.suites.battery import hard_concrete_router_lr

    # (3.0 + ln 11) / (0.5 x ceil(rows / 128) x epochs), two significant digits: the measured tables
    assert hard_concrete_router_lr(247, 20) == 0.27  # penguins: 2 batches an epoch
    assert hard_concrete_router_lr(2160, 20) == 0.032
    assert hard_concrete_router_lr(7200, 20) == 0.0095  # synthetic-groups
    assert hard_concrete_router_lr(36000, 20) == 0.0019
    assert hard_concrete_router_lr(2160, 40) == 0.016  # twice the epochs, half the rate


@pytest.mark.parametrize("rows", [300, 20000])
def test_the_battery_writes_the_hard_concrete_rate_of_its_table(tmp_path, rows):
    from routing_rl.suites.battery import HARD_CONCRETE_L0_LAMBDA, hard_concrete_router_lr

    rates = {}
    for kinds in ([], ["-e", "kinds=t0:multi-class,t1:multi-class,t2:multi-class,t3:multi-class"]):
        suite_file = tmp_path / f"battery{len(kinds)}.toml"
        init = CliRunner().invoke(main, ["suite", "init", "--env", "files", *vector_table(tmp_path, rows), *kinds,
                                         "--out", str(suite_file), "--seeds", "2", "--epochs", "20"])  # fmt: skip
        assert init.exit_code == 0, init.output
        config = next(t.config for t in load_suite_file(suite_file).trials() if t.run == "hard-concrete")
        assert config.agent_options == {"l0_lambda": HARD_CONCRETE_L0_LAMBDA}
        rates[len(kinds)] = config.router_lr
        assert config.epochs == 20 and config.router_lr == hard_concrete_router_lr(train_rows(init.output), 20, config.batch_size)
        assert f"router_lr {config.router_lr:g}" in suite_file.read_text().split("[suite]")[0]  # the header says why
    # a table of class tasks is played as one episode per row and task; the rate counts its rows
    assert rates[0] == rates[2]
    assert rates[0] == (hard_concrete_router_lr(216, 20, 27) if rows == 300 else 0.0048)  # 216 rows in batches of 27; 14,400 of 128


def test_a_small_table_gets_smaller_batches_and_the_epochs_for_800_of_them():
    from routing_rl.suites.battery import MIN_BATCHES, training_length

    assert training_length(247, None) == (30, 89)  # the penguins: 9 batches an epoch, 801 in all
    assert training_length(247, 5) == (30, 5)  # --epochs given: as given
    assert training_length(2160, None) == (128, 48)  # 17 batches an epoch
    assert training_length(36000, None) == (128, 20)  # 282 an epoch: the default 20 are plenty
    assert training_length(40, None) == (16, 267)  # the smallest batches: 3 an epoch
    for rows in (40, 247, 2160, 36000):
        batch, epochs = training_length(rows, None)
        assert -(-rows // batch) * epochs >= MIN_BATCHES

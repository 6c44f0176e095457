"""The shipped Table 1 and Table 2 suites train the rows the Re-examining paper names.

The public-code and corrected rows carry the public code's whole learning problem and loop (its
example script), the corrected row differs from the public one only in its learner and loss
reduction, the learned rows from "separate optimizers" on train the corrected learner with a
softmax policy on the preset's protocol, and every row keeps the paper's section 3.2 network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from routing_rl.suites import load_suite_file

SUITES = Path(__file__).resolve().parents[1] / "suites"
TABLES = {"reexamining-table2-fmnist": ("reexamining-fmnist", "fmnist-mtl", 50),
          "reexamining-table1-cifar100": ("reexamining-cifar100", "cifar100-superclass", 200)}
SHIPPED_LOOP = {
    "separate_optimizers": False, "optimizer": "sgd", "batch_size": 10, "lr": 3e-3, "router_lr": 9e-4,
    "lr_milestones": [5, 10], "lr_decay": [1 / 3, 0.3], "step_epochs": [1, 6, 11], "grad_clip": 40.0,
    "grad_clip_mode": "public-code", "module_loss": "mse-one-hot", "reward": "neg-loss", "collab_reward": 0.3,
    "collab_form": "public-code",
}


def _rows(name: str) -> dict[str, dict]:
    suite = load_suite_file(SUITES / f"{name}.toml")
    return {t.run: t.config.to_dict() for t in suite.trials() if t.seed == 0}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_public_code_and_corrected_rows_train_the_shipped_learning_problem_and_loop(name):
    rows = _rows(name)
    for run, variant, reduction in (("public-code", "public-code", "mean"), ("corrected", "public-code-corrected", "sum")):
        config = rows[run]
        for key, value in SHIPPED_LOOP.items():
            assert config[key] == pytest.approx(value), (run, key, config[key])
        assert config["agent"] == "wpl" and config["agent_options"] == {"variant": variant}
        assert config["loss_reduction"] == reduction
    differing = {k for k in rows["public-code"] if rows["public-code"][k] != rows["corrected"][k]}
    assert differing == {"agent_options", "loss_reduction"}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_learned_rows_after_the_public_code_train_the_papers_learner_on_the_preset_protocol(name):
    preset, env, epochs = TABLES[name]
    rows = _rows(name)
    assert set(rows) == {"public-code", "corrected", "separate-optimizers", "routing-conv1", "routing-conv123",
                         "shared-bottom", "no-sharing", "fixed-random-fc", "fixed-random-conv3", "warm-up"}
    for run, config in rows.items():
        assert (config["preset"], config["env"], config["epochs"]) == (preset, env, epochs), run
        assert config["fc_layers"] == 3 and config["env_options"]["augment"] is True and config["dropout"] == 0.0, run
        if run in ("public-code", "corrected"):
            continue
        assert (config["optimizer"], config["separate_optimizers"], config["lr"], config["router_lr"]) == ("adam", True, 1.5e-4, 2e-2), run
        assert (config["batch_size"], config["module_loss"], config["grad_clip"]) == (128, "cross-entropy", None), run
        assert not config["step_epochs"], run  # an optimizer step in every epoch
        if config["agent"] == "wpl":
            assert config["agent_options"] == {"variant": "public-code-corrected", "parameterization": "softmax"}, run
    routed = {run: rows[run]["routed"] for run in ("separate-optimizers", "routing-conv1", "routing-conv123", "shared-bottom",
                                                  "no-sharing", "fixed-random-fc", "fixed-random-conv3")}
    assert routed == {"separate-optimizers": "fc", "routing-conv1": "conv1", "routing-conv123": "conv1,2,3", "shared-bottom": "none",
                      "no-sharing": "all", "fixed-random-fc": "fc", "fixed-random-conv3": "conv3"}
    assert rows["warm-up"]["warmup_epochs"] == 20 and rows["separate-optimizers"]["warmup_epochs"] == 0

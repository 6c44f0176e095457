"""One registration mechanism for suites, routers and models: subclass, name it, and it is usable."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data import SingleLabelSuite, Suite
from routing_rl.models import MultiTaskModel
from routing_rl.registry import AGENTS, UnknownNameError


def test_routers_and_models_share_one_agent_namespace():
    assert AGENTS.get("wpl").family.startswith("router") and AGENTS.get("snr-trans").family == "multi-task model"
    with pytest.raises(ValueError, match="already registered"):

        class Clash(MultiTaskModel):  # noqa: F841  (defining it is the test)
            name = "wpl"

            def forward(self, x):
                return x
    with pytest.raises(UnknownNameError, match="valid choices: .*fixed-random.*snr-trans"):
        AGENTS.get("nope")


def test_every_builtin_option_has_help():
    for registry in (AGENTS, Suite.registry):
        for name, cls in registry.items():
            if not cls.__module__.startswith("routing_rl."):
                continue  # classes the tests define
            for option in cls.options().values():
                assert option.help, f"{name}: option {option.name} has no help"


def test_a_subclass_without_its_own_name_is_not_registered_twice():
    from routing_rl.agents.wpl import WPLRouter

    class Tweaked(WPLRouter):
        pass

    assert AGENTS.get("wpl") is WPLRouter


def test_a_user_suite_and_model_run_through_the_cli(tmp_path):
    from routing_rl.data.synthetic import SyntheticGroups

    class TinySuite(SyntheticGroups):
        name = "test-tiny-suite"
        description = "three small synthetic tasks"

    class MeanModel(MultiTaskModel):
        name = "test-linear-model"
        description = "one linear map to every task's outputs"
        option_help = {"scale": "initial weight scale"}

        def __init__(self, input_dim, labels_per_task, scale: float = 1.0):
            super().__init__(input_dim, labels_per_task)
            self.linear = torch.nn.Linear(input_dim, self.num_tasks * self.max_labels)
            with torch.no_grad():
                self.linear.weight.mul_(scale)

        def forward(self, x):
            return self.linear(x).view(x.shape[0], self.num_tasks, self.max_labels)

    assert Suite.registry.get("test-tiny-suite") is TinySuite and issubclass(TinySuite, SingleLabelSuite)
    assert MeanModel.options()["scale"].default == 1.0
    result = CliRunner().invoke(main, ["run", "--agent", "test-linear-model", "--env", "test-tiny-suite", "-o", "scale=0.5",
                                       "-e", "num_tasks=3", "-e", "train_per_task=50", "-e", "test_per_task=20",
                                       "--epochs", "1", "--quiet", "--logdir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["agent_options"] == {"scale": 0.5} and results["learner"]["class"] == "MeanModel"


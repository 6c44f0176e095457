"""The composition layer: a run's names become classes once, and the command line and suite files
share one config builder's checks and one run sequence."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.data import Suite
from routing_rl.registry import AGENTS, Registry
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.training import RunConfig
from routing_rl.training.setup.composition import compose, misplaced_options

SMALL = ["--env", "synthetic-groups", "-e", "num_tasks=2", "-e", "train_per_task=40", "-e", "test_per_task=20", "--epochs", "1", "--quiet"]


def test_a_run_looks_its_agent_and_suite_names_up_once(tmp_path, monkeypatch):
    calls: list[str] = []
    original = Registry.get

    def counting(self: Registry, name: str):  # type: ignore[no-untyped-def]
        calls.append(f"{'agent' if self is AGENTS else 'suite' if self is Suite.registry else 'other'}:{name}")
        return original(self, name)

    monkeypatch.setattr(Registry, "get", counting)
    for agent in ("wpl", "snr-trans"):
        calls.clear()
        result = CliRunner().invoke(main, ["run", "--agent", agent, *SMALL, "--logdir", str(tmp_path / agent)])
        assert result.exit_code == 0, result.output
        assert calls == [f"agent:{agent}", "suite:synthetic-groups"]


def test_the_composition_carries_what_the_names_resolve_to(tmp_path):
    parts = compose(RunConfig(agent="wpl", env="synthetic-groups", logdir=str(tmp_path)))
    assert parts.is_router and parts.agent_cls.name == "wpl" and parts.suite_cls.name == "synthetic-groups"
    assert parts.router_lr == parts.agent_cls.default_router_lr  # no --router-lr: the router's own rate
    model = compose(RunConfig(agent="mmoe", env="multilabel-synthetic"))
    assert not model.is_router and model.router_lr == RunConfig.lr and model.run_dir().name == "multilabel-synthetic-mmoe-seed0"


@pytest.mark.parametrize(("key", "value", "agent", "env", "message"), [
    ("fc_layers", 2, "snr-trans", "multilabel-synthetic", "fc_layers only applies to routers; snr-trans is a multi-task model"),
    ("dropout", 0.1, "mmoe", "multilabel-synthetic", "dropout only applies to routers; mmoe is a multi-task model"),
    ("map_k", 5, "wpl", "synthetic-groups", "map_k only applies to multi-label suites, not synthetic-groups"),
])  # fmt: skip
def test_a_suite_file_is_refused_what_the_command_line_refuses(tmp_path, key, value, agent, env, message):
    suite = tmp_path / "s.toml"
    suite.write_text(f'[suite]\nname = "s"\nseeds = [0]\n[defaults]\nenv = "{env}"\n[runs.a]\nagent = "{agent}"\n{key} = {json.dumps(value)}\n')
    with pytest.raises(SuiteError, match=message):
        load_suite_file(suite)
    flag = "--" + key.replace("_", "-")
    result = CliRunner().invoke(main, ["run", "--agent", agent, "--env", env, flag, str(value)])
    assert result.exit_code == 2 and message.replace(key, flag) in result.output


def test_options_that_apply_pass_and_a_preset_is_not_the_users_choice(tmp_path):
    wpl, snr, groups = AGENTS.get("wpl"), AGENTS.get("snr-trans"), Suite.registry.get("synthetic-groups")
    assert misplaced_options(["fc_layers", "map_k"], wpl, Suite.registry.get("multilabel-synthetic"), str) is None
    assert misplaced_options(["lr", "epochs"], snr, groups, str) is None
    suite = tmp_path / "p.toml"  # the preset sets fc_layers (a router option); a model under it is not refused for that
    suite.write_text('[suite]\nname = "p"\nseeds = [0]\n[defaults]\npreset = "reexamining-fmnist"\n[runs.a]\nagent = "mmoe"\n')
    assert load_suite_file(suite).trials()[0].config.agent == "mmoe"


def test_the_command_line_and_a_suite_file_build_the_same_configuration(tmp_path):
    import routing_rl.suites.spec as spec
    import routing_rl.training.setup.composition as composition

    assert spec.configure is composition.configure  # one builder
    options = {"agent": "wpl", "lr": 0.01, "hidden": 16, "epochs": 1, "batch_size": 32, "collab_reward": 0.3}
    flags = [a for k, v in options.items() for a in ("--" + k.replace("_", "-"), str(v))]
    result = CliRunner().invoke(main, ["run", *flags, *SMALL[:-3], "-o", "parameterization=softmax", "--quiet", "--logdir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    from_cli = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    suite = tmp_path / "s.toml"
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    env = 'env = "synthetic-groups"\nenv_options = { num_tasks = 2, train_per_task = 40, test_per_task = 20 }'
    suite.write_text(f'[suite]\nname = "s"\nseeds = [0]\n[runs.a]\n{lines}\n{env}\nagent_options = {{ parameterization = "softmax" }}\n')
    from_suite = load_suite_file(suite).trials()[0].config.to_dict()
    ignore = {"threads", "logdir"}
    assert {k: v for k, v in from_cli.items() if k not in ignore} == {k: v for k, v in json.loads(json.dumps(from_suite)).items() if k not in ignore}

"""Each run option is declared once: the command line's flags and the configuration's checks come
from the declaration, so the command line, suite files and Python agree."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.cli.run import run_command
from routing_rl.suites import SuiteError, load_suite_file
from routing_rl.training import RunConfig
from routing_rl.training.setup.config import MULTI_OUTPUT_ONLY_OPTIONS, ROUTER_ONLY_OPTIONS
from routing_rl.training.setup.options import FIELD_DEFAULT, SECTIONS, Option, declared, flag_of

NOT_CONFIG = {"resume", "overwrite", "agent_option", "env_option", "plugins", "quiet"}


def test_every_flag_of_run_is_a_declared_option_with_the_fields_default():
    params = {p.name: p for p in run_command.params}
    fields = {f.name: (f, d) for f, d in declared(RunConfig)}
    assert set(params) - NOT_CONFIG == set(fields)
    for name, (f, d) in fields.items():
        param = params[name]
        assert param.opts[0] == flag_of(name, d) and param.help == d.help and d.help
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if d.parse is not None:  # text the command line parses into the field's value
            assert param.default == ("" if default == [] else str(default))
        elif d.cli_default is not FIELD_DEFAULT:
            assert param.default == d.cli_default
        elif not getattr(param, "is_flag", False) or d.off_flag:
            assert param.default == default, name
    assert {n for n, (_, d) in fields.items() if d.section in ("network", "episodes")} == set(ROUTER_ONLY_OPTIONS)
    assert MULTI_OUTPUT_ONLY_OPTIONS == ("map_k",)
    assert {d.section for _, d in fields.values()} == set(SECTIONS)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("epochs", 0, "--epochs must be from 1 to 100000, got 0"),
    ("epochs", 10**12, "--epochs must be from 1 to 100000, got 1000000000000"),
    ("val_fraction", 1.0, r"--val-fraction must be in \[0, 1\), got 1.0"),
    ("dropout", 0.95 + 0.1, r"--dropout must be in \[0, 1\)"),
    ("optimizer", "rmsprop", "--optimizer must be one of adam, sgd, got 'rmsprop'"),
    ("fc_layers", 1001, "--fc-layers must be from 0 to 1000, got 1001"),
])  # fmt: skip
def test_a_declared_range_holds_in_python_suite_files_and_on_the_command_line(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{key: value}).check()
    suite = tmp_path / "s.toml"
    text = f'"{value}"' if isinstance(value, str) else str(value)
    suite.write_text(f'[suite]\nname = "s"\nseeds = [0]\n[runs.a]\nagent = "wpl"\n{key} = {text}\n')
    with pytest.raises(SuiteError, match=message):
        load_suite_file(suite)
    result = CliRunner().invoke(main, ["run", "--agent", "wpl", flag_of(key), str(value)])
    assert result.exit_code == 2 and "Traceback" not in result.output  # click's own message names the flag
    assert flag_of(key) in result.output


def test_an_options_range_reads_as_its_error_says():
    assert Option("x", "run", low=1).problem(0) == "must be at least 1, got 0"
    assert Option("x", "run", low=0, low_open=True).problem(0.0) == "must be positive, got 0.0"
    assert Option("x", "run", low=0, high=1, high_open=True).problem(1) == "must be in [0, 1), got 1"
    assert Option("x", "run", low=1, high=256).problem(300) == "must be from 1 to 256, got 300"
    assert Option("x", "run", low=1).problem(None) is None and Option("x", "run", low=1).problem(3) is None
    assert Option("x", "run", choices=("a", "b")).problem("c") == "must be one of a, b, got 'c'"


def test_sections_are_typed_and_absent_where_they_do_not_apply():
    from routing_rl.training.setup.composition import compose

    config = RunConfig(agent="wpl", lr=0.01, hidden=16, map_k=5)
    optimisation, network = config.section("optimisation"), config.section("network")
    assert optimisation.lr == 0.01 and not hasattr(optimisation, "hidden") and network.hidden == 16
    assert type(network).__name__ == "NetworkOptions" and dataclasses.is_dataclass(network)
    with pytest.raises(dataclasses.FrozenInstanceError):
        network.hidden = 8
    assert sum(len(dataclasses.fields(config.section(s))) for s in SECTIONS) == len(declared(RunConfig))
    with pytest.raises(ValueError, match="unknown section 'model'"):
        config.section("model")
    router, model = compose(config), compose(RunConfig(agent="mmoe", env="multilabel-synthetic"))
    assert router.section("network").hidden == 16 and router.section("episodes").reward == "auto"
    assert model.section("network") is None and model.section("episodes") is None and model.section("data").map_k == 10


def test_the_agent_section_types_a_router_or_models_own_options():
    """``-o`` options as a typed section of the agent's class: its declared defaults, the given
    values over them, and a stray key refused by name (what the learners build the agent from)."""
    from routing_rl.training.setup.composition import compose
    from routing_rl.training.setup.options import section_values

    model = compose(RunConfig(agent="snr-trans", env="multilabel-synthetic", agent_options={"l0_lambda": 1e-4}))
    options = model.section("agent")
    assert type(options).__name__ == "SNRTransOptions" and dataclasses.is_dataclass(options)
    assert options.l0_lambda == 1e-4 and options.num_subnetworks == 4  # given, and the constructor's default
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.l0_lambda = 1.0
    assert "gate_generator" not in section_values(options)  # supplied by the learner, not an option
    router = compose(RunConfig(agent="wpl", agent_options={"variant": "public-code-corrected"})).section("agent")
    assert (type(router).__name__, router.variant, router.parameterization) == ("WPLRouterOptions", "public-code-corrected", "table")
    with pytest.raises(ValueError, match="wpl has no option 'bta'; valid options: "):
        compose(RunConfig(agent="wpl", agent_options={"bta": 1})).section("agent")

"""Populations: trials trained together give each member the numbers it has alone.

Every router and network family is trained alone and in a population, in float64 on a small
network, and compared epoch by epoch (losses, validation and test scores, routing policies) and
in its final weights, router state and optimizer state (relative 1e-9); a stopped population
resumes to the numbers of an uninterrupted one; a diverging member leaves, the others go on;
trials that cannot be stacked are named with the reason; `suite run --population` trains a
suite's seeds together and writes every trial's own files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.loop.population import Population, population_problem, stackable_groups
from routing_rl.training.setup.composition import compose

SYNTHETIC = {"num_tasks": 4, "num_groups": 2, "train_per_task": 100, "test_per_task": 40}
TOLERANCE = 1e-9
FLOAT32_TOLERANCE = 1e-4
"""Relative tolerance of a float32 member's training loss against its run alone, after two epochs."""
FLOAT32_SCORE_TOLERANCE = 1 / 30
"""A float32 member's test accuracy against alone: at most one of a task's 30 test rows may flip."""


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def in_default_dtype(data):
    """The data with float inputs in the default dtype (float64 under the fixture)."""
    splits = {name: getattr(data, name) for name in ("train", "val", "test")}
    moved = {name: dataclasses.replace(s, inputs=s.inputs.to(torch.get_default_dtype())) if s.inputs.is_floating_point() else s
             for name, s in splits.items()}  # fmt: skip
    return dataclasses.replace(data, **moved)


def trainer(root: Path, seed: int, env: str = "synthetic-groups", resume: bool = False, data_dir: Path | None = None, **options) -> Trainer:
    env_options = options.pop("env_options", SYNTHETIC if env == "synthetic-groups" else {"verify": False})
    config = RunConfig(env=env, epochs=options.pop("epochs", 2), batch_size=options.pop("batch_size", 7), seed=seed, threads=1,
                       logdir=str(root / f"s{seed}"), env_options=env_options, data_dir=str(data_dir) if data_dir else None,
                       **options)  # fmt: skip
    parts = compose(config)
    t = Trainer(parts, in_default_dtype(parts.load_data()))
    t.prepare_run_dir(resume=resume)
    return t


ZERO = 1e-6
"""Scale below which a tensor counts as zero: a conv bias before BatchNorm has a gradient of exactly 0
in exact arithmetic, so its Adam moments are rounding noise (1e-17), which two summation orders
make differently; they are compared at 1e-9 of this scale, not of themselves."""


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference over the larger of ``a``'s largest magnitude and :data:`ZERO`."""
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    if not a.numel():
        return 0.0
    return float((a - b).abs().max()) / max(float(a.abs().max()), ZERO)


def tensors(state, prefix=""):
    """Every tensor of a nested state (state dicts, optimizer states) with its path."""
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from tensors(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from tensors(value, f"{prefix}/{i}")


def assert_same_member(alone: Trainer, member: Trainer) -> None:
    assert member.results["status"] == alone.results["status"] == "complete"
    for a, b in zip(alone.results["epochs"], member.results["epochs"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)
        for split in ("val", "test"):
            assert b[split]["per_task"] == pytest.approx(a[split]["per_task"], rel=TOLERANCE)
        if "routing" in a:
            assert torch.tensor(b["routing"]["policy"]) == pytest.approx(torch.tensor(a["routing"]["policy"]), rel=TOLERANCE, abs=1e-12)
    worst = {}
    mine = dict(tensors(member.learner.state()))
    for path, tensor in tensors(alone.learner.state()):
        worst[path] = relative(tensor, mine[path])
    assert max(worst.values()) <= TOLERANCE, sorted(worst.items(), key=lambda kv: -kv[1])[:3]


def assert_members_match_alone(tmp_path: Path, choices: list[dict]) -> None:
    """Trial ``s`` with options ``choices[s]`` trained alone and in one population of them all: the same numbers."""
    alone = [trainer(tmp_path / "alone", s, **c) for s, c in enumerate(choices)]
    for t in alone:
        t.fit()
    members = [trainer(tmp_path / "population", s, **c) for s, c in enumerate(choices)]
    Population(members).fit()
    for a, b in zip(alone, members):
        assert_same_member(a, b)


ROUTERS = {
    "shared bottom (no routed layer)": {"agent": "shared-bottom", "routed": "none"},
    "no sharing": {"agent": "no-sharing", "routed": "all"},
    "fixed random": {"agent": "fixed-random"},
    "oracle groups": {"agent": "oracle-groups"},
    "wpl": {"agent": "wpl"},
    "wpl, warm-up, clipped, summed loss": {"agent": "wpl", "warmup_epochs": 1, "grad_clip": 0.5, "loss_reduction": "sum"},
    "wpl, public code's update": {"agent": "wpl", "agent_options": {"variant": "public-code"}},
    "reinforce, every layer routed": {"agent": "reinforce", "routed": "all", "blocks": 3},
    "q-learning": {"agent": "qlearning"},
    "hard-concrete (soft routing)": {"agent": "hard-concrete"},
    "wpl with the collaboration reward": {"agent": "wpl", "collab_reward": 0.3},
}


@pytest.mark.parametrize("options", list(ROUTERS.values()), ids=list(ROUTERS))
def test_a_member_trains_as_it_would_alone(tmp_path, float64, options):
    alone = [trainer(tmp_path / "alone", seed, **dict(options)) for seed in (0, 1)]
    for t in alone:
        t.fit()
    members = [trainer(tmp_path / "population", seed, **dict(options)) for seed in (0, 1)]
    # seeds 0 and 1 hold out different validation rows: 357 and 358 training rows, 51 and 52 batches of 7
    assert len({len(t.data.train) for t in members}) > 1
    Population(members).fit()
    for a, b in zip(alone, members):
        assert_same_member(a, b)


SECONDS = ("train_seconds", "data_seconds", "samples_per_second", "eval_seconds")
"""An epoch record's timings: the only entries a member's record may not share with its run alone."""

MODELS = {
    "shared-bottom mlp": {"agent": "shared-bottom-mlp"},
    "mmoe": {"agent": "mmoe", "agent_options": {"shared_hidden": 12, "num_experts": 3}},
    "ml-mmoe": {"agent": "ml-mmoe"},
    "snr-trans, gates per example": {"agent": "snr-trans", "agent_options": {"per_example_gates": True, "l0_lambda": 0.01}},
    "snr-aver, separate optimizers, clipped": {"agent": "snr-aver", "separate_optimizers": True, "grad_clip": 0.5},
}


@pytest.mark.parametrize("options", list(MODELS.values()), ids=list(MODELS))
def test_a_model_member_trains_as_it_would_alone(tmp_path, float64, options, monkeypatch):
    """Multi-task models run as one mapped model (StackedModels): each member's own batch, gate
    noise (from its own generator), loss, regularisation, clipping and Adam; in float64 its numbers
    are those alone to 1e-9, a member that sits out the last step included."""
    from routing_rl.training.loop.stacked_models import StackedModels

    stepped = []
    original = StackedModels.step
    monkeypatch.setattr(StackedModels, "step", lambda self, stepping: (stepped.append(len(stepping)), original(self, stepping))[1])
    alone = [trainer(tmp_path / "alone", seed, **dict(options)) for seed in (0, 1)]
    for t in alone:
        t.fit()
    members = [trainer(tmp_path / "population", seed, **dict(options)) for seed in (0, 1)]
    assert len({len(t.data.train) for t in members}) > 1  # one member sits out the last step
    Population(members).fit()
    assert stepped and set(stepped) == {1, 2}  # the stacked step ran, with both members and with one
    for a, b in zip(alone, members):
        assert_same_member(a, b)


@pytest.mark.parametrize("options", [MODELS["snr-trans, gates per example"], MODELS["mmoe"]], ids=["snr-trans", "mmoe"])
def test_model_members_run_one_by_one_train_bit_for_bit_as_alone(tmp_path, options):
    """``stack_weights=False``: each member runs its own model on its own batch and draws its own gate
    noise, the population backs the members' losses up in one pass and steps their optimizers in
    one multi-tensor call, which changes no bit (float32, the default dtype)."""
    alone = [trainer(tmp_path / "alone", seed, **dict(options)) for seed in (0, 1)]
    for t in alone:
        t.fit()
    members = [trainer(tmp_path / "population", seed, **dict(options)) for seed in (0, 1)]
    Population(members, stack_weights=False).fit()
    for a, b in zip(alone, members):
        assert b.results["epochs"] == [{**e, **{k: b_e[k] for k in SECONDS}} for e, b_e in zip(a.results["epochs"], b.results["epochs"])]
        for path, tensor in tensors(a.learner.state()):
            assert torch.equal(tensor, dict(tensors(b.learner.state()))[path]), path


def test_models_differing_in_their_l0_weight_share_a_population(tmp_path, float64):
    choices = [{"agent": "snr-trans", "agent_options": {"l0_lambda": 0.1}}, {"agent": "snr-trans", "agent_options": {"l0_lambda": 1e-4}, "lr": 3e-3}]
    assert_members_match_alone(tmp_path, choices)


def test_conv_members_keep_their_own_batchnorm_statistics(tmp_path, float64, fmnist_writer):
    fmnist_writer(tmp_path / "data", per_class=8, seed=1)
    options = {"agent": "wpl", "routed": "conv3,fc", "blocks": 3, "channels_last": False, "batch_size": 16}
    alone = [trainer(tmp_path / "alone", s, env="fmnist-mtl", data_dir=tmp_path / "data", **dict(options)) for s in (0, 1)]
    for t in alone:
        t.fit()
    members = [trainer(tmp_path / "population", s, env="fmnist-mtl", data_dir=tmp_path / "data", **dict(options)) for s in (0, 1)]
    Population(members).fit()
    for a, b in zip(alone, members):
        assert_same_member(a, b)
    bn = [name for name in alone[0].learner.network.state_dict() if name.endswith("running_mean")]
    assert bn and not torch.equal(members[0].learner.network.state_dict()[bn[0]], members[1].learner.network.state_dict()[bn[0]])


def test_members_may_differ_in_router_and_learning_rates(tmp_path, float64):
    """Rows whose options do not change a tensor's shape stack: WPL at one rate beside fixed random routes at another."""
    choices = [{"agent": "wpl", "router_lr": 0.05}, {"agent": "fixed-random", "lr": 3e-3}]
    assert_members_match_alone(tmp_path, choices)


def test_members_with_their_own_schedules_rewards_and_clipping_step_their_weights_together(tmp_path, float64):
    """Two routers at one rate (so that their Adam optimizers step in one call), each with its own
    schedule, reward, clipping and loss reduction, with and without separate optimizers."""
    choices = [{"agent": "wpl", "router_lr": 0.05, "lr_milestones": [1], "reward": "neg-loss", "grad_clip": 0.5},
               {"agent": "reinforce", "router_lr": 0.05, "grad_clip": 0.5, "grad_clip_mode": "public-code", "loss_reduction": "sum",
                "collab_reward": 0.3},
               {"agent": "wpl", "router_lr": 0.05, "separate_optimizers": True},
               {"agent": "reinforce", "router_lr": 0.05, "separate_optimizers": True, "lr": 3e-3}]  # fmt: skip
    alone = [trainer(tmp_path / "alone", s, **c) for s, c in enumerate(choices)]
    for t in alone:
        t.fit()
    for pair in (slice(0, 2), slice(2, 4)):
        members = [trainer(tmp_path / "population", s, **c) for s, c in list(enumerate(choices))[pair]]
        Population(members).fit()
        for a, b in zip(alone[pair], members):
            assert_same_member(a, b)


@pytest.mark.parametrize("agent", ["wpl", "snr-trans"])
def test_a_population_stopped_between_its_members_checkpoints_resumes_to_the_uninterrupted_numbers(tmp_path, float64, agent):
    whole = [trainer(tmp_path / "whole", s, agent=agent, epochs=3) for s in (0, 1)]
    Population(whole).fit()
    first = [trainer(tmp_path / "stopped", s, agent=agent, epochs=3) for s in (0, 1)]

    class Stop(Exception):
        pass

    def stop(record):
        if record["epoch"] == 2:
            raise Stop  # a kill between the members' checkpoints: the first has saved epoch 2, the second only epoch 1

    first[0].callbacks.on_epoch_end = stop
    with pytest.raises(Stop):
        Population(first).fit()
    again = [trainer(tmp_path / "stopped", s, agent=agent, epochs=3, resume=True) for s in (0, 1)]
    assert [t.start_epoch for t in again] == [3, 2]  # the second catches up epoch 2 alone, then both train epoch 3
    Population(again).fit()
    for a, b in zip(whole, again):
        assert_same_member(a, b)


def test_a_diverging_member_leaves_and_the_others_go_on(tmp_path, float64):
    alone = trainer(tmp_path / "alone", 0, agent="wpl")
    alone.fit()
    members = [trainer(tmp_path / "population", 0, agent="wpl"), trainer(tmp_path / "population", 1, agent="wpl", lr=1e4)]
    results = Population(members).fit()
    assert results[1] is None and members[1].results["status"] == "diverged"
    assert json.loads((tmp_path / "population" / "s1" / "results.json").read_text())["status"] == "diverged"
    assert_same_member(alone, members[0])


@pytest.mark.parametrize(("second", "reason"), [
    ({"agent": "mmoe"}, "multi-task models"),
    ({"agent": "wpl", "blocks": 3}, "networks differ in shape"),
    ({"agent": "wpl", "dropout": 0.2}, "dropout draws its masks from torch's global generator"),
    ({"agent": "wpl", "batch_size": 8}, "their --batch-size differ"),
    ({"agent": "hard-concrete"}, "some route soft"),
    ({"agent": "wpl", "blocks": 32, "env_options": {**SYNTHETIC, "num_tasks": 32}}, "networks differ"),
])  # fmt: skip
def test_trials_that_cannot_stack_are_named_with_the_reason(tmp_path, second, reason):
    pair = [trainer(tmp_path, 0, agent="wpl"), trainer(tmp_path, 1, **second)]
    assert reason in population_problem(pair)
    with pytest.raises(ValueError, match="cannot train as one population"):
        Population(pair)


def test_trials_are_grouped_with_those_they_stack_with(tmp_path):
    """Hard routers together, soft ones together, models together; each group in the order given."""
    agents = ["mmoe", "wpl", "hard-concrete", "reinforce", "hard-concrete", "fixed-random", "snr-trans"]
    trainers = [trainer(tmp_path, seed, agent=agent) for seed, agent in enumerate(agents)]
    groups = stackable_groups(trainers)
    assert [[t.config.agent for t in group] for group, _ in groups] == [
        ["mmoe", "snr-trans"], ["wpl", "reinforce", "fixed-random"], ["hard-concrete", "hard-concrete"]]
    assert [reason for _, reason in groups] == [None, None, None]
    lone = stackable_groups(trainers[:2])
    assert [len(group) for group, _ in lone] == [1, 1] and "populations of their own" in lone[0][1]
    assert stackable_groups(trainers[:1]) == [([trainers[0]], None)]


def test_banks_are_refused_until_they_stack(tmp_path):
    many = {**SYNTHETIC, "num_tasks": 32, "train_per_task": 10, "test_per_task": 4}
    pair = [trainer(tmp_path, s, agent="fixed-random", blocks=32, env_options=many) for s in (0, 1)]
    assert "banks" in population_problem(pair)


SUITE = """
[suite]
name = "pop"
seeds = [0, 1, 2]
baseline = "shared"
[defaults]
env = "synthetic-groups"
epochs = 2
batch_size = 32
env_options = { num_tasks = 4, train_per_task = 60, test_per_task = 30 }
[runs.shared]
agent = "shared-bottom"
routed = "none"
[runs.wpl]
agent = "wpl"
[runs.reinforce]
agent = "reinforce"
router_lr = 0.2
[runs.gates]
agent = "hard-concrete"
[runs.snr]
agent = "snr-trans"
"""


def test_a_suite_offers_runs_that_differ_in_member_options_to_one_process_seeds_side_by_side(tmp_path):
    from routing_rl.suites.populations import populations
    from routing_rl.suites.spec import load_suite_file

    path = tmp_path / "pop.toml"
    path.write_text(SUITE)
    todo = [(trial, tmp_path / trial.name) for trial in load_suite_file(path).trials(None)]

    def chunks(size):
        return [[trial.name.rsplit("-", 2)[0] for trial, _ in chunk] for chunk in populations(todo, size)]

    # in the order planned; hard routers (WPL, REINFORCE at another rate) together where their seeds
    # fit, the soft gates apart, a model's seeds together, a run's seeds split only when they must
    assert chunks(9) == [["shared"] * 3, ["wpl"] * 3 + ["reinforce"] * 3, ["gates"] * 3, ["snr"] * 3]
    assert chunks(4) == [["shared"] * 3, ["wpl"] * 3, ["reinforce"] * 3, ["gates"] * 3, ["snr"] * 3]
    assert chunks(2) == [["shared"] * 2, ["wpl"] * 2, ["reinforce"] * 2, ["gates"] * 2, ["snr"] * 2, ["shared"], ["wpl", "reinforce"], ["gates"], ["snr"]]
    assert [len(chunk) for chunk in populations(todo, 1)] == [1] * 15


def test_several_workers_start_the_longest_populations_first(tmp_path):
    """Members cost by what they train (MEMBER_COSTS): with populations of 3 the soft gates (every
    block runs) start first, then the model, then the hard learned routes, and the network without
    routed layers (planned first) last, after a WPL run of half the epochs."""
    from routing_rl.suites.populations import longest_first, populations
    from routing_rl.suites.spec import load_suite_file

    path = tmp_path / "pop.toml"
    path.write_text(SUITE.replace("[runs.snr]", "[runs.short]\nagent = \"wpl\"\nepochs = 1\n[runs.snr]"))
    todo = [(trial, tmp_path / trial.name) for trial in load_suite_file(path).trials(None)]
    order = [chunk[0][0].name.rsplit("-", 2)[0] for chunk in longest_first(populations(todo, 3))]
    assert order == ["gates", "snr", "wpl", "reinforce", "short", "shared"]


def test_suite_run_trains_trials_together_with_the_numbers_of_trials_alone(tmp_path):
    """WPL and REINFORCE (another rate) in one population, the soft hard-concrete gates in their own,
    the shared bottom (another shape) in its own, SNR-Trans' seeds in theirs; every trial's numbers as alone."""
    path = tmp_path / "pop.toml"
    path.write_text(SUITE)
    runner = CliRunner()
    alone = runner.invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "alone"), "--quiet", "--population", "1"])
    together = runner.invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "together"), "--quiet", "--population", "9"])
    assert alone.exit_code == 0 and together.exit_code == 0, together.output
    assert together.output.count("in a population of 6") == 6  # WPL and REINFORCE, 3 seeds each
    assert together.output.count("in a population of 3") == 9  # the shared bottom's, the gates' and SNR-Trans' 3 seeds
    assert "trained alone" not in together.output
    names = sorted(p.name for p in (tmp_path / "alone").iterdir() if p.is_dir())
    assert names == sorted(p.name for p in (tmp_path / "together").iterdir() if p.is_dir()) and len(names) == 15
    for name in names:
        a = json.loads((tmp_path / "alone" / name / "results.json").read_text())
        b = json.loads((tmp_path / "together" / name / "results.json").read_text())
        for ea, eb in zip(a["epochs"], b["epochs"], strict=True):  # float32: the batched matmul rounds differently
            assert eb["train_loss"] == pytest.approx(ea["train_loss"], rel=FLOAT32_TOLERANCE), name
            assert eb["test"]["per_task"] == pytest.approx(ea["test"]["per_task"], abs=FLOAT32_SCORE_TOLERANCE), name
        assert (tmp_path / "together" / name / "checkpoint.pt").exists()
        assert list((tmp_path / "together" / name / "tensorboard").iterdir())
    again = runner.invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "together"), "--population", "3"])
    assert again.exit_code == 0 and "15 complete" in again.output and "0 trials trained" in again.output


def test_population_auto_trains_convolutional_networks_on_a_cpu_alone_and_a_number_together(tmp_path, fmnist_writer):
    """``--population auto`` (the default) trains a convolutional network's seeds on a CPU one after
    the other, saying why (populations of them are measured no faster there); a number trains them together."""
    fmnist_writer(tmp_path / "data", per_class=4, seed=1)
    path = tmp_path / "conv.toml"
    path.write_text(f"""
[suite]
name = "conv"
seeds = [0, 1]
[defaults]
env = "fmnist-mtl"
data_dir = "{tmp_path / 'data'}"
env_options = {{ verify = false }}
epochs = 1
batch_size = 16
[runs.wpl]
agent = "wpl"
routed = "conv3,fc"
blocks = 2
""")
    runner = CliRunner()
    auto = runner.invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "auto"), "--quiet"])
    assert auto.exit_code == 0, auto.output
    assert "in a population of" not in auto.output and auto.output.count("trained alone, not in a population: convolutional networks on a CPU") == 1
    together = runner.invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "two"), "--quiet", "--population", "2"])
    assert together.exit_code == 0 and together.output.count("in a population of 2") == 2, together.output
    refused = runner.invoke(main, ["suite", "run", str(path), "--population", "some"])
    assert refused.exit_code == 2 and "--population" in refused.output and "neither auto nor a whole number from 1 to 64" in refused.output


KILL_SUITE = SUITE.replace("seeds = [0, 1, 2]", "seeds = [0, 1]").replace("epochs = 2", "epochs = 8").replace(
    "train_per_task = 60", "train_per_task = 1500").replace('[runs.shared]\nagent = "shared-bottom"\nrouted = "none"\n', "").replace(
    '[runs.snr]\nagent = "snr-trans"\n', "").replace('baseline = "shared"\n', "").split("[runs.reinforce]")[0]


def test_a_population_killed_with_sigkill_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from routing_rl.suites.runner import epochs_done

    path = tmp_path / "kill.toml"
    path.write_text(KILL_SUITE)
    whole = CliRunner().invoke(main, ["suite", "run", str(path), "--out", str(tmp_path / "whole"), "--quiet", "--population", "2"])
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "routing_rl", "suite", "run", str(path), "--out", str(out), "--quiet", "--population", "2"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        # two epochs recorded: the first epoch's checkpoint is surely on disk (a record can be newer than its checkpoint)
        while time.monotonic() < deadline and not any((epochs_done(d) or 0) >= 2 for d in out.glob("wpl-s*")):
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    trials = sorted(out.glob("wpl-s*"))
    done = [epochs_done(d) or 0 for d in trials]
    assert len(trials) == 2 and max(done) >= 2 and min(done) < 8, done  # killed part-way (members may be an epoch apart)
    resumed = CliRunner().invoke(main, ["suite", "run", str(path), "--out", str(out), "--quiet", "--population", "2"])
    assert resumed.exit_code == 0 and resumed.output.count("in a population of 2") == 2, resumed.output
    resumed_members = []
    for trial in trials:
        a = json.loads((tmp_path / "whole" / trial.name / "results.json").read_text())
        b = json.loads((trial / "results.json").read_text())
        assert [e["test"] for e in a["epochs"]] == [e["test"] for e in b["epochs"]]  # same machine, same kernels: bit for bit
        assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
        resumed_members.append(bool(b["provenance"].get("resumes")))
    assert any(resumed_members)  # picked up from a checkpoint, not trained afresh


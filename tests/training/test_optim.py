"""The optimizers step a bank's rows exactly as torch steps the per-block parameters: a row with samples
takes its own Adam step (own step count), a row without samples is left alone, moments included."""

from __future__ import annotations

import copy

import pytest
import torch

from routing_rl.network import dispatch
from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.linear_bank import LinearBank
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.loop.learner import make_optimizers


def layers(n: int = 40) -> tuple[torch.nn.ModuleList, LinearBank]:
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU()) for _ in range(n)])
    bank = LinearBank.from_blocks(list(copy.deepcopy(blocks)))
    assert bank is not None
    return blocks, bank


def bank_rows_of(blocks: torch.nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([b[0].weight for b in blocks]), torch.stack([b[0].bias for b in blocks])


def train_both(config: RunConfig, steps: int, blocks: torch.nn.ModuleList, bank: LinearBank, seed: int = 1):
    """Both forms through ``make_optimizers`` on the same batches; batches alternate between all 40
    blocks (batched matmul) and only blocks 0-4 (the others get no samples for a while)."""
    per_block = make_optimizers(config, list(blocks.parameters()), [], config.lr)["all"]
    banked = make_optimizers(config, list(bank.parameters()), [], config.lr)["all"]
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        n = 120 if step % 2 else 30
        picks = torch.randint(0, 40 if step % 2 else 5, (n,), generator=g)
        x, target = torch.randn(n, 6, generator=g), torch.randn(n, 4, generator=g)
        for layer, optimizer in ((blocks, per_block), (bank, banked)):
            optimizer.zero_grad(set_to_none=True)
            (dispatch(layer, x, RoutingDecision(picks)) - target).square().mean().backward()
            optimizer.step()
    return per_block, banked


@pytest.mark.parametrize(("optimizer", "fused"), [("adam", False), ("adam", True), ("sgd", False), ("sgd", True)])
def test_bank_rows_take_exactly_the_per_block_optimizers_steps(optimizer, fused):
    blocks, bank = layers()
    start = bank.weight_and_bias.detach().clone()
    config = RunConfig(optimizer=optimizer, fused_optimizer=fused, lr=0.05)
    train_both(config, 12, blocks, bank)
    weight, bias = bank_rows_of(blocks)
    assert torch.equal(bank.weight, weight) and torch.equal(bank.bias, bias)
    assert (bank.weight_and_bias != start).any(dim=1).sum() > 30  # the test moved most blocks


def test_rows_without_samples_keep_their_weights_and_moments():
    blocks, bank = layers()
    config = RunConfig(optimizer="adam", lr=0.05)
    _, banked = train_both(config, 2, blocks, bank)  # step 0: blocks 0-4; step 1: all 40
    x = torch.randn(30, 6)
    state = banked.state[bank.weight_and_bias]
    before = {k: v.clone() for k, v in state.items()}
    weight = bank.weight_and_bias.detach().clone()
    banked.zero_grad(set_to_none=True)
    dispatch(bank, x, RoutingDecision(torch.arange(30) % 3)).sum().backward()  # blocks 0, 1, 2 only
    banked.step()
    moved = (bank.weight_and_bias != weight).any(dim=1)
    assert moved[:3].all() and not moved[3:].any()
    assert torch.equal(state["exp_avg"][3:], before["exp_avg"][3:]) and torch.equal(state["exp_avg_sq"][3:], before["exp_avg_sq"][3:])
    assert state["row_step"][:3].tolist() == [3.0, 3.0, 3.0] and int(state["row_step"][39]) == 1  # own step counts


@pytest.mark.parametrize("fused", [False, True])
def test_the_optimizer_state_round_trips_through_a_weights_only_checkpoint(fused, tmp_path):
    blocks, bank = layers()
    reference_blocks, reference = copy.deepcopy(blocks), copy.deepcopy(bank)
    config = RunConfig(optimizer="adam", fused_optimizer=fused, lr=0.05)
    _, banked = train_both(config, 6, blocks, bank)
    torch.save({"bank": bank.state_dict(), "optimizer": banked.state_dict()}, tmp_path / "ckpt.pt")
    _, uninterrupted = train_both(config, 6, reference_blocks, reference)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed_bank = LinearBank.from_blocks(list(layers()[0]))
    assert resumed_bank is not None
    resumed_bank.load_state_dict(saved["bank"])
    resumed = make_optimizers(config, list(resumed_bank.parameters()), [], config.lr)["all"]
    resumed.load_state_dict(saved["optimizer"])
    for optimizer, layer in ((uninterrupted, reference), (resumed, resumed_bank)):
        g = torch.Generator().manual_seed(9)
        for _ in range(3):
            picks, x = torch.randint(0, 40, (50,), generator=g), torch.randn(50, 6, generator=g)
            optimizer.zero_grad(set_to_none=True)
            dispatch(layer, x, RoutingDecision(picks)).sum().backward()
            optimizer.step()
    assert torch.equal(resumed_bank.weight, reference.weight) and torch.equal(resumed_bank.bias, reference.bias)


def test_dense_parameters_still_take_torchs_own_step():
    torch.manual_seed(0)
    dense = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(2)]
    copies = [torch.nn.Parameter(d.detach().clone()) for d in dense]
    ours = make_optimizers(RunConfig(optimizer="adam"), dense, [], 1e-3)["all"]
    torchs = torch.optim.Adam(copies, lr=RunConfig().lr, foreach=True)
    for _ in range(3):
        for params, optimizer in ((dense, ours), (copies, torchs)):
            for p in params:
                p.grad = torch.ones_like(p) * p.detach().sum()
            optimizer.step()
    assert all(torch.equal(d, c) for d, c in zip(dense, copies))


@pytest.mark.parametrize(("cls", "option"), [("RowSparseAdam", {"weight_decay": 0.1}), ("RowSparseSGD", {"momentum": 0.9})])
def test_options_rows_cannot_take_are_refused_in_one_line(cls, option):
    from routing_rl.training.loop import optim

    _, bank = layers()
    optimizer = getattr(optim, cls)(bank.parameters(), lr=0.1, **option)
    dispatch(bank, torch.randn(4, 6), RoutingDecision(torch.tensor([0, 1, 2, 3]))).sum().backward()
    with pytest.raises(ValueError, match=f"^row-sparse parameters .* not {next(iter(option))}$"):
        optimizer.step()


def test_a_run_of_many_tasks_trains_its_banks_reproducibly_and_resumes_exactly(tmp_path):
    import json

    from click.testing import CliRunner

    from routing_rl.cli import main

    def run(name: str, epochs: int, *extra: str) -> dict:
        args = ["run", "--agent", "wpl", "--env", "synthetic-groups", "-e", "num_tasks=40", "-e", "num_groups=4",
                "-e", "train_per_task=40", "-e", "test_per_task=10", "--routed", "fc", "--blocks", "40",
                "--epochs", str(epochs), "--threads", "1", "--quiet", "--logdir", str(tmp_path / name), *extra]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / name / "results.json").read_text())

    full = run("full", 2)
    assert full["epochs"][-1]["train_loss"] < full["epochs"][0]["train_loss"]
    assert full["epochs"][-1]["parameters"]["serving"] < full["epochs"][-1]["parameters"]["train"]
    run("part", 1)
    resumed = run("part", 2, "--resume")
    for a, b in zip(full["epochs"], resumed["epochs"], strict=True):
        assert (a["train_loss"], a["test"]["per_task"], a["routing"]["policy"]) == (b["train_loss"], b["test"]["per_task"], b["routing"]["policy"])


@pytest.mark.parametrize("fused", [False, True])
def test_a_bank_run_twice_before_a_step_sums_its_gradients_like_the_blocks(fused):
    blocks, bank = layers()
    config = RunConfig(optimizer="adam", fused_optimizer=fused, lr=0.05)
    per_block = make_optimizers(config, list(blocks.parameters()), [], config.lr)["all"]
    banked = make_optimizers(config, list(bank.parameters()), [], config.lr)["all"]
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(60, 6, generator=g), torch.randint(0, 40, (60,), generator=g)) for _ in range(2)]
    for layer, optimizer in ((blocks, per_block), (bank, banked)):
        for x, picks in batches:  # two forward/backward passes, one step: rows listed twice, out of order
            dispatch(layer, x, RoutingDecision(picks)).sum().backward()
        optimizer.step()
    weight, bias = bank_rows_of(blocks)
    assert torch.equal(bank.weight, weight) and torch.equal(bank.bias, bias)

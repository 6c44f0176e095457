"""A bank of linear blocks computes exactly what its per-block modules compute, forward and gradients,
with a gradient that lists exactly the blocks that had samples; layers of many blocks use it, the
papers' networks do not."""

from __future__ import annotations

import copy

import pytest
import torch

from routing_rl.network import build_network, dispatch
from routing_rl.core.contracts import RoutingDecision
from routing_rl.network.linear_bank import BANK_MIN_BLOCKS, LinearBank


def fc_blocks(n: int, relu: bool = True, seed: int = 0) -> list[torch.nn.Module]:
    torch.manual_seed(seed)
    if relu:
        return [torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU()) for _ in range(n)]
    return [torch.nn.Linear(8, 5) for _ in range(n)]


def dense_rows(grad: torch.Tensor) -> torch.Tensor:
    return grad.to_dense() if grad.is_sparse else grad


def per_block_grads(blocks: torch.nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-block gradients as a bank's rows (zeros where a block got none)."""
    linears = [b[0] if isinstance(b, torch.nn.Sequential) else b for b in blocks]
    weight = torch.stack([lin.weight.grad if lin.weight.grad is not None else torch.zeros_like(lin.weight) for lin in linears])
    bias = torch.stack([lin.bias.grad if lin.bias.grad is not None else torch.zeros_like(lin.bias) for lin in linears])
    return weight.reshape(len(linears), -1), bias


CASES = {
    "batched matmul (40 blocks in use)": (lambda g: torch.arange(160) % 40, 160),
    "one call per block (5 blocks in use)": (lambda g: torch.randint(0, 5, (50,), generator=g), 50),
    "unbalanced groups": (lambda g: torch.cat([torch.zeros(100, dtype=torch.long), torch.arange(1, 40)]), 139),
    "every sample on one block": (lambda g: torch.full((20,), 7), 20),
}


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_bank_equals_its_blocks_forward_and_gradients_bit_for_bit(case, mode, relu):
    blocks = torch.nn.ModuleList(fc_blocks(40, relu))
    bank = LinearBank.from_blocks(list(copy.deepcopy(blocks)))
    assert bank is not None and len(bank) == 40 and bank.relu is relu
    g = torch.Generator().manual_seed(3)
    make, n = CASES[case]
    picks = make(g)
    x = torch.randn(n, 8, generator=g)
    if mode == "hard":
        decision = RoutingDecision(picks)
    else:
        other = (picks + 1) % 40
        weights = torch.rand(n, 2, generator=g)
        weights[::3, 1] = 0.0  # zero weights are skipped: those pairs reach no block
        decision = RoutingDecision(torch.stack([picks, other], 1), weights)
    target = torch.randn(n, 5, generator=g)
    outputs = []
    for layer in (blocks, bank):
        out = dispatch(layer, x, decision)
        (out * target).sum().backward()
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1])
    weight_grad, bias_grad = per_block_grads(blocks)
    assert bank.weight_and_bias.grad.is_sparse  # one parameter per layer: a row per block, weight then bias
    assert torch.equal(dense_rows(bank.weight_and_bias.grad), torch.cat([weight_grad, bias_grad], dim=1))


def test_the_gradient_lists_exactly_the_blocks_with_samples_even_where_it_is_zero():
    """A block whose samples give it a zero gradient still took part in the step (the per-block form
    gives it a zero ``grad``, not None), so the optimizer must step it: the bank lists it."""
    bank = LinearBank.from_blocks(fc_blocks(40, relu=False))
    assert bank is not None
    picks = torch.tensor([3, 3, 17, 30, 30, 30])
    x = torch.randn(6, 8)
    x[2] = 0.0  # block 17's only sample: a zero input, so a zero weight gradient
    dispatch(bank, x, RoutingDecision(picks)).sum().backward()
    listed = bank.weight_and_bias.grad.coalesce().indices()[0].tolist()
    assert listed == [3, 17, 30]
    assert dense_rows(bank.weight_and_bias.grad)[17, :40].abs().sum() == 0  # its weight's gradient (its bias's is not)


def test_many_blocks_are_banked_and_the_papers_networks_keep_their_modules():
    many = build_network((3, 8, 8), num_tasks=BANK_MIN_BLOCKS, num_classes=5, routed="fc", blocks=BANK_MIN_BLOCKS, seed=0)
    assert all(isinstance(many.layers[i].layer.blocks, LinearBank) for i in many.routed_positions)
    assert isinstance(many.heads.blocks, LinearBank) and not many.heads.blocks.relu
    convs = build_network((3, 8, 8), num_tasks=2, num_classes=5, routed="conv1", blocks=40, seed=0)
    assert isinstance(convs.layers[0].layer.blocks, torch.nn.ModuleList)  # conv blocks are never banked
    papers = build_network((3, 32, 32), num_tasks=20, num_classes=5, routed="all", blocks=20, seed=0)
    for layer in [*papers.layers, papers.heads]:
        blocks = layer.layer.blocks if hasattr(layer, "layer") else layer.blocks
        assert isinstance(blocks, torch.nn.ModuleList)
    labels = build_network((16,), num_tasks=40, num_classes=[3, 5] * 20, routed="fc", blocks=4, seed=0)
    assert isinstance(labels.heads.blocks, torch.nn.ModuleList)  # padded heads of different sizes stay modules


def test_a_bank_starts_from_its_blocks_weights_and_loads_the_per_block_state_dict():
    blocks = fc_blocks(40)
    bank = LinearBank.from_blocks(blocks)
    assert bank is not None
    for m, block in enumerate(blocks):
        assert torch.equal(bank[m].weight, block[0].weight) and torch.equal(bank[m].bias, block[0].bias)
    other = LinearBank.from_blocks(fc_blocks(40, seed=1))
    assert other is not None and not torch.equal(other.weight, bank.weight)
    other.load_state_dict(torch.nn.ModuleList(blocks).state_dict())  # the per-block form's keys: "0.0.weight", ...
    assert torch.equal(other.weight, bank.weight) and torch.equal(other.bias, bank.bias)
    heads = fc_blocks(40, relu=False)
    head_bank = LinearBank.from_blocks(fc_blocks(40, relu=False, seed=2))
    assert head_bank is not None
    head_bank.load_state_dict(torch.nn.ModuleList(heads).state_dict())  # "0.weight", ...
    assert torch.equal(head_bank.weight, torch.stack([h.weight for h in heads]))
    with pytest.raises(RuntimeError, match="Missing key"):
        head_bank.load_state_dict(torch.nn.ModuleList(heads[:39]).state_dict())


@pytest.mark.parametrize(
    "blocks",
    [
        [torch.nn.Linear(8, 5, bias=False) for _ in range(3)],
        [torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.Tanh()) for _ in range(3)],
        [torch.nn.Linear(8, 5), torch.nn.Linear(8, 4), torch.nn.Linear(8, 5)],
        [torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())],
    ],
    ids=["no bias", "other activation", "different shapes", "conv"],
)
def test_blocks_a_bank_cannot_hold_exactly_are_left_as_modules(blocks):
    assert LinearBank.from_blocks(blocks) is None


@pytest.mark.parametrize(("tasks", "blocks", "bank_min_blocks"), [(40, 40, BANK_MIN_BLOCKS), (10, 6, 2)])
@pytest.mark.parametrize("fused", [False, True])
def test_a_banked_network_trains_bit_for_bit_as_its_per_block_form(tasks, blocks, bank_min_blocks, fused):
    from routing_rl.training.setup.config import RunConfig
    from routing_rl.training.loop.learner import make_optimizers

    config = RunConfig(optimizer="adam", fused_optimizer=fused, lr=0.01)
    nets, optimizers = [], []
    for minimum in (bank_min_blocks, 10**9):  # banked, then every block a module of its own
        net = build_network((12,), num_tasks=tasks, num_classes=3, routed="fc", blocks=blocks, seed=0, bank_min_blocks=minimum)
        nets.append(net)
        optimizers.append(make_optimizers(config, list(net.parameters()), [], config.lr)["all"])
    assert isinstance(nets[0].layers[0].layer.blocks, LinearBank) and isinstance(nets[1].layers[0].layer.blocks, torch.nn.ModuleList)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x, task = torch.randn(96, 12, generator=g), torch.randint(0, tasks, (96,), generator=g)
        routes = [RoutingDecision(torch.randint(0, blocks, (96,), generator=g)) for _ in range(nets[0].num_routed)]
        target = torch.randint(0, 3, (96,), generator=g)
        logits = []
        for net, optimizer in zip(nets, optimizers):
            optimizer.zero_grad(set_to_none=True)
            out = net(x, task, routes)
            torch.nn.functional.cross_entropy(out, target).backward()
            optimizer.step()
            logits.append(out)
        assert torch.equal(logits[0], logits[1])
    banked = build_network((12,), num_tasks=tasks, num_classes=3, routed="fc", blocks=blocks, seed=1, bank_min_blocks=bank_min_blocks)
    banked.load_state_dict(nets[1].state_dict())  # the trained per-block weights, loaded into banks ...
    for a, b in zip(banked.state_dict().values(), nets[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)  # ... are the banked network's trained weights

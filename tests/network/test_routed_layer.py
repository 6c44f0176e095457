"""Routed-layer dispatch equals a reference per-sample computation, in both routing modes."""

from __future__ import annotations

import pytest
import torch

from routing_rl.network import RoutingDecision, build_network, dispatch


def per_sample_reference(net, x, tasks, decisions):
    outs = []
    for i in range(x.shape[0]):
        sample_decisions = [RoutingDecision(d.blocks[i : i + 1]) for d in decisions]
        outs.append(net(x[i : i + 1], tasks[i : i + 1], sample_decisions))
    return torch.cat(outs)


@pytest.mark.parametrize(
    ("shape", "routed"),
    [((1, 28, 28), "conv1,2,3"), ((1, 28, 28), "fc"), ((3, 32, 32), "conv3,fc2"), ((20,), "all")],
)
def test_hard_dispatch_matches_per_sample_loop(shape, routed):
    torch.manual_seed(0)
    net = build_network(shape, num_tasks=5, num_classes=3, routed=routed, blocks=4, seed=1).eval()
    x = torch.randn(33, *shape)
    tasks = torch.randint(5, (33,))
    decisions = [RoutingDecision(torch.randint(4, (33,))) for _ in range(net.num_routed)]
    batched = net(x, tasks, decisions)
    assert batched.shape == (33, 3)
    torch.testing.assert_close(batched, per_sample_reference(net, x, tasks, decisions), rtol=1e-5, atol=1e-5)


def test_each_block_runs_once_per_batch():
    net = build_network((8,), num_tasks=3, num_classes=2, routed="fc1", blocks=3, seed=0)
    calls = {m: 0 for m in range(3)}
    for m, block in enumerate(net.layers[0].layer.blocks):
        block.register_forward_hook(lambda *_, m=m: calls.__setitem__(m, calls[m] + 1))
    blocks = torch.tensor([0, 2, 2, 0, 2, 0, 0])
    net(torch.randn(7, 8), torch.zeros(7, dtype=torch.long), [RoutingDecision(blocks)])
    assert calls == {0: 1, 1: 0, 2: 1}


def test_soft_dispatch_is_weighted_sum_and_skips_zero_weights():
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([torch.nn.Linear(4, 3) for _ in range(3)])
    x = torch.randn(6, 4)
    weights = torch.rand(6, 3)
    weights[:, 1] = 0.0
    weights[2] = 0.0
    index = torch.arange(3).expand(6, 3)
    out = dispatch(blocks, x, RoutingDecision(index, weights))
    expected = sum(weights[:, m : m + 1] * blocks[m](x) for m in range(3))
    torch.testing.assert_close(out, expected)
    calls = []
    blocks[1].register_forward_hook(lambda *_: calls.append(1))
    dispatch(blocks, x, RoutingDecision(index, weights))
    assert calls == []


def test_soft_dispatch_passes_gradients_to_weights():
    blocks = torch.nn.ModuleList([torch.nn.Linear(4, 2) for _ in range(2)])
    weights = torch.full((5, 2), 0.5, requires_grad=True)
    out = dispatch(blocks, torch.randn(5, 4), RoutingDecision(torch.arange(2).expand(5, 2), weights))
    out.sum().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0


def test_gradients_reach_only_the_chosen_blocks():
    net = build_network((8,), num_tasks=2, num_classes=2, routed="fc1", blocks=3, seed=0)
    decision = RoutingDecision(torch.tensor([0, 0, 2, 2]))
    net(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]), [decision]).sum().backward()
    grads = [b[0].weight.grad for b in net.layers[0].layer.blocks]
    assert grads[0] is not None and grads[2] is not None and grads[1] is None


def test_wrong_decision_shape_is_an_error():
    net = build_network((8,), num_tasks=2, num_classes=2, routed="fc1", blocks=3, seed=0)
    with pytest.raises(ValueError, match="one block per sample"):
        net(torch.randn(4, 8), torch.zeros(4, dtype=torch.long), [RoutingDecision(torch.zeros(3, dtype=torch.long))])

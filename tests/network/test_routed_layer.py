"""Routed-layer dispatch equals a reference per-sample computation, in both routing modes."""

from __future__ import annotations

import pytest
import torch

from routing_rl.network import build_network, dispatch
from routing_rl.core.contracts import RoutingDecision


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


def per_block_reference(blocks, x, decision):
    """What a routed layer means in training mode, written without the dispatcher: block m runs once
    on exactly the samples routed to it (its BatchNorm sees their statistics), and each sample's
    output is its block's row (soft: the weighted sum over its nonzero-weight blocks)."""
    if decision.is_hard:
        pairs = [(i, int(decision.blocks[i]), 1.0) for i in range(x.shape[0])]
    else:
        pairs = [(i, int(b), w) for i in range(x.shape[0]) for b, w in zip(decision.blocks[i], decision.weights[i]) if w != 0]
    rows = {}
    for m in range(len(blocks)):
        members = [(i, w) for i, b, w in pairs if b == m]
        if members:
            out = blocks[m](x[torch.tensor([i for i, _ in members])])
            for k, (i, w) in enumerate(members):
                rows[i] = rows.get(i, 0) + w * out[k]
    zero = torch.zeros_like(next(iter(rows.values())))  # a sample with every weight zero gets zeros
    return torch.stack([rows.get(i, zero) for i in range(x.shape[0])])


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_train_mode_dispatch_equals_the_per_block_reference_with_batchnorm_and_gradients(mode):
    """Forward and gradients (inputs, weights, gate weights) of conv blocks with BatchNorm in training
    mode: the dispatcher computes exactly the per-block definition, and each block runs at most once
    per mini-batch whatever the batch size."""
    torch.manual_seed(0)
    net = build_network((1, 12, 12), num_tasks=3, num_classes=2, routed="conv1", blocks=4, seed=2).train()
    blocks = net.layers[0].layer.blocks
    x = torch.randn(24, 1, 12, 12)
    weights, picks = torch.rand(24, 2).requires_grad_(), torch.randint(4, (24, 2))

    def make_decision() -> RoutingDecision:
        if mode == "hard":
            return RoutingDecision(torch.tensor([0, 1, 1, 3] * 6))
        return RoutingDecision(picks, weights=torch.where(torch.arange(24)[:, None] % 5 == 0, 0.0, weights))

    outputs = []
    for fn in (lambda: dispatch(blocks, xi, make_decision()), lambda: per_block_reference(blocks, xi, make_decision())):
        xi = x.clone().requires_grad_()
        net.zero_grad()
        if mode == "soft":
            weights.grad = None
        out = fn()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [xi.grad.clone()] + [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in blocks.parameters()]
        if mode == "soft":
            grads.append(weights.grad.clone())
        outputs.append((out.detach(), grads))
    (out_a, grads_a), (out_b, grads_b) = outputs
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_block_invocations_do_not_grow_with_the_batch(mode):
    net = build_network((16,), num_tasks=4, num_classes=2, routed="fc1", blocks=5, seed=0)
    blocks = net.layers[0].layer.blocks
    calls = [0]
    for block in blocks:
        block.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    for batch in (8, 64, 512):
        calls[0] = 0
        if mode == "hard":
            decision = RoutingDecision(torch.arange(batch) % 5)
        else:
            decision = RoutingDecision(torch.stack([torch.arange(batch) % 5, (torch.arange(batch) + 1) % 5], 1), weights=torch.full((batch, 2), 0.5))
        dispatch(blocks, torch.randn(batch, 16), decision)
        assert calls[0] == 5  # one call per block in use, for 8 samples as for 512


def count_calls(monkeypatch, name: str) -> list[int]:
    """Count calls of ``torch.<name>`` from here on."""
    calls = [0]
    original = getattr(torch, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, name, counted)
    return calls


@pytest.mark.parametrize("mode", ["hard", "soft"])
@pytest.mark.parametrize("with_relu", [True, False])
def test_many_linear_blocks_run_as_one_batched_matmul_equal_to_the_per_block_reference(monkeypatch, mode, with_relu):
    """From STACKED_MIN_BLOCKS blocks in use, linear blocks (FC blocks, heads) run as one padded batched
    matmul; forward and gradients equal the per-block definition and unused blocks get no gradient."""
    torch.manual_seed(0)
    make = (lambda: torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(inplace=True))) if with_relu else (lambda: torch.nn.Linear(6, 5))
    blocks = torch.nn.ModuleList([make() for _ in range(40)])
    picks = torch.tensor([m for m in range(36) for _ in range(1 + m % 3)])  # blocks 0-35 in use, 1-3 samples each
    n = picks.shape[0]
    if mode == "hard":
        decision = RoutingDecision(picks)
    else:
        gates = torch.rand(n, 2).requires_grad_()
        decision = RoutingDecision(torch.stack([picks, (picks + 1) % 36], 1), weights=torch.where(torch.arange(n)[:, None] % 4 == 0, 0.0, gates))
    calls, hooks = count_calls(monkeypatch, "baddbmm"), []
    results = []
    for fn in (lambda xi: dispatch(blocks, xi, decision), lambda xi: per_block_reference(blocks, xi, decision)):
        xi = torch.randn(n, 6, generator=torch.Generator().manual_seed(1)).requires_grad_()
        blocks.zero_grad(set_to_none=True)
        out = fn(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward(retain_graph=True)
        results.append((out.detach(), [xi.grad] + [p.grad for p in blocks.parameters()]))
        if len(results) == 1:
            assert calls[0] == 1  # the dispatcher ran one batched matmul
            for block in blocks:  # ... and no block: a hook now (the reference calls every block in use)
                block.register_forward_hook(lambda *_: hooks.append(1))
    assert len(hooks) == 36
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_a, grads_b):
        assert (a is None) == (b is None)  # blocks 36-39 have no samples: no gradient in either form
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert sum(g is None for g in grads_a) == 4 * 2


def test_batched_matmul_invocations_do_not_grow_with_the_batch(monkeypatch):
    blocks = torch.nn.ModuleList([torch.nn.Linear(16, 4) for _ in range(40)])
    calls, hooks = count_calls(monkeypatch, "baddbmm"), []
    for batch in (64, 128, 1024):
        calls[0] = 0
        dispatch(blocks, torch.randn(batch, 16), RoutingDecision(torch.arange(batch) % 40))
        assert calls[0] == 1
    for block in blocks:  # a hooked block is run as a module, so the batched form must not have been used above
        block.register_forward_hook(lambda *_: hooks.append(1))
    dispatch(blocks, torch.randn(64, 16), RoutingDecision(torch.arange(64) % 40))
    assert calls[0] == 1 and len(hooks) == 40


class ShiftedSequential(torch.nn.Sequential):
    def forward(self, x):
        return super().forward(x) + 1.0


@pytest.mark.parametrize(
    "case", ["few blocks in use", "unbalanced groups", "conv blocks", "no bias", "hooked block", "sequential subclass", "other activation"]
)
def test_blocks_the_batched_matmul_would_not_compute_exactly_keep_one_call_per_block(monkeypatch, case):
    calls = count_calls(monkeypatch, "baddbmm")
    linear = [torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.ReLU()) for _ in range(40)]
    x, picks = torch.randn(80, 8), torch.arange(80) % 40
    if case == "few blocks in use":
        picks = torch.arange(80) % 20
    elif case == "unbalanced groups":  # 40 in use, one holds 100 of 139 samples: 40 x 100 padded rows
        x, picks = torch.randn(139, 8), torch.cat([torch.zeros(100, dtype=torch.long), torch.arange(1, 40)])
    elif case == "conv blocks":
        net = build_network((1, 8, 8), num_tasks=2, num_classes=2, routed="conv1", blocks=40, seed=0)
        linear, x = list(net.layers[0].layer.blocks), torch.randn(80, 1, 8, 8)
    elif case == "no bias":
        linear = [torch.nn.Linear(8, 3, bias=False) for _ in range(40)]
    elif case == "hooked block":
        linear[7][0].register_forward_pre_hook(lambda *_: None)
    elif case == "sequential subclass":
        linear[7] = ShiftedSequential(torch.nn.Linear(8, 3), torch.nn.ReLU())
    else:
        linear[7] = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Tanh())
    blocks = torch.nn.ModuleList(linear)
    out = dispatch(blocks, x, RoutingDecision(picks))
    assert calls[0] == 0  # no batched matmul: every block in use was called (hooks would force that: none here but case 5's)
    torch.testing.assert_close(out, per_block_reference(blocks, x, RoutingDecision(picks)))


def test_a_network_of_many_tasks_uses_the_batched_matmul_and_the_papers_twenty_do_not(monkeypatch):
    calls = count_calls(monkeypatch, "baddbmm")
    for tasks, expected in ((20, 0), (100, 3)):  # 100 tasks: fc1, fc2 and the heads
        calls[0] = 0
        net = build_network((3, 8, 8), num_tasks=tasks, num_classes=5, routed="fc", seed=0)
        t = torch.arange(128) % tasks
        net(torch.randn(128, 3, 8, 8), t, [RoutingDecision(t), RoutingDecision(t)])
        assert calls[0] == expected


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_channels_last_inputs_reach_every_block_in_channels_last(mode):
    """``--channels-last`` networks: the dispatcher's gather must not hand conv blocks the slow default
    layout (``index_select`` returns it), and the layer's output keeps channels_last for the next layer."""
    net = build_network((8, 10, 10), num_tasks=3, num_classes=2, routed="conv1", blocks=4, seed=0)
    net = net.to(memory_format=torch.channels_last)
    blocks = net.layers[0].layer.blocks
    layouts = []
    for block in blocks:
        block.register_forward_pre_hook(lambda _, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(12, 8, 10, 10).contiguous(memory_format=torch.channels_last)
    if mode == "hard":
        decision = RoutingDecision(torch.arange(12) % 4)
    else:
        decision = RoutingDecision(torch.stack([torch.arange(12) % 4, (torch.arange(12) + 1) % 4], 1), weights=torch.full((12, 2), 0.5))
    out = dispatch(blocks, x, decision)
    assert layouts == [True] * 4
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    torch.testing.assert_close(out, dispatch(blocks, x.contiguous(), decision), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_channels_last_gradients_reach_every_block_in_channels_last(mode):
    """The backward of the dispatcher's gathers and scatters keeps channels_last too, so no conv block
    converts its gradient (a copy per block and layer) before its BatchNorm and convolution backward."""
    net = build_network((8, 10, 10), num_tasks=3, num_classes=2, routed="conv1", blocks=4, seed=0)
    net = net.to(memory_format=torch.channels_last)
    blocks = net.layers[0].layer.blocks
    layouts = []

    def watch(_module, _inputs, output):
        output.register_hook(lambda grad: layouts.append(grad.is_contiguous(memory_format=torch.channels_last)))

    for block in blocks:
        block.register_forward_hook(watch)
    x = torch.randn(12, 8, 10, 10).contiguous(memory_format=torch.channels_last).requires_grad_()
    if mode == "hard":
        decision = RoutingDecision(torch.arange(12) % 4)
    else:
        decision = RoutingDecision(torch.stack([torch.arange(12) % 4, (torch.arange(12) + 1) % 4], 1), weights=torch.full((12, 2), 0.5))
    out = dispatch(blocks, x, decision)
    (out * torch.randn_like(out)).sum().backward()
    assert layouts == [True] * 4
    assert x.grad is not None and x.grad.is_contiguous(memory_format=torch.channels_last)


def test_the_permutation_sends_gradients_back_exactly():
    blocks = torch.nn.ModuleList([torch.nn.Linear(5, 3) for _ in range(4)])
    x = torch.randn(30, 5, requires_grad=True)
    picks = torch.randint(0, 4, (30,), generator=torch.Generator().manual_seed(0))
    upstream = torch.randn(30, 3)
    (dispatch(blocks, x, RoutingDecision(picks)) * upstream).sum().backward()
    expected = torch.stack([upstream[i] @ blocks[int(picks[i])].weight for i in range(30)])
    torch.testing.assert_close(x.grad, expected)

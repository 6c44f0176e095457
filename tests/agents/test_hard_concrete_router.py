"""The hard-concrete router: soft decisions from gates, gradients into log_alpha, pruning, end-to-end learning."""

from __future__ import annotations

import math

import pytest
import torch

from routing_rl.agents import Router, RouterConfigError
from routing_rl.agents.hard_concrete_router import HardConcreteRouter
from routing_rl.core.contracts import RoutingObservation
from routing_rl.data import load_suite
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.network import build_network
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose



def small_batch(num_tasks: int = 3, batch: int = 48, dim: int = 8, classes: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=gen)
    y = torch.randint(classes, (batch,), generator=gen)
    t = torch.arange(batch) % num_tasks
    return x, y, t


def test_registered_with_cli_options():
    assert Router.registry.get("hard-concrete") is HardConcreteRouter
    assert set(HardConcreteRouter.options()) == {
        "l0_lambda", "beta", "gamma", "zeta", "log_alpha_init", "per_example",
    }
    with pytest.raises(RouterConfigError, match="gamma"):
        HardConcreteRouter(2, 1, 2, gamma=0.1)
    with pytest.raises(RouterConfigError, match="l0_lambda"):
        HardConcreteRouter(2, 1, 2, l0_lambda=-1.0)


def test_act_is_a_soft_decision_over_all_blocks_with_the_task_gates():
    router = HardConcreteRouter(3, 2, 4, log_alpha_init=0.0, seed=1)
    with torch.no_grad():
        router.gate(1).log_alpha[2] = torch.tensor([5.0, -5.0, 0.0, 1.0])
    obs = RoutingObservation(torch.tensor([0, 2, 2, 1]), depth=1)
    train = router.act(obs, explore=True)
    assert train.blocks.tolist() == [[0, 1, 2, 3]] * 4
    assert torch.equal(train.weights[1], train.weights[2])  # one draw per (task, layer) and mini-batch
    router.eval()
    serving = router.act(obs, explore=True)  # eval mode: serving values even when asked to explore
    assert torch.equal(serving.weights, router.serving_gates(1)[obs.task_ids])
    assert serving.weights[1, 0] == 1.0 and serving.weights[1, 1] == 0.0
    router.train()
    assert torch.equal(router.act(obs, explore=False).weights, serving.weights)


def test_per_example_draws_differ_within_a_task_and_are_seeded():
    a, b = (HardConcreteRouter(2, 1, 3, log_alpha_init=0.0, per_example=True, seed=4) for _ in range(2))
    obs = RoutingObservation(torch.zeros(16, dtype=torch.long), depth=0)
    wa, wb = a.act(obs).weights, b.act(obs).weights
    assert torch.equal(wa, wb)
    assert not torch.equal(wa[0], wa[1])


def test_task_loss_gradient_reaches_log_alpha_through_the_network():
    torch.manual_seed(0)
    x, y, t = small_batch()
    network = build_network((8,), 3, 3, routed="fc", blocks=4, seed=0, hidden=16)
    router = HardConcreteRouter(3, network.num_routed, 4, log_alpha_init=0.0, l0_lambda=0.0)
    episodes = BatchedRoutingEnv(network).run(x, y, t, lambda obs: router.act(obs, explore=True))
    assert router.loss(episodes).item() == 0.0  # lambda 0: all gradient below comes from the task loss
    episodes.loss.mean().backward()
    for d in range(network.num_routed):
        grad = router.gate(d).log_alpha.grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient at routed layer {d}"


def test_routes_conv_layers_of_image_networks():
    torch.manual_seed(0)
    x = torch.randn(12, 1, 8, 8)
    y, t = torch.randint(2, (12,)), torch.arange(12) % 2
    network = build_network((1, 8, 8), 2, 2, routed="conv", blocks=3, seed=0, filters=4, hidden=8)
    router = HardConcreteRouter(2, network.num_routed, 3, log_alpha_init=0.0)
    episodes = BatchedRoutingEnv(network).run(x, y, t, lambda obs: router.act(obs, explore=True))
    (episodes.loss.mean() + router.loss(episodes)).backward()
    assert episodes.logits.shape == (12, 2) and network.num_routed == 3
    assert all(router.gate(d).log_alpha.grad.abs().sum() > 0 for d in range(3))


def test_l0_penalty_is_lambda_times_expected_open_gates():
    router = HardConcreteRouter(2, 3, 4, l0_lambda=0.5, log_alpha_init=0.0)
    p_open = 1.0 / (1.0 + math.exp(-(0.0 - (2.0 / 3.0) * math.log(0.1 / 1.1))))
    assert router.loss(None).item() == pytest.approx(0.5 * 2 * 3 * 4 * p_open, rel=1e-6)


def test_large_lambda_closes_gates_and_closed_blocks_are_never_run():
    torch.manual_seed(0)
    x, y, t = small_batch()
    network = build_network((8,), 3, 3, routed="fc2", blocks=4, seed=0, hidden=16)
    router = HardConcreteRouter(3, 1, 4, l0_lambda=5.0)
    env = BatchedRoutingEnv(network)
    optimizer = torch.optim.Adam([*network.parameters(), *router.parameters()], lr=0.1)
    for _ in range(60):
        episodes = env.run(x, y, t, lambda obs: router.act(obs, explore=True))
        loss = episodes.loss.mean() + router.loss(episodes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    router.eval()
    assert torch.equal(router.serving_gates(0), torch.zeros(3, 4))
    assert torch.equal(router.policy(0), torch.full((3, 4), 0.25))  # all closed: documented uniform row
    calls = [0] * 4
    blocks = network.layers[network.routed_positions[0]].layer.blocks
    hooks = [blk.register_forward_hook(lambda *_, m=m: calls.__setitem__(m, calls[m] + 1)) for m, blk in enumerate(blocks)]
    with torch.no_grad():
        decision = router.act(RoutingObservation(t, 0), explore=False)
        assert torch.equal(decision.weights, torch.zeros(len(t), 4))
        out = network(x, t, [decision])
    for h in hooks:
        h.remove()
    # Everything pruned: dispatch runs block 0 once on a 1-sample probe for the output shape only.
    assert calls[1:] == [0, 0, 0] and calls[0] <= 1
    assert torch.isfinite(out).all()


def test_partly_closed_gates_skip_exactly_the_closed_blocks():
    network = build_network((8,), 2, 3, routed="fc2", blocks=3, seed=0, hidden=8)
    router = HardConcreteRouter(2, 1, 3).eval()
    with torch.no_grad():
        router.gate(0).log_alpha.copy_(torch.tensor([[5.0, -5.0, -5.0], [-5.0, -5.0, 5.0]]))
    calls = [0] * 3
    blocks = network.layers[network.routed_positions[0]].layer.blocks
    for m, blk in enumerate(blocks):
        blk.register_forward_hook(lambda *_, m=m: calls.__setitem__(m, calls[m] + 1))
    x, _, t = small_batch(num_tasks=2, batch=10)
    with torch.no_grad():
        network(x, t, [router.act(RoutingObservation(t, 0), explore=False)])
    assert calls == [1, 0, 1]
    assert router.policy(0).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert router.routes().tolist() == [[0], [2]]


def test_trains_end_to_end_on_synthetic_groups_above_chance(tmp_path):
    data = load_suite("synthetic-groups", seed=0, num_tasks=4, num_groups=2, train_per_task=300, test_per_task=150)
    cfg = RunConfig(agent="hard-concrete", env="synthetic-groups", epochs=4, batch_size=64, lr=3e-3, logdir=str(tmp_path))
    trainer = Trainer(compose(cfg), data)
    trainer.prepare_run_dir(resume=False)
    results = trainer.fit()
    first, last = results["epochs"][0], results["epochs"][-1]
    assert last["test"]["mean"] > data.info["chance"] + 0.3
    assert last["train_loss"] < first["train_loss"]
    assert last["router_loss"] > 0  # the L0 penalty was added to the loss
    gates = trainer.learner.router.log_alpha
    assert not torch.equal(gates, torch.full_like(gates, 3.0))  # log_alpha was trained
    for policy in last["routing"]["policy"]:
        assert all(abs(sum(row) - 1.0) < 1e-6 for row in policy)

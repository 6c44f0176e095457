"""A population's tabular routers learning in one pass (Router.loss_together) give every router the
loss, the gradient and the buffer updates (Q, baseline, projected table) that its own loss gives, bit
for bit; routers whose options or batches differ learn in separate passes, or alone."""

from __future__ import annotations

import copy

import pytest
import torch

from routing_rl.agents._policy_tables import episode_steps, population_steps
from routing_rl.agents.reinforce import ReinforceRouter
from routing_rl.agents.wpl import WPLRouter
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation
from routing_rl.training.loop.stacked_play import losses_together

TASKS, LAYERS, BLOCKS = 4, 3, 5


def episodes(seed: int, batch: int = 33, layers: int = LAYERS, dtype: torch.dtype = torch.float32) -> EpisodeBatch:
    """A finished batch with random tasks, blocks, step rewards and final rewards."""
    gen = torch.Generator().manual_seed(seed)
    tasks = torch.randint(TASKS, (batch,), generator=gen)
    obs = [RoutingObservation(tasks, d) for d in range(layers)]
    decisions = [RoutingDecision(torch.randint(BLOCKS, (batch,), generator=gen)) for _ in range(layers)]
    step_rewards = [torch.randn(batch, generator=gen, dtype=dtype) for _ in range(layers)]
    final = torch.randn(batch, generator=gen, dtype=dtype)
    return EpisodeBatch(obs, decisions, step_rewards, final, torch.zeros(batch), torch.zeros(batch, 2), torch.zeros(batch, dtype=torch.long))


def shaken(router, seed: int, dtype: torch.dtype):
    """A router whose tables and buffers are no longer at their start, so that every term counts."""
    router = router.to(dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*router.parameters(), *router.buffers()]:
            tensor.add_(0.3 * torch.rand(tensor.shape, generator=gen, dtype=dtype))
    return router


def assert_learn_as_alone(routers: list, batches: list[EpisodeBatch]) -> None:
    alone = [copy.deepcopy(r) for r in routers]
    expected = [r.loss(b) for r, b in zip(alone, batches)]
    got = losses_together(dict(enumerate(routers)), dict(enumerate(batches)))
    assert sorted(got) == list(range(len(routers)))
    for loss in expected:
        loss.backward()
    sum(got.values()).backward()
    for p, (mine, theirs) in enumerate(zip(routers, alone)):
        assert torch.equal(got[p], expected[p]), p
        for (name, a), b in zip(mine.named_parameters(), theirs.parameters()):
            assert torch.equal(a, b), (p, name)
            assert torch.equal(a.grad, b.grad), (p, name)
        for (name, a), b in zip(mine.named_buffers(), theirs.buffers()):
            assert torch.equal(a, b), (p, name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wpl_routers_learn_together_as_each_alone(dtype):
    """The default WPL (clip-projected table, Q averaged from the batch first): five routers with
    their own tables, Q and episodes; discounted returns of step rewards."""
    routers = [shaken(WPLRouter(TASKS, LAYERS, BLOCKS, seed=s, discount=0.9), s, dtype) for s in range(5)]
    assert_learn_as_alone(routers, [episodes(10 + s, dtype=dtype) for s in range(5)])


@pytest.mark.parametrize("options", [{"update": "all-actions"}, {"parameterization": "softmax", "per_sample_loss": False}])
def test_wpl_options_learn_together_as_each_alone(options):
    routers = [shaken(WPLRouter(TASKS, LAYERS, BLOCKS, seed=s, **options), s, torch.float32) for s in range(3)]
    assert_learn_as_alone(routers, [episodes(20 + s) for s in range(3)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reinforce_routers_learn_together_as_each_alone(dtype):
    routers = [shaken(ReinforceRouter(TASKS, LAYERS, BLOCKS, seed=s, discount=0.8, entropy_coef=0.05), s, dtype) for s in range(4)]
    assert_learn_as_alone(routers, [episodes(30 + s, dtype=dtype) for s in range(4)])


def test_a_battery_population_learns_in_groups_of_alike_routers(monkeypatch):
    """WPL beside REINFORCE, another value rate, the shipped public-code loss, a shorter batch: each
    router's loss is its own, and only the routers that agree share a pass."""
    routers = [
        *(shaken(WPLRouter(TASKS, LAYERS, BLOCKS, seed=s), s, torch.float32) for s in range(3)),
        *(shaken(ReinforceRouter(TASKS, LAYERS, BLOCKS, seed=s), s, torch.float32) for s in range(3)),
        shaken(WPLRouter(TASKS, LAYERS, BLOCKS, seed=7, value_rate=0.5), 7, torch.float32),
        WPLRouter(TASKS, LAYERS, BLOCKS, seed=8, variant="public-code"),
        shaken(WPLRouter(TASKS, LAYERS, BLOCKS, seed=9), 9, torch.float32),
    ]
    batches = [episodes(40 + p, batch=17 if p == 8 else 33) for p in range(len(routers))]
    passes: list[tuple[str, int]] = []
    for cls in (WPLRouter, ReinforceRouter):
        stacked = cls.stacked_losses.__func__

        def counted(klass, members, batches_, stacked=stacked):
            passes.append((klass.name, len(members)))
            return stacked(klass, members, batches_)

        monkeypatch.setattr(cls, "stacked_losses", classmethod(counted))
    assert_learn_as_alone(routers, batches)
    assert sorted(passes) == [("reinforce", 3), ("wpl", 3)]  # value_rate 0.5, public-code, the short batch: alone


def test_population_steps_lay_each_routers_steps_side_by_side():
    batches = [episodes(50 + s, batch=9) for s in range(3)]
    together = population_steps(batches, 0.7, TASKS)
    for p, batch in enumerate(batches):
        alone = episode_steps(batch, 0.7)
        columns = slice(9 * p, 9 * (p + 1))
        assert torch.equal(together.tasks[:, columns], alone.tasks + p * TASKS)
        for field in ("depths", "blocks", "returns", "rewards"):
            assert torch.equal(getattr(together, field)[:, columns], getattr(alone, field)), field

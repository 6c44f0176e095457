"""A population's routers acting in one pass (Router.act_together) make the decisions, and give
their parameters the gradients, that each router's own act would."""

from __future__ import annotations

import pytest
import torch

from routing_rl.agents._policy_tables import categorical_decisions, sample_blocks
from routing_rl.agents.fixed_random import FixedRandomRouter
from routing_rl.agents.hard_concrete_router import HardConcreteRouter
from routing_rl.agents.reinforce import ReinforceRouter
from routing_rl.agents.wpl import WPLRouter
from routing_rl.core.contracts import RoutingObservation
from routing_rl.training.loop.stacked_play import act_together


@pytest.mark.parametrize("blocks", [2, 3, 7])
def test_sample_blocks_draws_what_torch_multinomial_draws(blocks):
    """The written-out draw is torch.multinomial's, block for block, so results trained before it stand."""
    gen = torch.Generator().manual_seed(blocks)
    for seed in range(40):
        probs = torch.softmax(3 * torch.randn(257, blocks, generator=gen), dim=1)
        probs[seed % 257, 0] = 0.0  # a block that must never be drawn
        probs = probs / probs.sum(1, keepdim=True)
        mine, theirs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        drawn = sample_blocks(probs, mine)
        assert torch.equal(drawn, torch.multinomial(probs.double(), 1, generator=theirs).squeeze(1))
        assert drawn[seed % 257] != 0
        assert torch.equal(torch.rand(3, generator=mine), torch.rand(3, generator=theirs))  # the same numbers consumed


def test_categorical_decisions_are_each_generators_own_draws():
    gen = torch.Generator().manual_seed(0)
    probs = [torch.softmax(torch.randn(n, 4, generator=gen), dim=1) for n in (5, 17, 1)]
    together = categorical_decisions(probs, [torch.Generator().manual_seed(s) for s in (3, 4, 5)])
    for p, s, decision in zip(probs, (3, 4, 5), together):
        alone = sample_blocks(p, torch.Generator().manual_seed(s))
        assert torch.equal(decision.blocks, alone)
        assert torch.equal(decision.log_probs, torch.log(p.gather(1, alone.unsqueeze(1)).squeeze(1)))


def observations(depth: int, sizes: tuple[int, ...], tasks: int) -> list[RoutingObservation]:
    gen = torch.Generator().manual_seed(depth)
    return [RoutingObservation(torch.randint(tasks, (n,), generator=gen), depth) for n in sizes]


def trained_a_little(router, seed: int = 7):
    """A router whose table is no longer uniform, so that sampling depends on the task (and, with
    its own ``seed``, on the router: a router reading another's rows would draw other blocks)."""
    with torch.no_grad():
        for param in router.parameters():
            param.add_(3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(seed)).abs())
    if hasattr(router, "project_"):
        router.project_()
    return router


def test_wpl_and_reinforce_act_together_as_each_alone():
    """A battery population holds WPL beside REINFORCE: they act in one call, each from its own generator."""
    def routers():
        return [trained_a_little(WPLRouter(3, 2, 4, seed=1), 1), trained_a_little(ReinforceRouter(3, 2, 4, seed=2), 2),
                trained_a_little(WPLRouter(3, 2, 4, seed=3), 3), FixedRandomRouter(3, 2, 4, seed=4),
                trained_a_little(ReinforceRouter(3, 2, 4, seed=5), 5), trained_a_little(WPLRouter(3, 2, 4, seed=6), 6)]  # fmt: skip

    together, alone = routers(), routers()
    for depth in range(2):
        obs = observations(depth, (9, 4, 12, 9, 30, 17), 3)
        chosen = act_together(dict(enumerate(together)), dict(enumerate(obs)))
        for p, (router, o) in enumerate(zip(alone, obs)):
            own = router.act(o, explore=True)
            assert torch.equal(chosen[p].blocks, own.blocks), p
            assert (chosen[p].log_probs is None) == (own.log_probs is None)
            if own.log_probs is not None:
                assert torch.equal(chosen[p].log_probs, own.log_probs)
    assert all(torch.equal(a.generator.get_state(), b.generator.get_state()) for a, b in zip(together, alone))


def test_hard_concrete_routers_act_together_as_each_alone_with_their_own_gradients():
    def routers():
        out = [HardConcreteRouter(3, 2, 4, seed=s) for s in (1, 2, 3)]
        for k, router in enumerate(out):
            with torch.no_grad():
                for d in range(2):
                    router.gate(d).log_alpha.add_(torch.randn(3, 4, generator=torch.Generator().manual_seed(10 * k + d)))
        return out

    together, alone = routers(), routers()
    target = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    loss_together, loss_alone = torch.zeros(()), torch.zeros(())
    for depth in range(2):
        obs = observations(depth, (12, 5, 12), 3)
        chosen = act_together(dict(enumerate(together)), dict(enumerate(obs)))
        for p, (router, o) in enumerate(zip(alone, obs)):
            own = router.act(o, explore=True)
            assert torch.equal(chosen[p].blocks, own.blocks) and torch.equal(chosen[p].weights, own.weights)
            loss_together = loss_together + (chosen[p].weights * target[: o.batch_size]).sum() * (p + 1)
            loss_alone = loss_alone + (own.weights * target[: o.batch_size]).sum() * (p + 1)
    loss_together.backward()
    loss_alone.backward()
    for a, b in zip(together, alone):
        for d in range(2):
            assert torch.equal(a.gate(d).log_alpha.grad, b.gate(d).log_alpha.grad)


def test_hard_concrete_routers_that_differ_act_one_by_one():
    """Gates of another temperature (or per-example noise) are not transformed together: each acts alone."""
    together = [HardConcreteRouter(2, 1, 3, seed=1), HardConcreteRouter(2, 1, 3, seed=2, beta=0.5),
                HardConcreteRouter(2, 1, 3, seed=3, per_example=True)]  # fmt: skip
    alone = [HardConcreteRouter(2, 1, 3, seed=1), HardConcreteRouter(2, 1, 3, seed=2, beta=0.5),
             HardConcreteRouter(2, 1, 3, seed=3, per_example=True)]  # fmt: skip
    obs = observations(0, (6, 6, 6), 2)
    chosen = act_together(dict(enumerate(together)), dict(enumerate(obs)))
    for p, (router, o) in enumerate(zip(alone, obs)):
        assert torch.equal(chosen[p].weights, router.act(o, explore=True).weights)

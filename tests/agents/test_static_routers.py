"""The static routers' routes, the registry, and adding a router in a few lines."""

from __future__ import annotations

import pytest
import torch

from routing_rl.agents import FixedRouteRouter, Router, RouterConfigError
from routing_rl.core.contracts import RoutingObservation
from routing_rl.registry import UnknownNameError


def make(name, tasks=4, layers=3, blocks=5, seed=0):
    return Router.registry.get(name)(tasks, layers, blocks, seed=seed)


def test_builtin_static_routers_are_registered():
    assert {"fixed-random", "shared-bottom", "no-sharing"} <= set(Router.registry.names())


def test_unknown_agent_lists_choices():
    with pytest.raises(UnknownNameError, match="valid choices: .*fixed-random"):
        Router.registry.get("nope")


def test_shared_bottom_routes_everything_to_block_zero():
    assert make("shared-bottom").routes().eq(0).all()


def test_no_sharing_gives_task_k_block_k():
    assert make("no-sharing").routes().tolist() == [[k] * 3 for k in range(4)]


def test_no_sharing_needs_a_block_per_task():
    with pytest.raises(RouterConfigError, match="--blocks 3 < 4 tasks"):
        make("no-sharing", blocks=3)


def test_fixed_random_is_seeded_fixed_and_in_range():
    a, b, c = make("fixed-random", 10, 3, 4, seed=1), make("fixed-random", 10, 3, 4, seed=1), make("fixed-random", 10, 3, 4, seed=2)
    assert torch.equal(a.routes(), b.routes()) and not torch.equal(a.routes(), c.routes())
    assert int(a.routes().min()) >= 0 and int(a.routes().max()) < 4
    obs = RoutingObservation(torch.tensor([3, 3, 7, 0]), depth=1)
    first = a.act(obs).blocks
    assert torch.equal(first, a.routes()[[3, 3, 7, 0], 1])
    assert torch.equal(first, a.act(obs, explore=False).blocks)


def test_policy_is_one_hot_of_routes():
    r = make("fixed-random")
    for d in range(3):
        p = r.policy(d)
        assert torch.allclose(p.sum(1), torch.ones(4)) and torch.equal(p.argmax(1), r.routes()[:, d])


def test_state_survives_save_and_load():
    a, b = make("fixed-random", seed=3), make("fixed-random", seed=4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.routes(), b.routes())


def test_a_new_router_is_a_few_lines_and_registers_itself():
    class EvenOdd(FixedRouteRouter):
        """Even tasks on block 0, odd tasks on block 1."""

        name = "test-even-odd"

        def make_routes(self) -> torch.Tensor:
            return (torch.arange(self.num_tasks) % 2).unsqueeze(1).repeat(1, self.num_layers)

    router = Router.registry.get("test-even-odd")(4, 2, 2)
    assert router.routes().tolist() == [[0, 0], [1, 1], [0, 0], [1, 1]]


def test_options_come_from_keyword_only_arguments():
    class WithOptions(Router):
        name = "test-with-options"

        def __init__(self, num_tasks, num_layers, num_blocks, *, seed: int = 0, temperature: float = 1.0, greedy: bool = False):
            super().__init__(num_tasks, num_layers, num_blocks, seed=seed)

        def act(self, obs, explore=True):
            raise NotImplementedError

        def policy(self, depth):
            raise NotImplementedError

    options = WithOptions.options()
    assert {k: (o.annotation, o.default) for k, o in options.items()} == {"temperature": (float, 1.0), "greedy": (bool, False)}

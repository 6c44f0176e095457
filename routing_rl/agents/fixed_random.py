"""Fixed random routes (the Re-examining paper, section 2.3): a random block per task and layer, never trained."""

from __future__ import annotations

import torch

from routing_rl.agents.base import FixedRouteRouter


class FixedRandomRouter(FixedRouteRouter):
    """Each task gets a uniformly random block in every routed layer, drawn once from the seed.

    Tests whether the benefit of routing comes from *learning* who shares or merely from partial
    sharing: with M blocks and T tasks, tasks collide on a block with the usual birthday odds.
    """

    name = "fixed-random"
    description = "a random block per task and routed layer, fixed at initialisation (seeded)"

    def make_routes(self) -> torch.Tensor:
        return torch.randint(self.num_blocks, (self.num_tasks, self.num_layers), generator=self.generator)

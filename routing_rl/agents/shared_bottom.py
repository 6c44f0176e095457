"""Shared bottom as a route: every task uses block 0 of every routed layer."""

from __future__ import annotations

import torch

from routing_rl.agents.base import FixedRouteRouter


class SharedBottomRouter(FixedRouteRouter):
    """All tasks share one block per layer (maximal sharing; Baxter 1997). Blocks 1..M-1 stay unused."""

    name = "shared-bottom"
    description = "all tasks share block 0 of every routed layer"

    def make_routes(self) -> torch.Tensor:
        return torch.zeros(self.num_tasks, self.num_layers, dtype=torch.long)

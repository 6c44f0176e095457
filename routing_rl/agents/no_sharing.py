"""No sharing as a route: task k uses its own block k in every routed layer."""

from __future__ import annotations

import torch

from routing_rl.agents.base import FixedRouteRouter, RouterConfigError


class NoSharingRouter(FixedRouteRouter):
    """Each task has private blocks in the routed layers (no parameter sharing there); needs M >= T."""

    name = "no-sharing"
    description = "task k uses block k of every routed layer (needs --blocks >= number of tasks)"

    def make_routes(self) -> torch.Tensor:
        if self.num_layers and self.num_blocks < self.num_tasks:
            raise RouterConfigError(
                f"no-sharing needs at least one block per task: --blocks {self.num_blocks} < {self.num_tasks} tasks"
            )
        return torch.arange(self.num_tasks).unsqueeze(1).repeat(1, self.num_layers)

"""No sharing: task k uses its own block k in every layer, i.e. a separate network per task.

The Re-examining paper's no-sharing baseline (section 2.1) is "completely independent" tasks, each
with "its individual network". As a route that is block k for task k in *every* layer, so the
learner refuses a network with a shared layer (``shares_nothing``), and the command line and suites
default ``--routed`` to ``all`` for this agent (``default_routed``; a ``RunConfig`` built in Python
names ``routed="all"`` itself).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from routing_rl.agents.base import FixedRouteRouter, RouterConfigError


class NoSharingRouter(FixedRouteRouter):
    """Each task has private blocks in every layer (no parameter sharing at all); needs M >= T."""

    name = "no-sharing"
    description = "a separate network per task: task k uses block k of every layer (--routed all, --blocks >= tasks)"
    default_routed: ClassVar[str] = "all"
    shares_nothing: ClassVar[bool] = True

    def make_routes(self) -> torch.Tensor:
        if self.num_layers and self.num_blocks < self.num_tasks:
            raise RouterConfigError(
                f"no-sharing needs at least one block per task: --blocks {self.num_blocks} < {self.num_tasks} tasks"
            )
        return torch.arange(self.num_tasks).unsqueeze(1).repeat(1, self.num_layers)

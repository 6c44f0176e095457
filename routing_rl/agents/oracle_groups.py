"""Routes that follow the suite's known task groups: the ceiling learned routing aims for.

A learned router is asked to discover which tasks should share. On suites whose sharing pattern is
known by construction (``synthetic-groups``: tasks of a group share one teacher;
``multilabel-synthetic``: tasks of a group share latent label directions) the answer can be given
instead: every task of a group takes the same block in every routed layer, different groups take
different blocks. Its score is the headroom a learned router has over fixed random routes, and how
far below it a learner stays is what the learning costs.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from routing_rl.agents.base import FixedRouteRouter, RouterConfigError


class OracleGroupsRouter(FixedRouteRouter):
    """Task ``t`` of group ``g`` takes block ``g`` in every routed layer: groups share within, never across."""

    name = "oracle-groups"
    description = "routes by the suite's known task groups (synthetic-groups, multilabel-synthetic): the ceiling for learned routing"
    needs_task_groups: ClassVar[bool] = True
    internal_arguments = FixedRouteRouter.internal_arguments | {"task_groups"}

    def __init__(self, num_tasks: int, num_layers: int, num_blocks: int, *, seed: int = 0, task_groups: tuple[int, ...] = ()) -> None:
        if len(task_groups) != num_tasks:
            raise RouterConfigError(f"oracle-groups needs the group of each of the {num_tasks} tasks, got {len(task_groups)}; "
                                    "use a suite that knows its task groups (synthetic-groups, multilabel-synthetic)")  # fmt: skip
        groups = sorted(set(task_groups))
        if len(groups) > num_blocks:
            raise RouterConfigError(f"oracle-groups gives each of the {len(groups)} task groups its own block, but a routed layer "
                                    f"has {num_blocks}; give --blocks {len(groups)} or more")  # fmt: skip
        self.group_block = {g: i for i, g in enumerate(groups)}
        self.task_groups = tuple(task_groups)
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)

    def make_routes(self) -> torch.Tensor:
        blocks = torch.tensor([self.group_block[g] for g in self.task_groups], dtype=torch.long)
        return blocks.unsqueeze(1).expand(self.num_tasks, self.num_layers).clone()

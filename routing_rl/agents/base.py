"""The router contract: every routing strategy (RL agents, fixed routes, differentiable gates).

A router is an ``nn.Module`` so that its learnable state (policy tables, gate logits) is saved,
loaded and optimised like any other weights. Three hooks (plus the optional :meth:`Router.after_update`):

* :meth:`Router.act` picks blocks for a batch of observations (one routed layer at a time);
* :meth:`Router.loss` turns a finished :class:`~routing_rl.core.contracts.EpisodeBatch` into a
  loss on the router's parameters (policy gradient, TD error, L0 penalty), or None;
* :meth:`Router.policy` exposes the per-task routing distribution of a layer, for logging.

Subclasses register themselves by their class attribute ``name``; ``--agent NAME`` finds them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation
from routing_rl.core.seeding import torch_generator
from routing_rl.registry import AGENTS, Registered, Registry


class RouterConfigError(ValueError):
    """A router cannot be built with these options (e.g. too few blocks for no-sharing)."""


class Router(Registered, nn.Module, ABC):
    """Base class of all routers. Subclasses set ``name`` and fill in :meth:`act` and :meth:`policy`.

    Constructor arguments after ``num_blocks`` must be keyword-only with defaults and type
    annotations: they become ``--agent-option KEY=VALUE`` options of ``routing-rl run`` (document
    each in ``option_help``). Routers share the ``--agent`` registry with the multi-task models.
    """

    registry: ClassVar[Registry[Any]] = AGENTS
    family: ClassVar[str] = "router"
    default_routed: ClassVar[str] = "fc"
    """``--routed`` where the command line or suite does not give it."""
    shares_nothing: ClassVar[bool] = False
    """True for a router whose tasks may share no layer: the learner refuses a network with a shared layer."""
    default_router_lr: ClassVar[float | None] = None
    """``--router-lr`` where none is given (None: ``--lr``): a rate at which this router learns its
    routes on the default suite within the default epochs (see ``tests/test_defaults_learn.py``)."""
    learns_routes: ClassVar[bool] = True
    """False for a router whose routes are set before training (fixed routes): its "policy" is a
    one-hot table, so its perplexity and task-similarity figures would only redraw the table; results
    record this and ``report`` and TensorBoard draw those figures for learning routers only."""
    needs_task_groups: ClassVar[bool] = False
    """Whether the router is given the suite's known task groups (``task_groups``: the oracle router)."""
    routes_soft: ClassVar[bool] = False
    """True for a router whose decisions weigh every block (soft routing) instead of choosing one:
    a population runs such members apart from those that route hard."""

    def __init__(self, num_tasks: int, num_layers: int, num_blocks: int, *, seed: int = 0) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.num_layers = num_layers
        self.num_blocks = num_blocks
        self.generator = torch_generator(seed)

    # ---- hooks -------------------------------------------------------------------------------
    @abstractmethod
    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        """Choose blocks for every sample of ``obs`` at layer ``obs.depth``.

        ``explore`` is True while training and False for evaluation, where stochastic routers
        take their most likely block.
        """

    @classmethod
    def act_together(cls, routers: Sequence[Router], observations: Sequence[RoutingObservation]) -> list[RoutingDecision]:
        """The exploring decisions of several routers of this class, each on its own observation (the
        members of a population at one routed layer): each the decision its own ``act(obs,
        explore=True)`` would make, from its own generator. This default asks each in turn; a router
        whose act is a few operations on a table overrides it to run them once for all."""
        return [router.act(obs, explore=True) for router, obs in zip(routers, observations)]

    @abstractmethod
    def policy(self, depth: int) -> torch.Tensor:
        """The routing distribution of every task at layer ``depth``: ``[num_tasks, num_blocks]``, rows sum to 1."""

    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        """Loss on the router's parameters for a finished batch of episodes; None if it learns nothing."""
        return None

    @classmethod
    def loss_together(cls, routers: Sequence[Router], episodes: Sequence[EpisodeBatch]) -> list[torch.Tensor | None]:
        """The losses of several routers of this class, each on its own finished batch (the members
        of a population after one step): each the loss its own ``loss(episodes)`` would give, with
        the same updates of its buffers. This default asks each in turn; a router whose loss is a
        few operations on a table overrides it to run them once for all."""
        return [router.loss(batch) for router, batch in zip(routers, episodes)]

    def after_update(self) -> None:
        """Called after each optimizer step that used this router's loss (e.g. to project a policy table)."""

    # ---- shared helpers ----------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """Reset the router's sampling generator (the trainer does this every epoch, for resume)."""
        self.generator.manual_seed(seed)

    def routes(self) -> torch.Tensor:
        """The most likely block per task and routed layer: ``[num_tasks, num_layers]``."""
        if self.num_layers == 0:
            return torch.zeros(self.num_tasks, 0, dtype=torch.long)
        return torch.stack([self.policy(d).argmax(dim=1) for d in range(self.num_layers)], dim=1)


class FixedRouteRouter(Router):
    """A router whose route per task and layer is a fixed table: the routes themselves are the policy."""

    family: ClassVar[str] = "router: fixed routes"
    learns_routes: ClassVar[bool] = False

    def __init__(self, num_tasks: int, num_layers: int, num_blocks: int, *, seed: int = 0) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        table = self.make_routes()
        if table.shape != (num_tasks, num_layers):
            raise RouterConfigError(f"route table must be [{num_tasks}, {num_layers}], got {tuple(table.shape)}")
        if table.numel() and (int(table.min()) < 0 or int(table.max()) >= num_blocks):
            raise RouterConfigError(f"routes must pick blocks in [0, {num_blocks}), got {table.tolist()}")
        self.register_buffer("route_table", table.long())

    @abstractmethod
    def make_routes(self) -> torch.Tensor:
        """Build the ``[num_tasks, num_layers]`` table of block indices (use ``self.generator``)."""

    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        return RoutingDecision(self.route_table[obs.task_ids, obs.depth])

    def policy(self, depth: int) -> torch.Tensor:
        return nn.functional.one_hot(self.route_table[:, depth], self.num_blocks).float()

    def routes(self) -> torch.Tensor:
        return self.route_table.clone()

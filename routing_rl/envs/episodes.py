"""Plain data passed between the batched routing env, the routers and the trainer (defined with the
other contracts in :mod:`routing_rl.core.contracts`)."""

from __future__ import annotations

from routing_rl.core.contracts import EpisodeBatch, RoutingObservation

__all__ = ["EpisodeBatch", "RoutingObservation"]

"""The set-up shared by the interactive env views: data, a network with frozen weights, a split.

Both the per-task Gymnasium env and the PettingZoo view route samples through a network that does
not learn while they run (so that they are deterministic under a seed); this builds that network
(or freezes a trained one) and validates the choices once, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from routing_rl.data import SingleLabelData, Split, Suite, load_suite
from routing_rl.network import RoutingNetwork, build_network

SPLITS = ("train", "val", "test")


@dataclass
class FrozenRoutingProblem:
    """Data, the split episodes draw from, and the frozen network they are routed through."""

    data: SingleLabelData
    split: Split
    network: RoutingNetwork

    @property
    def num_blocks(self) -> int:
        return max(self.network.blocks_per_layer)

    @property
    def hidden_dim(self) -> int:
        """Size of the zero-padded hidden-state summary (the widest routed layer input)."""
        return max(self.network.routed_input_dims)


def frozen_routing_problem(
    suite: str | type[Suite],
    split: str = "test",
    routed: str = "fc",
    blocks: int | None = None,
    data_dir: str | Path | None = None,
    data_seed: int = 0,
    network_seed: int = 0,
    data: SingleLabelData | None = None,
    network: RoutingNetwork | None = None,
) -> FrozenRoutingProblem:
    """Load ``suite`` (unless ``data`` is given), build a seeded network (unless given) and freeze it."""
    data = data if data is not None else load_suite(suite, data_dir=data_dir, seed=data_seed)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if network is None:
        network = build_network(data.input_shape, data.num_tasks, data.num_classes, routed, blocks, seed=network_seed)
    if network.num_routed == 0:
        raise ValueError("the network has no routed layer: there is nothing to route")
    return FrozenRoutingProblem(data, getattr(data, split), network.eval().requires_grad_(False))

"""Build the paper's routed network for a multi-task data set from command-line style options."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from routing_rl.network.model import RoutingNetwork
from routing_rl.network.spec import build_layer_specs


def build_network(
    input_shape: Sequence[int],
    num_tasks: int,
    num_classes: int | Sequence[int],
    routed: str | Iterable[str] | None = "fc",
    blocks: int | None = None,
    per_task: str | Iterable[str] | None = None,
    seed: int | None = None,
    **spec_options: int,
) -> RoutingNetwork:
    """The network with ``routed`` layers of ``blocks`` blocks (default: one block per task, as in the paper).

    ``seed`` fixes the initial weights without touching the global RNG stream of the caller.
    """
    specs = build_layer_specs(input_shape, routed, blocks or num_tasks, per_task, **spec_options)
    if seed is None:
        return RoutingNetwork(specs, input_shape, num_tasks, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RoutingNetwork(specs, input_shape, num_tasks, num_classes)

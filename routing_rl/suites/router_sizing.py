"""Size a router's routed network to a target number of trainable parameters.

A router's network has the shared bottom's layers with ``blocks`` copies of every routed layer, so
at the same widths it is several times the shared bottom's size (a 4-task table: 27,891 against
10,328), and a battery that compares them compares sizes, not ways of sharing. :func:`router_widths`
picks the FC width (``hidden``) whose network, counted as the trainer counts it (the routed
network's trainable parameters plus the router's, gate logits and policy tables included), is
closest to the target. Where conv layers are routed too (no sharing on images) the conv blocks
cannot stay at their default width (their copies alone may exceed the target), so ``filters``
follows ``hidden`` in the default proportion (32 filters to 64 units) and both shrink together;
shared conv layers keep the shared bottom's width.
"""

from __future__ import annotations

from typing import Any

from routing_rl.core.seeding import FIXED_SEED
from routing_rl.models.layers import count_parameters as count_module_parameters
from routing_rl.models.sizing import closest
from routing_rl.network.spec import build_layer_specs, count_parameters
from routing_rl.training.setup.composition import agent_class, default_routed
from routing_rl.training.setup.config import RunConfig

MAX_WIDTH = 1 << 12
"""The widest FC block the search tries (the shared bottom's default is 64)."""


def widths(hidden: int, conv_routed: bool, config: RunConfig) -> dict[str, int]:
    """The width options of FC width ``hidden``: ``filters`` too where conv layers are routed (module docstring)."""
    if not conv_routed:
        return {"hidden": hidden}
    return {"hidden": hidden, "filters": max(1, round(hidden * config.filters / config.hidden))}


def router_parameters(options: dict[str, Any], input_shape: tuple[int, ...], head_sizes: list[int], config: RunConfig,
                      **width: int) -> int:  # fmt: skip
    """Trainable parameters of the run ``options`` (a battery run's table: ``agent``, ``routed``,
    ``agent_options``) at ``width`` (``hidden``, ``filters``): its routed network plus its router,
    as :meth:`~routing_rl.training.loop.routed_learner.RoutedLearner.parameter_counts` counts them."""
    cls = agent_class(options["agent"])
    tasks = len(head_sizes)
    blocks = config.blocks or tasks
    specs = build_layer_specs(input_shape, options.get("routed", default_routed(cls)), blocks, None,
                              head_outputs=head_sizes[0] if len(set(head_sizes)) == 1 else None,
                              hidden=width.get("hidden", config.hidden), filters=width.get("filters", config.filters),
                              fc_layers=config.fc_layers)  # fmt: skip
    routed = [s for s in specs if s.mode == "routed"]
    router = cls(tasks, len(routed), max((s.blocks for s in routed), default=1), seed=FIXED_SEED, **options.get("agent_options", {}))
    return count_parameters(specs, input_shape, tasks, head_sizes) + count_module_parameters(router)


def router_widths(options: dict[str, Any], input_shape: tuple[int, ...], head_sizes: list[int], target: int,
                  config: RunConfig) -> tuple[dict[str, int], int]:  # fmt: skip
    """The width options of the run ``options`` whose trainable parameters are closest to ``target``, and that count."""
    cls = agent_class(options["agent"])
    probe = build_layer_specs(input_shape, options.get("routed", default_routed(cls)), config.blocks or len(head_sizes),
                              None, head_outputs=head_sizes[0] if len(set(head_sizes)) == 1 else None,
                              fc_layers=config.fc_layers)  # fmt: skip
    conv_routed = any(s.kind == "conv" and s.mode == "routed" for s in probe)

    def count(hidden: int) -> int:
        return router_parameters(options, input_shape, head_sizes, config, **widths(hidden, conv_routed, config))

    best = widths(closest(count, target, 1, MAX_WIDTH), conv_routed, config)
    return best, router_parameters(options, input_shape, head_sizes, config, **best)

"""Build the paper's routed network for a multi-task data set from command-line style options."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from routing_rl.core.seeding import seeded_weights
from routing_rl.network.linear_bank import BANK_MIN_BLOCKS
from routing_rl.network.model import RoutingNetwork
from routing_rl.network.spec import SpecError, build_layer_specs, count_parameters

BYTES_PER_PARAMETER = 16
"""float32 weight, its gradient and Adam's two moments."""


def _require_memory_for(parameters: int) -> None:
    """Refuse a network whose training state would not fit in the memory available now."""
    from routing_rl.data.memory import available_memory, format_bytes

    needed = parameters * BYTES_PER_PARAMETER
    available = available_memory()
    if available is not None and needed > available:
        raise SpecError(
            f"the network would have {parameters:,} parameters and need about {format_bytes(needed)} to train, "
            f"but {format_bytes(available)} is available; lower --blocks, --hidden, --filters or --fc-layers"
        )


def build_network(
    input_shape: Sequence[int],
    num_tasks: int,
    num_classes: int | Sequence[int],
    routed: str | Iterable[str] | None = "fc",
    blocks: int | None = None,
    per_task: str | Iterable[str] | None = None,
    seed: int | None = None,
    bank_min_blocks: int = BANK_MIN_BLOCKS,
    dropout: float = 0.0,
    **spec_options: int,
) -> RoutingNetwork:
    """The network with ``routed`` layers of ``blocks`` blocks (default: one block per task, as in the paper).

    ``seed`` fixes the initial weights without touching the global RNG stream of the caller.
    ``bank_min_blocks``: linear layers of that many blocks or more are stored as a bank
    (:mod:`routing_rl.network.linear_bank`); the benchmarks set it to compare the two forms.
    ``dropout``: see :class:`RoutingNetwork` (it adds no parameters, so the initial weights do not depend on it).
    """
    heads = [num_classes] * num_tasks if isinstance(num_classes, int) else list(num_classes)
    same = heads[0] if heads and all(h == heads[0] for h in heads) else None
    specs = build_layer_specs(input_shape, routed, blocks or num_tasks, per_task, head_outputs=same, **spec_options)
    _require_memory_for(count_parameters(specs, input_shape, num_tasks, heads))
    if seed is None:
        return RoutingNetwork(specs, input_shape, num_tasks, num_classes, bank_min_blocks, dropout)
    with seeded_weights(seed):
        return RoutingNetwork(specs, input_shape, num_tasks, num_classes, bank_min_blocks, dropout)

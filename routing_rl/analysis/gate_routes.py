"""A gated router's route as the blocks each task reads: its open gates per layer, not a greedy block.

The hard-concrete router sums every block whose serving gate is open, so its greedy route
(``routing.routes``, the most open block of each layer) reads ``0 0 0`` whether a task reads one
block or all of them. ``run``, ``show`` and ``analyze`` print the open gates instead
(``{0,2} {1} {0,1,2}``), read from the gates the trainer records for every gated router.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def gated_layers(learner: Mapping[str, Any], routing: Mapping[str, Any]) -> list[Sequence[Sequence[float]]] | None:
    """A gated router's serving gates per routed layer (``[layers][tasks][blocks]``), or None for a hard router.

    Read from ``routing.gates`` (recorded for every gated router); a hard-concrete run recorded
    before that falls back to its policy, its gates normalised per task (zeros where closed; a
    task with every gate of a layer closed reads as all open there, which the policy cannot tell).
    """
    gates = routing.get("gates")
    if gates:
        return list(gates)
    if learner.get("agent") == "hard-concrete" and routing.get("policy"):
        return list(routing["policy"])
    return None


def open_gates(learner: Mapping[str, Any], routing: Mapping[str, Any]) -> list[list[list[int]]] | None:
    """Per task, per routed layer, the blocks whose gate is open (``[tasks][layers][blocks]``); None for a hard router."""
    layers = gated_layers(learner, routing)
    if layers is None:
        return None
    tasks = len(layers[0]) if layers else 0
    return [[[m for m, value in enumerate(layer[t]) if value > 0] for layer in layers] for t in range(tasks)]


def format_open(per_layer: Sequence[Sequence[int]]) -> str:
    """``{0,2} {1} {}``: one set of open blocks per routed layer."""
    return " ".join("{" + ",".join(map(str, blocks)) + "}" for blocks in per_layer)


def route_cells(learner: Mapping[str, Any], routing: Mapping[str, Any]) -> list[str] | None:
    """Each task's route as printed: its open gates for a gated router, else its blocks (``0 2 1``); None without routes."""
    opened = open_gates(learner, routing)
    if opened is not None:
        return [format_open(task) for task in opened]
    routes = routing.get("routes")
    if routes is None:
        return None
    return [" ".join(map(str, route)) for route in routes]

"""Flags on a router that did not route: read from one trial's results.json, with the numbers behind them.

A battery's verdict says whether a method beat the shared bottom, not whether the method did what
its name says. Two failures pass silently and make a verdict misleading: a gated router (the
hard-concrete router, an SNR model) whose L0 penalty never closed a gate is a wider shared
network, not a learned architecture; and a learned router whose policies are deterministic
after the first epoch chose its routes from the random weights of epoch 1 (WPL at a router
learning rate of 0.1 does on the grouped synthetic tasks), so it found no structure. The
function here is pure (a results dict in, flags out), so that ``run``, ``report`` and the suite
table can all print the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing_rl.analysis.gate_routes import gated_layers

GATES_OPEN = "every gate stayed open"
POLICY_COLLAPSED = "policy collapsed in epoch 1"

COLLAPSED_PERPLEXITY = 1.05
"""A policy whose perplexity is at most this is deterministic for the flag: one block holds nearly
all its mass (1.05 is e.g. 0.99 on one of 8 blocks)."""


@dataclass(frozen=True)
class RoutingFlag:
    """One flag: its name (:data:`GATES_OPEN` or :data:`POLICY_COLLAPSED`), the epoch it was read at,
    the numbers behind it and a one-line message to print."""

    name: str
    epoch: int
    numbers: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def routing_flags(results: Mapping[str, Any]) -> list[RoutingFlag]:
    """The flags that apply to one trial's ``results.json`` (as a dict), in a fixed order; [] when none.

    * :data:`GATES_OPEN`: a gated router's serving gates (``routing.gates`` of the last epoch, else
      its policy: a gated router's policy is its normalised gates) are all open in every routed layer
      for every task; or a gated model's (``gates``: ``open`` of ``total``) are all open.
    * :data:`POLICY_COLLAPSED`: a router with learned routing parameters and more than one block
      per layer whose every task's policy perplexity is at most :data:`COLLAPSED_PERPLEXITY` in
      every routed layer after its first routing epoch (epoch 1 unless ``--warmup-epochs``).

    Fixed routers (shared bottom, no sharing, fixed random) and runs with no epoch get no flag.
    """
    epochs = results.get("epochs") or []
    if not epochs:
        return []
    learner = results.get("learner") or {}
    flags = [flag for flag in (_gates_open(learner, epochs[-1]), _collapsed(learner, epochs)) if flag is not None]
    return flags


def flag_lines(results: Mapping[str, Any], name: str | None = None) -> list[str]:
    """``warning: ...`` lines of :func:`routing_flags`, each prefixed by ``name`` (a run or trial) if given."""
    where = f"{name}: " if name else ""
    return [f"warning: {where}{flag.name}: {flag.message}" for flag in routing_flags(results)]


def _gates_open(learner: Mapping[str, Any], last: Mapping[str, Any]) -> RoutingFlag | None:
    epoch = int(last.get("epoch", 0))
    model_gates = last.get("gates")
    if isinstance(model_gates, Mapping) and model_gates.get("total"):  # a gated multi-task model (SNR)
        opened, total = int(model_gates["open"]), int(model_gates["total"])
        if opened < total:
            return None
        return RoutingFlag(GATES_OPEN, epoch, {"open": opened, "total": total},
                           f"{opened} of {total} gates open at epoch {epoch}: the L0 penalty pruned nothing (raise l0_lambda)")  # fmt: skip
    layers = gated_layers(learner, last.get("routing") or {})
    if not layers:
        return None
    per_layer = [(sum(v > 0 for row in layer for v in row), sum(len(row) for row in layer)) for layer in layers]
    if any(opened < total for opened, total in per_layer):
        return None
    names = list(learner.get("routed_layers") or [f"layer {d}" for d in range(len(layers))])
    counts = ", ".join(f"{name} {opened}/{total}" for name, (opened, total) in zip(names, per_layer))
    return RoutingFlag(GATES_OPEN, epoch, {"open_per_layer": [o for o, _ in per_layer], "gates_per_layer": [t for _, t in per_layer]},
                       f"all gates open at epoch {epoch} ({counts}): a wider shared network, not a learned route (raise l0_lambda)")  # fmt: skip


def _collapsed(learner: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> RoutingFlag | None:
    if not learner.get("router_parameters") or max(learner.get("blocks_per_layer") or [1]) < 2:
        return None  # fixed routes, or one block: a perplexity of 1 is by construction
    first = next((e for e in epochs if (e.get("routing") or {}).get("active", False)), None)
    if first is None or not first["routing"].get("perplexity"):
        return None
    perplexities = [float(p) for layer in first["routing"]["perplexity"] for p in layer]
    highest = max(perplexities)
    if highest > COLLAPSED_PERPLEXITY:
        return None
    epoch = int(first.get("epoch", 1))
    rate = learner.get("router_lr")
    at = f" at router lr {rate:g}" if isinstance(rate, (int, float)) else ""
    return RoutingFlag(POLICY_COLLAPSED, epoch, {"max_perplexity": highest, "router_lr": rate},
                       f"every task's policy is deterministic after epoch {epoch}{at} (largest perplexity {highest:.3f}): "
                       "routes fixed before the network learned anything (lower --router-lr)")  # fmt: skip

"""Which trials ``suite run`` offers to one process together (a population), and how many.

Only the plan: which trials may share a process is read from their configurations here; whether
they really stack is settled on their built networks and routers
(:func:`~routing_rl.training.loop.population.stackable_groups`), and the runner
(:mod:`routing_rl.suites.runner`) trains them.
"""

from __future__ import annotations

import json
from pathlib import Path

from routing_rl.suites.spec import Trial

AUTO_POPULATION = 10
"""Trials that ``suite run`` trains together in one process unless ``--population`` says otherwise
(:data:`DEFAULT_POPULATION`, ``auto``): two runs' seeds of the standard battery, so that WPL and
REINFORCE, which differ only in their router, train as one. On the battery's 50,000-row table (2
epochs, one worker, one thread, one run after the other) populations of 10 trained it in 138 s,
populations of 5 in 152 s (commit 8733f13, before the models were stacked); populations gain with their size (benchmarks/README.md). Under ``auto``
convolutional networks on a CPU train alone (:data:`~routing_rl.training.loop.run_sequence.CONVOLUTIONS_ALONE`)."""

DEFAULT_POPULATION = "auto"
"""``--population``'s default: :data:`AUTO_POPULATION`, where a population is measured to pay."""

MAX_POPULATION = 64
"""The largest population ``--population`` takes."""


def population_size(population: int | str) -> int:
    """The most trials of one population: ``population`` itself, :data:`AUTO_POPULATION` for ``auto``."""
    return AUTO_POPULATION if population == "auto" else int(population)


MEMBER_OPTIONS = ("seed", "logdir", "agent", "agent_options", "lr", "router_lr", "lr_milestones", "lr_decay", "grad_clip",
                  "grad_clip_mode", "reward", "collab_reward", "collab_window", "collab_form", "loss_reduction")  # fmt: skip
"""Options in which the members of one population may differ: each member keeps its own seed, router,
rates, schedule, rewards, clipping and loss reduction. Whether two trials stack is settled on their
built networks and routers (:func:`~routing_rl.training.loop.population.stackable_groups`); these
options only decide which trials are offered to one process together."""


def populations(todo: list[tuple[Trial, Path]], size: int) -> list[list[tuple[Trial, Path]]]:
    """The trials to train, in populations of at most ``size``, in the order planned: a run's seeds
    stay together (split only when more than ``size`` are left to train), and runs of routers that
    differ only in :data:`MEMBER_OPTIONS` and route alike (hard or soft) share a population where
    their seeds fit (first fit). A multi-task model's seeds go together (they run as one model)."""
    from routing_rl.training.setup.composition import agent_class, is_router_class

    def key(trial: Trial, drop: tuple[str, ...]) -> str:
        return json.dumps({k: v for k, v in trial.config.to_dict().items() if k not in drop}, sort_keys=True, default=str)

    def offered_with(trial: Trial) -> str:
        cls = agent_class(trial.config.agent)
        if not is_router_class(cls):
            return key(trial, ("seed", "logdir"))
        return json.dumps([cls.routes_soft, key(trial, MEMBER_OPTIONS)])

    groups: dict[str, dict[str, list[tuple[Trial, Path]]]] = {}
    for trial, path in todo:
        groups.setdefault(offered_with(trial), {}).setdefault(key(trial, ("seed", "logdir")), []).append((trial, path))
    chunks: list[list[tuple[Trial, Path]]] = []
    for runs in groups.values():
        pieces = [run[i:i + size] for run in runs.values() for i in range(0, len(run), size)]
        packed: list[list[tuple[Trial, Path]]] = []
        for piece in pieces:
            home = next((chunk for chunk in packed if len(chunk) + len(piece) <= size), None)
            if home is None:
                packed.append(list(piece))
            else:
                home.extend(piece)
        chunks += packed
    order = {id(pair[0]): n for n, pair in enumerate(todo)}
    return sorted(chunks, key=lambda chunk: order[id(chunk[0][0])])


MEMBER_COSTS: dict[str, float] = {"unrouted": 0.7, "fixed routes": 1.0, "learned routes": 1.5, "soft routes": 2.0, "model": 1.7}
"""What one member-epoch costs, by what its trial trains (:func:`member_kind`), in member-epochs of a
fixed-route network on the same data: a network without routed layers runs one block per layer;
a router that learns its routes acts and learns every step and is drawn every epoch; soft routes
(gates) run every block of a routed layer on every sample; a multi-task model is mapped over its
members. Measured on the battery's 50,000-row table (``benchmarks/battery_wall.py``'s table, 20
epochs, ``suite run --workers 2 --threads 1 --population auto``, commit 27b5f3f): a population's
seconds over its member-epochs were 0.58 for the shared bottom (``routed = "none"``), 0.86-0.87
for no-sharing and fixed-random, 1.23 for WPL and REINFORCE (a population of 10), 1.68 for the
hard-concrete gates, 1.38 and 1.60 for SNR-Trans and MMoE. The order of the costs is what
:func:`longest_first` needs; an earlier single factor (2 for every member that was not fixed)
started the shared bottom before no-sharing and fixed-random, and left one worker training alone
for about 40 s at the end of that battery."""


def member_kind(trial: Trial) -> str:
    """Which :data:`MEMBER_COSTS` entry a trial's member-epochs cost."""
    from routing_rl.training.setup.composition import agent_class, is_router_class

    cls = agent_class(trial.config.agent)
    if not is_router_class(cls):
        return "model"
    if trial.config.routed == "none":
        return "unrouted"
    if not cls.learns_routes:
        return "fixed routes"
    return "soft routes" if cls.routes_soft else "learned routes"


def member_cost(trial: Trial) -> float:
    """A trial's expected share of a population's time, in fixed-route member-epochs (:data:`MEMBER_COSTS`)."""
    return trial.config.epochs * MEMBER_COSTS[member_kind(trial)]


def longest_first(chunks: list[list[tuple[Trial, Path]]]) -> list[list[tuple[Trial, Path]]]:
    """The populations in the order several workers should start them: the most expected time first
    (:func:`member_cost`), so that the last to start are short and no worker is left alone with a
    long one at the end (longest processing time first; ties keep the planned order)."""
    return sorted(chunks, key=lambda chunk: sum(member_cost(trial) for trial, _ in chunk), reverse=True)

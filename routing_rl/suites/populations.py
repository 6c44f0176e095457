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


LEARNING_MEMBER_COST = 2.0
"""What one member costs that learns its routes (WPL, REINFORCE, gates) or is a multi-task model,
in members with fixed routes (shared bottom, no-sharing, fixed-random) on the same data and epochs:
its router acts, learns and is drawn every step and epoch, or its model is mapped. On the battery's
50,000-row table (``benchmarks/battery_wall.py``'s, 20 epochs, populations of 5 or 10, ``suite run
--workers 2 --threads 1``, commit 1a65fb4) a member-epoch took 0.72-1.11 s with fixed routes and
1.85-2.53 s for the others: each population's seconds on ``suite run``'s lines over its epochs and members."""


def member_cost(trial: Trial) -> float:
    """A trial's expected share of a population's time, in fixed-route member-epochs (:data:`LEARNING_MEMBER_COST`)."""
    from routing_rl.training.setup.composition import agent_class, is_router_class

    cls = agent_class(trial.config.agent)
    fixed = is_router_class(cls) and not cls.learns_routes
    return trial.config.epochs * (1.0 if fixed else LEARNING_MEMBER_COST)


def longest_first(chunks: list[list[tuple[Trial, Path]]]) -> list[list[tuple[Trial, Path]]]:
    """The populations in the order several workers should start them: the most expected time first
    (:func:`member_cost`), so that the last to start are short and no worker is left alone with a
    long one at the end (longest processing time first; ties keep the planned order)."""
    return sorted(chunks, key=lambda chunk: sum(member_cost(trial) for trial, _ in chunk), reverse=True)

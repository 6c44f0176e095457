"""Shared machinery of the tabular RL routers (WPL, REINFORCE, Q-learning).

In the task-id-only routing network every agent (task ``t``) has one small table per routed layer
``d``, so all three learners keep a ``[num_tasks, num_layers, num_blocks]`` tensor and index it by
``(task, depth, block)``. The helpers here turn a finished :class:`EpisodeBatch` into ``[L, B]``
tensors (one row per routed layer, one column per episode) so that the losses are a handful of
gathers and scatters, never a Python loop over samples; and they sample blocks from a batch of
categorical distributions with the router's own generator, which the trainer reseeds every epoch
(that is what makes a resumed run replay the same routes).

The leading underscore keeps :mod:`routing_rl.agents` from importing this module as a router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from routing_rl.agents.base import RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation


@dataclass(frozen=True)
class EpisodeSteps:
    """A finished batch of routing episodes as ``[L, B]`` tensors (layer-major).

    ``returns[d, i]`` is the discounted return of episode ``i`` from routed layer ``d`` on
    (:meth:`EpisodeBatch.returns`); ``rewards[d, i]`` the reward received right after step ``d``
    (the step reward, plus the final reward on the last step).
    """

    tasks: torch.Tensor
    depths: torch.Tensor
    blocks: torch.Tensor
    returns: torch.Tensor
    rewards: torch.Tensor

    @property
    def num_layers(self) -> int:
        return int(self.tasks.shape[0])

    @property
    def batch_size(self) -> int:
        return int(self.tasks.shape[1])


def hard_blocks(decision: RoutingDecision) -> torch.Tensor:
    """The ``[B]`` block indices of a hard decision; tabular RL routers never emit soft ones."""
    if not decision.is_hard or decision.blocks.dim() != 1:
        raise ValueError("tabular RL routers learn from hard routing decisions (one block per sample) only")
    return decision.blocks


def episode_steps(episodes: EpisodeBatch, discount: float = 1.0) -> EpisodeSteps:
    """Stack the per-layer observations, decisions and rewards of ``episodes`` into ``[L, B]`` tensors."""
    if episodes.num_steps == 0:
        raise ValueError("the episodes have no routing step: the network has no routed layer")
    observations = episodes.observations[: episodes.num_steps]
    tasks = torch.stack([obs.task_ids for obs in observations])
    depths = torch.tensor([obs.depth for obs in observations], dtype=tasks.dtype, device=tasks.device).unsqueeze(1).expand_as(tasks)
    blocks = torch.stack([hard_blocks(dec) for dec in episodes.decisions])
    returns = torch.stack(episodes.returns(discount)).float()
    rewards = torch.stack([r.detach() for r in episodes.step_rewards]).float()
    rewards[-1] = rewards[-1] + episodes.final_reward.detach().float()
    return EpisodeSteps(tasks.long(), depths.long(), blocks.long(), returns, rewards)


def population_steps(batches: Sequence[EpisodeBatch], discount: float, num_tasks: int) -> EpisodeSteps:
    """The steps of several routers' episode batches as one ``[L, P * B]`` :class:`EpisodeSteps`:
    router ``p``'s episodes in columns ``p * B`` to ``(p + 1) * B`` and its tasks numbered from
    ``p * num_tasks``, so that its tables, concatenated along the task axis, are read and averaged
    by the same :func:`taken`, :func:`per_cell` and :func:`moving_average_` as one router's are.

    Every column holds the numbers :func:`episode_steps` gives that router alone (elementwise
    operations in the same order; tested bit for bit). Every batch has the same number of steps
    (one step reward each) and of episodes (:func:`stackable_episodes`)."""
    members, layers, width = len(batches), batches[0].num_steps, batches[0].final_reward.shape[0]
    observations = [obs for batch in batches for obs in batch.observations[:layers]]

    def side_by_side(member_major: torch.Tensor) -> torch.Tensor:  # [P, L, B] -> [L, P * B]
        return member_major.view(members, layers, width).transpose(0, 1).reshape(layers, members * width)

    offsets = torch.arange(members, device=batches[0].final_reward.device).view(members, 1, 1) * num_tasks
    tasks = side_by_side(torch.stack([obs.task_ids for obs in observations]).long().view(members, layers, width) + offsets)
    depths = torch.tensor([obs.depth for obs in observations], dtype=torch.long, device=tasks.device)
    depths = side_by_side(depths.view(members, layers, 1).expand(members, layers, width))
    blocks = side_by_side(torch.stack([hard_blocks(dec) for batch in batches for dec in batch.decisions]).long())
    step_rewards = torch.stack([r.detach() for batch in batches for r in batch.step_rewards]).view(members, layers, width)
    final = torch.stack([batch.final_reward.detach() for batch in batches])
    running, returns = final, [final] * layers  # EpisodeBatch.returns' recursion, on every member's rows at once
    for d in reversed(range(layers)):
        if d < layers - 1:
            running = running * discount
        running = step_rewards[:, d] + running
        returns[d] = running
    rewards = step_rewards.float()
    rewards[:, -1] = rewards[:, -1] + final.float()
    return EpisodeSteps(tasks, depths, blocks, torch.stack(returns).float().reshape(layers, members * width), side_by_side(rewards))


def stackable_episodes(episodes: EpisodeBatch) -> tuple[object, ...] | None:
    """``(steps, episodes, reward dtypes)`` of a batch :func:`population_steps` can lay beside others
    with the same; None for one it cannot (no routed layer, or a step without its one step reward)."""
    if episodes.num_steps == 0 or len(episodes.step_rewards) != episodes.num_steps:
        return None
    if any(not d.is_hard or d.blocks.dim() != 1 for d in episodes.decisions):
        return None
    return episodes.num_steps, int(episodes.final_reward.shape[0]), episodes.final_reward.dtype, *(r.dtype for r in episodes.step_rewards)


class LearnsTogether:
    """A tabular router whose loss, for several routers with the same options and batch shapes
    (:meth:`together_key`), runs once over their tables concatenated along the task axis and their
    steps side by side (:func:`population_steps`): :meth:`Router.loss_together` for WPL and REINFORCE.

    Each router gets the loss its own :meth:`loss` would give, and its buffers (values, baselines)
    the same update: every operation is elementwise, or reduces along a row of one router's
    numbers in the order it would alone (tested bit for bit against each router's own loss)."""

    def together_key(self, episodes: EpisodeBatch) -> tuple[object, ...] | None:
        """What routers must share to learn in one pass on these episodes; None: this one learns alone."""
        raise NotImplementedError

    @classmethod
    def stacked_losses(cls, routers: Sequence[Any], episodes: Sequence[EpisodeBatch]) -> list[torch.Tensor]:
        """Every router's loss, in one pass (every router and batch of one :meth:`together_key`)."""
        raise NotImplementedError

    @classmethod
    def loss_together(cls, routers: Sequence[Any], episodes: Sequence[EpisodeBatch]) -> list[torch.Tensor | None]:
        """:meth:`Router.loss_together`: the routers of one key in one pass, any other alone."""
        losses: list[torch.Tensor | None] = [None] * len(routers)
        alike: dict[tuple[object, ...], list[int]] = {}
        for i, (router, batch) in enumerate(zip(routers, episodes)):
            key = router.together_key(batch)
            if key is None:
                losses[i] = router.loss(batch)
            else:
                alike.setdefault(key, []).append(i)
        for members in alike.values():
            if len(members) == 1:
                losses[members[0]] = routers[members[0]].loss(episodes[members[0]])
                continue
            first = type(routers[members[0]])
            for i, loss in zip(members, first.stacked_losses([routers[i] for i in members], [episodes[i] for i in members])):
                losses[i] = loss
        return losses


def table_key(table: torch.Tensor) -> tuple[object, ...]:
    """What two routers' tables must share to be concatenated: shape, dtype and device."""
    return (tuple(table.shape), table.dtype, table.device)


def taken(table: torch.Tensor, steps: EpisodeSteps) -> torch.Tensor:
    """``table[task, depth, block]`` for every step of every episode: ``[L, B]``."""
    return table[steps.tasks, steps.depths, steps.blocks]


def per_cell(table: torch.Tensor, steps: EpisodeSteps) -> torch.Tensor:
    """``table[task, depth]`` for every step of every episode: ``[L, B, ...]``."""
    return table[steps.tasks, steps.depths]


def cell_means(values: torch.Tensor, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` per flat cell ``index`` (same shape) and the count per cell, both ``[size]``.

    Cells that no value falls into get mean 0 and count 0.
    """
    flat_values = values.detach().reshape(-1).float()
    # one index_add over [value, 1] pairs: each column summed as its own index_add would sum it
    pairs = torch.stack([flat_values, torch.ones_like(flat_values)], dim=1)
    sums, counts = flat_values.new_zeros(size, 2).index_add_(0, index.reshape(-1), pairs).unbind(1)
    return sums / counts.clamp_min(1.0), counts


def moving_average_(table: torch.Tensor, values: torch.Tensor, index: torch.Tensor, rate: float) -> None:
    """In place: ``table[c] += rate * (mean of values in cell c - table[c])`` for every visited cell ``c``.

    ``index`` holds flat indices into ``table`` (a buffer, updated without autograd); ``rate`` = 1
    replaces a visited cell by the batch mean, smaller rates average over batches (an exponential
    moving average, which tracks returns that drift as the network's weights are trained).
    """
    with torch.no_grad():
        flat = table.view(-1)
        means, counts = cell_means(values, index, flat.numel())
        # where(), not flat[visited] += ...: the same numbers without the three boolean gathers per step
        flat.copy_(torch.where(counts > 0, flat + rate * (means - flat), flat))


def task_layer_index(steps: EpisodeSteps, num_layers: int) -> torch.Tensor:
    """Flat ``task * num_layers + depth`` index of every step, for ``[T, L]`` tables."""
    return steps.tasks * num_layers + steps.depths


def task_layer_block_index(steps: EpisodeSteps, num_layers: int, num_blocks: int) -> torch.Tensor:
    """Flat ``(task * num_layers + depth) * num_blocks + block`` index of every step, for ``[T, L, M]`` tables."""
    return task_layer_index(steps, num_layers) * num_blocks + steps.blocks


def sample_blocks(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One block per row of ``probs`` (``[B, M]``, rows sum to 1), drawn with ``generator``.

    Sampling happens on the generator's device (the CPU generator of :class:`Router`), so a router
    moved to a GPU still draws the same blocks from the same seed. The draw is
    ``torch.multinomial(probs, 1)``'s own: ``argmax(p / q)`` with ``q ~ Exp(1)`` from the generator
    (the same blocks, tested), written out so that a population's routers draw in one pass
    (:func:`categorical_decisions`).
    """
    return _blocks_from_noise(probs, [probs.shape[0]], [generator])


def _blocks_from_noise(probs: torch.Tensor, rows: Sequence[int], generators: Sequence[torch.Generator]) -> torch.Tensor:
    """``argmax(p / q)`` per row, ``q ~ Exp(1)``: the ``rows[k]`` rows after the earlier ones drawn with ``generators[k]``."""
    gen_device = generators[0].device
    p = probs.detach().to(gen_device, torch.float64)
    q = torch.empty_like(p)
    start = 0
    for n, generator in zip(rows, generators):
        q[start : start + n].exponential_(1.0, generator=generator)
        start += n
    return torch.div(p, q, out=q).argmax(dim=1).to(probs.device)


def categorical_decision(probs: torch.Tensor, explore: bool, generator: torch.Generator) -> RoutingDecision:
    """Sample (``explore``) or take the most likely block of every row of ``probs``; log-probs attached.

    The log-probabilities are detached: the routers recompute whatever they differentiate from the
    episode trace in :meth:`Router.loss`, so no graph is kept alive between acting and learning.
    """
    blocks = sample_blocks(probs, generator) if explore else probs.argmax(dim=1)
    return RoutingDecision(blocks, log_probs=_chosen_log_probs(probs, blocks))


def _chosen_log_probs(probs: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """``log probs[i, blocks[i]]`` of every row, detached (a zero probability floored at 1e-30)."""
    return torch.log(probs.detach().gather(1, blocks.unsqueeze(1)).squeeze(1).clamp_min(1e-30))


def categorical_decisions(probs: Sequence[torch.Tensor], generators: Sequence[torch.Generator]) -> list[RoutingDecision]:
    """``categorical_decision(probs[k], True, generators[k])`` for every ``k``, in one pass over all rows:
    each generator draws its own rows' noise, in the order it would alone, and the division, argmax
    and log-probabilities run once (a population's routers at one routed layer)."""
    rows = [p.shape[0] for p in probs]
    every = torch.cat([p.detach() for p in probs])
    blocks = _blocks_from_noise(every, rows, generators)
    log_probs = _chosen_log_probs(every, blocks)
    return [RoutingDecision(b, log_probs=lp) for b, lp in zip(blocks.split(rows), log_probs.split(rows))]


class SamplesCategorically:
    """A router whose exploring act is :func:`categorical_decision` on :meth:`exploring_probabilities`
    with its own generator (WPL, REINFORCE): a population's such routers act in one pass
    (:func:`categorical_decisions`), with the decisions each would make alone."""

    generator: torch.Generator

    def exploring_probabilities(self, obs: RoutingObservation) -> torch.Tensor:
        """The ``[B, M]`` probabilities that ``act(obs, explore=True)`` samples from."""
        raise NotImplementedError

    @classmethod
    def act_together(cls, routers: Sequence[Any], observations: Sequence[RoutingObservation]) -> list[RoutingDecision]:
        """:meth:`Router.act_together`: every router's draw from its own generator, sampled in one pass."""
        probs = [router.exploring_probabilities(obs) for router, obs in zip(routers, observations)]
        return categorical_decisions(probs, [router.generator for router in routers])


def uniform_table(num_tasks: int, num_layers: int, num_blocks: int) -> torch.Tensor:
    """The uniform policy ``1 / M`` for every task, layer and block."""
    return torch.full((num_tasks, num_layers, num_blocks), 1.0 / num_blocks)


def check_discount(discount: float) -> None:
    """Discounts outside ``[0, 1]`` are a configuration error for these finite-horizon routers."""
    if not 0.0 <= discount <= 1.0:
        raise RouterConfigError(f"discount must be in [0, 1], got {discount}")

"""One batch of every member through a population's stacked network (:mod:`routing_rl.network.stacked_population`).

As :func:`~routing_rl.training.loop.population.play`: each member's router routes its own samples
with its own generator, each member's env and learner make its episodes and losses from its own
rows of the logits. The members' batches are laid out ``[P, N, features]`` (a member with fewer
rows, or none this step, padded with zero rows that no loss reads, so they add nothing to any
gradient), and the play also says which blocks of every stacked layer had a member's samples:
the blocks its Adam steps (:class:`~routing_rl.training.loop.stacked_weights.StackedWeights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from routing_rl.agents.base import Router
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation
from routing_rl.envs.batched import hidden_summary
from routing_rl.network.stacked_population import StackedPopulationNetwork
from routing_rl.training.loop.learner import StepResult


def _laid_out(pieces: Mapping[int, torch.Tensor], members: int, rows: int) -> torch.Tensor:
    """Member ``p``'s rows in ``[p, :len]`` of a ``[members, rows, ...]`` tensor, zeros elsewhere."""
    if len(pieces) == members and all(t.shape[0] == rows for t in pieces.values()):
        return torch.stack([pieces[p] for p in range(members)])
    first = next(iter(pieces.values()))
    out = first.new_zeros((members, rows) + tuple(first.shape[1:]))
    for p, piece in pieces.items():
        out[p, : piece.shape[0]] = piece
    return out


def _used(index: torch.Tensor, valid: torch.Tensor, blocks: int) -> torch.Tensor:
    """``[P, B]``: the blocks that some valid row of each member is sent to (``index`` ``[P, N]``)."""
    counts = torch.zeros(index.shape[0], blocks, dtype=valid.dtype, device=valid.device)
    return counts.scatter_add_(1, index, valid) > 0


def _dense(decision: RoutingDecision, blocks: int) -> torch.Tensor:
    """A soft decision as one weight per block ``[n, B]`` (a block listed twice: its weights summed,
    as the dispatcher adds its outputs). Pairs of weight exactly zero pass no gradient back to it, as
    the dispatcher skips them."""
    weights = decision.weights
    assert weights is not None
    kept = weights.masked_fill(weights == 0, 0.0)
    return kept.new_zeros(weights.shape[0], blocks).scatter_add(1, decision.blocks, kept)


def play_stacked(network: StackedPopulationNetwork, trainers: Sequence[Any], batches: Mapping[int, Any],
                 epoch: int) -> tuple[dict[int, StepResult], list[torch.Tensor]]:  # fmt: skip
    """The steps of the members with a batch (``batches``: member slot -> batch; ``trainers``: every
    slot's trainer) and, per stacked layer, the ``[P, B]`` blocks that had samples (module docstring)."""
    members = len(trainers)
    learners = {p: trainers[p].learner for p in batches}
    inputs = {p: learners[p]._inputs(batch) for p, batch in batches.items()}
    sizes = {p: x.shape[0] for p, (x, _, _) in inputs.items()}
    rows = max(sizes.values())
    x = _laid_out({p: x for p, (x, _, _) in inputs.items()}, members, rows)
    tasks = _laid_out({p: t for p, (_, _, t) in inputs.items()}, members, rows)
    valid = _laid_out({p: torch.ones(n, dtype=x.dtype, device=x.device) for p, n in sizes.items()}, members, rows)
    routers = {p: learner.routing_policy(epoch) for p, learner in learners.items()}
    observations: dict[int, list[RoutingObservation]] = {p: [] for p in batches}
    decisions: dict[int, list[RoutingDecision]] = {p: [] for p in batches}
    routed_used: list[torch.Tensor] = []
    h = network.begin(x, tasks)
    observe_hidden = next(iter(learners.values())).env.observe_hidden
    for depth in range(network.num_routed):
        blocks = network.blocks_per_layer[depth]
        for p in routers:
            hidden = hidden_summary(h[p, : sizes[p]]) if observe_hidden else None
            observations[p].append(RoutingObservation(inputs[p][2], depth, hidden))
        chosen = act_together(routers, {p: observations[p][-1] for p in routers})
        for p, decision in chosen.items():
            decisions[p].append(decision)
        if all(d.is_hard for d in chosen.values()):
            index = _laid_out({p: d.blocks for p, d in chosen.items()}, members, rows)
            decision = RoutingDecision(index)
            routed_used.append(_used(index, valid, blocks))
        elif not any(d.is_hard for d in chosen.values()):
            weights = _laid_out({p: _dense(d, blocks) for p, d in chosen.items()}, members, rows)
            decision = RoutingDecision(torch.zeros(0, dtype=torch.long), weights)
            routed_used.append(((weights != 0) & (valid.unsqueeze(-1) > 0)).any(1))
        else:
            raise ValueError("a population's members must all route hard, or all soft")
        h = network.advance(depth, h, tasks, decision)
    episodes = {}
    for p, learner in learners.items():
        obs = observations[p] or [RoutingObservation(inputs[p][2], 0)]  # no routed layer: one observation, no steps
        episodes[p] = learner.env.episodes(obs, decisions[p], h[p, : sizes[p]], inputs[p][1], inputs[p][2])
    return member_steps(learners, routers, batches, episodes), _layer_masks(network, tasks, valid, routed_used)


def losses_together(routers: Mapping[int, Router], episodes: Mapping[int, EpisodeBatch]) -> dict[int, torch.Tensor | None]:
    """Every learning member's router loss on its episodes: the routers that learn alike (one
    :meth:`Router.loss_together`) in one call, each getting the loss its own ``loss`` gives."""
    return _by_class_method(routers, "loss_together", episodes)


def act_together(routers: Mapping[int, Router], observations: Mapping[int, RoutingObservation]) -> dict[int, RoutingDecision]:
    """Every member's exploring decision on its observation: the routers that act alike (one
    :meth:`Router.act_together`: WPL beside REINFORCE, say) in one call, each from its own generator."""
    return _by_class_method(routers, "act_together", observations)


def _by_class_method(routers: Mapping[int, Router], method: str, arguments: Mapping[int, Any]) -> dict[int, Any]:
    """``type(router).method(routers, arguments)`` once per group of routers that share that class
    method's function (a subclass that does not override it shares its parent's), mapped back to
    each member."""
    alike: dict[object, list[int]] = {}
    for p, router in routers.items():
        bound = getattr(type(router), method)
        alike.setdefault(getattr(bound, "__func__", bound), []).append(p)
    results: dict[int, Any] = {}
    for members in alike.values():
        together = getattr(type(routers[members[0]]), method)
        results.update(zip(members, together([routers[p] for p in members], [arguments[p] for p in members])))
    return results


def member_steps(learners: Mapping[int, Any], routers: Mapping[int, Router], batches: Mapping[int, Any],
                 episodes: Mapping[int, EpisodeBatch]) -> dict[int, StepResult]:  # fmt: skip
    """Every member's step result from its played episodes, the learning routers' losses computed
    together (:func:`losses_together`; a member in warm-up, played by shared routes, learns none)."""
    losses = losses_together({p: router for p, router in routers.items() if router is learners[p].router}, episodes)
    return {p: learner.step_result(batches[p], episodes[p], routers[p], losses.get(p)) for p, learner in learners.items()}


def _layer_masks(network: StackedPopulationNetwork, tasks: torch.Tensor, valid: torch.Tensor, routed: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every stacked layer's ``[P, B]`` blocks in use: shared ones where a member has rows, per-task
    ones and heads by the tasks present, routed ones as played."""
    present = (valid > 0).any(1, keepdim=True)
    masks, depth = [], 0
    for i, layer in enumerate(network.layers):
        mode = network.specs[i].mode
        if mode == "routed":
            masks.append(routed[depth])
            depth += 1
        elif mode == "per-task":
            masks.append(_used(tasks, valid, layer.blocks))
        else:
            masks.append(present)
    if network.heads is not None:
        masks.append(_used(tasks, valid, network.heads.blocks))
    return masks

"""A population's stacked weights trained as each member's own: Adam moments and step counts per
block, each member's learning rate and gradient clipping, and the weights written back.

:class:`~routing_rl.network.stacked_population.StackedPopulationNetwork` holds the members' linear
blocks as a few ``[P, ...]`` tensors for an epoch. Here they are stepped as each member's Adam
would step its blocks: every block has its own moments and step count (taken from the member's
optimizer when the epoch begins), a block without samples in a step is left alone (not even its
moments decay, as torch leaves a parameter whose gradient is None), each member has its own
learning rate, and ``--grad-clip`` scales a member's gradients by its own norm. When the epoch
ends, weights, moments and step counts are written back into the members' modules and optimizer
states, which then look as if each member had trained alone (a block never stepped has no state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.optimizer import _get_scalar_dtype

from routing_rl.network.stacked_population import StackedPopulationNetwork, layer_blocks, stacked_problem
from routing_rl.training.loop.clipping import member_clip_factors

PLAIN_ADAM = {"weight_decay": 0, "amsgrad": False, "maximize": False, "capturable": False, "differentiable": False}
"""Adam options the stacked step supports (the trainer's defaults); other settings keep the members' modules."""

CLIP_MODES = ("norm", "public-code")


def weight_group(trainer: Any) -> tuple[torch.optim.Optimizer, dict[str, Any]] | None:
    """The optimizer and parameter group holding every weight of the member's network, if one group does."""
    weights = {id(p) for p in trainer.learner.weight_parameters}
    for optimizer in trainer.learner.optimizers.values():
        for group in optimizer.param_groups:
            if weights <= {id(p) for p in group["params"]}:
                return optimizer, group
    return None


def stacked_weights_problem(trainers: Sequence[Any]) -> str | None:
    """Why these members of a population (routed networks that stack) cannot train stacked weights
    (None when they can); they then train their own modules side by side."""
    if problem := stacked_problem([t.learner.network for t in trainers]):
        return problem
    for trainer in trainers:
        stacked = {id(p) for blocks in layer_blocks(trainer.learner.network) for p in blocks.parameters()}
        if stacked != {id(p) for p in trainer.learner.weight_parameters}:
            return "a member's weights are not all its layers' linear blocks"
    groups = [weight_group(t) for t in trainers]
    if any(g is None for g in groups):
        return "a member's weights are split over optimizers"
    for optimizer, group in groups:  # type: ignore[misc]
        if not isinstance(optimizer, torch.optim.Adam) or any(group.get(k, v) != v for k, v in PLAIN_ADAM.items()):
            return "the stacked step supports plain Adam only"
    if len({(tuple(g["betas"]), g["eps"]) for _, g in groups}) > 1:  # type: ignore[misc]
        return "their Adam betas or eps differ"
    if any(t.config.grad_clip is not None and t.config.grad_clip_mode not in CLIP_MODES for t in trainers):
        return "a member clips in a mode the stacked step does not know"
    return None


class StackedWeights:
    """The members' weights as one stacked network for an epoch, and their Adam step (module docstring).

    Every stacked tensor (each layer's weight and bias, all members) is a view into one flat
    buffer, and so are their gradients and Adam moments: Adam is a few operations on the whole
    population per step and a few per stacked tensor, not a dozen per block of every member."""

    def __init__(self, trainers: Sequence[Any]) -> None:
        if problem := stacked_weights_problem(trainers):
            raise ValueError(f"these members cannot train stacked weights: {problem}")
        self.trainers = list(trainers)
        self.network = StackedPopulationNetwork([t.learner.network for t in trainers])
        self.groups = [weight_group(t) for t in trainers]
        first = self.groups[0][1]  # type: ignore[index]
        self.beta1, self.beta2 = (float(b) for b in first["betas"])
        self.eps = float(first["eps"])
        layers = self.network.stacked
        members = len(self.trainers)
        device = layers[0].weight.device
        self.lr = torch.tensor([float(g["lr"]) for _, g in self.groups], dtype=torch.float64, device=device)  # type: ignore[misc]
        self.clip = [(t.config.grad_clip, t.config.grad_clip_mode) for t in trainers]
        self.block_offsets = [sum(layer.blocks for layer in layers[:i]) for i in range(len(layers))]
        self.total_blocks = sum(layer.blocks for layer in layers)
        self.steps = torch.zeros(members, self.total_blocks, dtype=torch.float64, device=device)
        """Adam's step count of every member's every block (weight and bias step together)."""
        tensors = [t for layer in layers for t in (layer.weight, layer.bias)]
        self.param = torch.cat([t.detach().reshape(-1) for t in tensors])
        self.grad = torch.zeros_like(self.param)
        self.exp_avg = torch.zeros_like(self.param)
        self.exp_avg_sq = torch.zeros_like(self.param)
        self.views: list[dict[str, tuple[torch.Tensor, ...]]] = []
        """Per layer: ``weight`` and ``bias``, each as (parameter, gradient, exp_avg, exp_avg_sq) views."""
        member_of, offset = [], 0
        for layer in layers:
            views = {}
            for name in ("weight", "bias"):
                shape = getattr(layer, name).shape
                n = shape.numel()
                views[name] = tuple(buffer[offset : offset + n].view(shape) for buffer in (self.param, self.grad, self.exp_avg, self.exp_avg_sq))
                leaf = views[name][0].detach().requires_grad_(True)
                leaf.grad = views[name][1]
                setattr(layer, name, leaf)
                member_of.append(torch.arange(members, device=device).repeat_interleave(n // members))
                offset += n
            self.views.append(views)
        self._member_of = torch.cat(member_of)
        """Each element's member (a member's clipping factor applies to its elements)."""
        self._tables = torch.zeros(4, members, self.total_blocks, dtype=self.param.dtype, device=device)
        """The step's per-block factors: exp_avg's weight, exp_avg_sq's decay, the bias correction, the step size."""
        self._ratio = torch.zeros_like(self.param)
        self._blocked = self._blocked_views()
        self._load()

    def _pairs(self):  # type: ignore[no-untyped-def]
        """(member, block, layer, its views, its block offset, the block's Linear) for every block of every member."""
        for layer, views, block_offset in zip(self.network.stacked, self.views, self.block_offsets):
            for p, linears in enumerate(layer.linears):
                for b, linear in enumerate(linears):
                    yield p, b, layer, views, block_offset, linear

    @torch.no_grad()
    def _load(self) -> None:
        for p, b, layer, views, block_offset, linear in self._pairs():
            state = self.groups[p][0].state  # type: ignore[index]
            for param, name, cut in ((linear.weight, "weight", layer.weight_of), (linear.bias, "bias", layer.bias_of)):
                held = state.get(param)
                if held:
                    self.steps[p, block_offset + b] = float(held["step"])
                    cut(views[name][2], p, b).copy_(held["exp_avg"])
                    cut(views[name][3], p, b).copy_(held["exp_avg_sq"])

    @torch.no_grad()
    def write_back(self) -> None:
        """Weights, moments and step counts into the members' modules and optimizers (module docstring)."""
        for p, b, layer, views, block_offset, linear in self._pairs():
            state = self.groups[p][0].state  # type: ignore[index]
            steps = float(self.steps[p, block_offset + b])
            for param, name, cut in ((linear.weight, "weight", layer.weight_of), (linear.bias, "bias", layer.bias_of)):
                param.copy_(cut(views[name][0], p, b))
                if steps == 0:
                    continue
                held = state[param]
                if not held:
                    held["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
                    held["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    held["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                held["step"].fill_(steps)
                held["exp_avg"].copy_(cut(views[name][2], p, b))
                held["exp_avg_sq"].copy_(cut(views[name][3], p, b))

    def zero_grad(self) -> None:
        """Zero the flat gradient, which backward accumulates into (every stacked tensor's ``grad`` is a view of it)."""
        self.grad.zero_()
        for layer, views in zip(self.network.stacked, self.views):
            for name in ("weight", "bias"):
                leaf = getattr(layer, name)
                if leaf.grad is None or leaf.grad.data_ptr() != views[name][1].data_ptr():
                    leaf.grad = views[name][1]

    @torch.no_grad()
    def clip_gradients(self) -> None:
        """Each member's ``--grad-clip`` over its own weights' gradients, as
        :func:`~routing_rl.training.loop.clipping.clip_weight_gradients` (the public code's mode
        lists every parameter twice: its norm is sqrt(2) times the norm, and the factor applies twice)."""
        if all(limit is None for limit, _ in self.clip):
            return
        squares = torch.zeros(len(self.clip), dtype=self.grad.dtype, device=self.grad.device)
        norm = squares.index_add_(0, self._member_of, self.grad * self.grad).sqrt()
        self.grad.mul_(member_clip_factors(norm, self.clip)[self._member_of])

    @torch.no_grad()
    def step(self, used: Sequence[torch.Tensor]) -> None:
        """One Adam step of the blocks ``used`` (one ``[P, B]`` bool mask per stacked layer: the
        blocks that had samples of a member that steps); the others are left exactly as they are.

        torch's Adam (foreach form: lerp, mul and addcmul, sqrt, divide, add eps, addcdiv), element by
        element; a block's step count, mask and bias corrections broadcast over its elements from
        ``[P, 1, B, 1]`` tables (float factors of exactly 0 or 1 where a block does not step: boolean
        selections are several times slower on CPU). A block that does not step has a gradient of
        exactly zero (no sample reached it), so the flat ``addcmul`` adds nothing to it."""
        mask = torch.cat(list(used), dim=1).to(self.steps.dtype)  # [P, total blocks]
        self.steps.add_(mask)
        t = self.steps.clamp(min=1)
        tables = self._tables
        tables[0].copy_(mask * (1 - self.beta1))  # exp_avg's lerp weight
        tables[1].copy_(1 - mask * (1 - self.beta2))  # exp_avg_sq's decay
        tables[2].copy_((1 - self.beta2**t) ** 0.5)  # the second bias correction's square root
        tables[3].copy_(self.lr.view(-1, 1) / (1 - self.beta1**t) * -mask)  # the step size
        for table, grad, exp_avg, exp_avg_sq, _ in self._blocked:
            exp_avg.lerp_(grad, table[0])
            exp_avg_sq.mul_(table[1])
        self.exp_avg_sq.addcmul_(self.grad, self.grad, value=1 - self.beta2)
        torch.sqrt(self.exp_avg_sq, out=self._ratio)
        for table, _, _, _, ratio in self._blocked:
            ratio.div_(table[2])
        torch.div(self.exp_avg, self._ratio.add_(self.eps), out=self._ratio)
        for table, _, _, _, ratio in self._blocked:
            ratio.mul_(table[3])
        self.param.add_(self._ratio)

    def _blocked_views(self) -> list[tuple[torch.Tensor, ...]]:
        """Per stacked tensor (each layer's weight and bias): its ``[4, P, 1, B, 1]`` view of the
        step's per-block tables, and its ``[P, rows, B, out]`` views of the gradient, the moments and
        the step's scratch buffer (made once: slicing them every step costs more than the arithmetic)."""
        members = self.steps.shape[0]
        out, offset = [], 0
        for layer, block_offset in zip(self.network.stacked, self.block_offsets):
            table = self._tables[:, :, block_offset : block_offset + layer.blocks].view(4, members, 1, layer.blocks, 1)
            for name in ("weight", "bias"):
                _, rows, columns = getattr(layer, name).shape
                n = members * rows * columns
                shape = (members, rows, layer.blocks, layer.out_features)
                out.append((table, *(b[offset : offset + n].view(shape) for b in (self.grad, self.exp_avg, self.exp_avg_sq, self._ratio))))
                offset += n
        return out

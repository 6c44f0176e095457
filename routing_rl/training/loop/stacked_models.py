"""A population of multi-task models (SNR-Trans, SNR-Aver, MMoE, ML-MMoE, the shared-bottom MLP)
run as one model: each parameter stacked over the members as one ``[P, ...]`` tensor for an epoch,
the forward mapped over the member axis (``torch.func.vmap`` of ``functional_call``), each member
stepped by its own Adam, and the weights and Adam states written back when the epoch ends.

Run one by one, P small models cost P times the Python and kernel launches of one; mapped, one
forward and one backward serve them all, as the stacked routed networks do
(:mod:`~routing_rl.training.loop.stacked_weights`). What keeps each member's gradient its own:

* every member reads its own batch (a shorter one is padded with zero rows whose outputs no loss
  reads: a model's outputs are computed row by row, without batch statistics);
* a member's hard-concrete gate noise is drawn from its own generator before the forward, gate by
  gate in the order its forward draws it (:meth:`~routing_rl.models.snr_base.SNRModel.gate_modules`)
  and of the shape it draws (one sample per batch, or per row), and handed to the gates
  (:attr:`~routing_rl.network.hard_concrete.HardConcreteGate.given_noise`): the same numbers as alone;
* the loss is each member's own task loss (its family's reduction) plus its own regularisation (its
  own ``l0_lambda``) on its slices of the stacked tensors;
* Adam per member: its learning rate per parameter group, its step counts, its moments, its
  gradient clipping, applied to its slice only; a member that does not step this batch (its epoch
  is over, or it diverged) is left exactly as it is.

Members stack when their models compute the same function of different numbers
(:func:`stacked_models_problem`); others run one by one, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.optim.optimizer import _get_scalar_dtype

from routing_rl.core.contracts import Batch
from routing_rl.network.hard_concrete import HardConcreteGate
from routing_rl.training.loop.clipping import member_clip_factors
from routing_rl.training.loop.learner import StepResult
from routing_rl.training.loop.stacked_weights import CLIP_MODES, PLAIN_ADAM

MEMBER_ATTRIBUTES = frozenset({"l0_lambda", "generator", "training"})
"""Plain attributes of a model (or one of its modules) in which stacked members may differ: the L0
weight only scales the member's own regularisation, the generator is the member's own noise."""


def model_signature(model: nn.Module) -> list[tuple[str, str, dict[str, Any], list[tuple[str, tuple[int, ...], str]]]]:
    """What must agree for two models to share one mapped forward: every module's type, its plain
    attributes (sizes, gate temperature and stretch, per-row noise) and its parameters' shapes."""
    out = []
    for name, module in model.named_modules():
        plain = {k: v for k, v in vars(module).items()
                 if not k.startswith("_") and k not in MEMBER_ATTRIBUTES and isinstance(v, (int, float, str, bool, tuple, list))}  # fmt: skip
        params = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters(recurse=False)]
        out.append((name, type(module).__qualname__, plain, params))
    return out


def parameter_groups(trainer: Any) -> dict[int, tuple[torch.optim.Optimizer, dict[str, Any]]] | None:
    """Each model parameter's optimizer and parameter group (by ``id``), or None when one is in none."""
    found: dict[int, tuple[torch.optim.Optimizer, dict[str, Any]]] = {}
    for optimizer in trainer.learner.optimizers.values():
        for group in optimizer.param_groups:
            for param in group["params"]:
                found[id(param)] = (optimizer, group)
    model = trainer.learner.model
    return found if all(id(p) in found for p in model.parameters()) else None


def stacked_models_problem(trainers: Sequence[Any]) -> str | None:
    """Why these members (multi-task models) cannot run as one mapped model (None when they can)."""
    models = [t.learner.model for t in trainers]
    first = model_signature(models[0])
    if any(model_signature(m) != first for m in models[1:]):
        return "their models differ in shape or in an option of their forward"
    if any(not p.requires_grad for m in models for p in m.parameters()):
        return "a member's model has frozen parameters"
    signatures = []
    for trainer in trainers:
        groups = parameter_groups(trainer)
        if groups is None:
            return "a member's parameter is in none of its optimizers"
        for optimizer, group in groups.values():
            if not isinstance(optimizer, torch.optim.Adam) or any(group.get(k, v) != v for k, v in PLAIN_ADAM.items()):
                return "the stacked step supports plain Adam only"
        signatures.append([(tuple(g["betas"]), g["eps"]) for _, g in (groups[id(p)] for p in trainer.learner.model.parameters())])
    if len({entry for s in signatures for entry in s}) > 1:
        return "their Adam betas or eps differ (between members or parameter groups)"
    if any(t.config.grad_clip is not None and t.config.grad_clip_mode not in CLIP_MODES for t in trainers):
        return "a member clips in a mode the stacked step does not know"
    return None


class _WithRegularization(nn.Module):
    """A model's outputs and its regularisation from one forward, so that one ``functional_call``
    evaluates both on a member's slices."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x), self.model.regularization()  # type: ignore[operator]


class StackedModels:
    """The members' models as one for an epoch: forward, losses, clipping, Adam and write-back (module docstring).

    The stacked parameters are views into one flat buffer (each parameter's ``[P, ...]`` stack in
    turn), and so are their gradients and Adam moments: a step is a dozen operations on the whole
    population, with each member's and parameter's factors (learning rate, bias corrections,
    whether it steps) gathered per element from ``[P, parameters]`` tables."""

    def __init__(self, trainers: Sequence[Any]) -> None:
        if problem := stacked_models_problem(trainers):
            raise ValueError(f"these members cannot run as one model: {problem}")
        self.trainers = list(trainers)
        models = [t.learner.model for t in self.trainers]
        self.template = _WithRegularization(models[0])
        """The module whose forward is mapped (its parameters replaced by the members' slices)."""
        self.names = [name for name, _ in models[0].named_parameters()]
        self.members = [dict(m.named_parameters()) for m in models]
        self.gates: list[list[HardConcreteGate]] = [list(getattr(m, "gate_modules", list)()) for m in models]
        self.per_row_noise = bool(getattr(models[0], "per_example_gates", False))
        first = self.members[0][self.names[0]]
        self.l0 = torch.tensor([float(getattr(m, "l0_lambda", 0.0)) for m in models], dtype=first.dtype, device=first.device)
        """Each member's L0 weight, handed to the mapped forward (the template's own is set back after)."""
        groups = [parameter_groups(t) for t in self.trainers]
        self.groups = [{n: g[id(params[n])] for n in self.names} for g, params in zip(groups, self.members)]  # type: ignore[index]
        _, group = self.groups[0][self.names[0]]
        self.beta1, self.beta2 = (float(b) for b in group["betas"])
        self.eps = float(group["eps"])
        sizes = [self.members[0][n].numel() for n in self.names]
        members = len(models)
        device, dtype = first.device, first.dtype
        member_of, name_of = [], []
        for j, size in enumerate(sizes):
            member_of.append(torch.arange(members, device=device).repeat_interleave(size))
            name_of.append(torch.full((members * size,), j, device=device))
        self.member_of, self.name_of = torch.cat(member_of), torch.cat(name_of)
        """Each element's member and parameter (the buffer holds every parameter's ``[P, ...]`` stack in turn)."""
        self.lr = torch.tensor([[float(g[n][1]["lr"]) for n in self.names] for g in self.groups], dtype=torch.float64, device=device)
        weight_ids = {id(p) for p in self.trainers[0].learner.weight_parameters}
        self.clipped = torch.tensor([id(self.members[0][n]) in weight_ids for n in self.names], dtype=dtype, device=device)[self.name_of]
        """1 for the weights' elements: ``--grad-clip`` measures and scales these (a model's gate logits are not clipped)."""
        self.clip = [(t.config.grad_clip, t.config.grad_clip_mode) for t in self.trainers]
        self.flat = {k: torch.zeros(self.member_of.numel(), dtype=dtype, device=device) for k in ("param", "grad", "exp_avg", "exp_avg_sq")}
        self.steps = torch.zeros(members, len(self.names), dtype=torch.float64, device=device)
        """Adam's step count of every member's every parameter."""
        self.param: dict[str, torch.Tensor] = {}
        self.views: dict[str, dict[str, torch.Tensor]] = {k: {} for k in self.flat}
        offset = 0
        with torch.no_grad():
            for n, size in zip(self.names, sizes):
                shape = (members, *self.members[0][n].shape)
                for k, buffer in self.flat.items():
                    self.views[k][n] = buffer[offset : offset + members * size].view(shape)
                offset += members * size
                self.views["param"][n].copy_(torch.stack([params[n].detach() for params in self.members]))
                for p, params in enumerate(self.members):
                    held = self.groups[p][n][0].state.get(params[n])
                    if held:
                        self.steps[p, self.names.index(n)] = float(held["step"])
                        self.views["exp_avg"][n][p].copy_(held["exp_avg"])
                        self.views["exp_avg_sq"][n][p].copy_(held["exp_avg_sq"])
                leaf = self.views["param"][n].detach().requires_grad_(True)
                leaf.grad = self.views["grad"][n]
                self.param[n] = leaf
        self.mapped = {f"model.{n}": leaf for n, leaf in self.param.items()}
        """The stacked parameters under the names the mapped module (:class:`_WithRegularization`) gives them."""

    def _noise(self, slot: int, rows: int, padded: int) -> list[torch.Tensor]:
        """Member ``slot``'s gate noise for a batch of ``rows`` rows, drawn from its own generators in
        its forward's order, padded to ``padded`` rows where it draws one sample per row."""
        out = []
        for gate in self.gates[slot]:
            u = gate.draw_noise(rows if self.per_row_noise else None)
            if self.per_row_noise and padded > rows:
                u = torch.cat([u, u.new_full((padded - rows, *u.shape[1:]), 0.5)])
            out.append(u)
        return out

    def _mapped(self, params: dict[str, torch.Tensor], x: torch.Tensor, noise: list[torch.Tensor], l0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One member's outputs and regularisation: the template's forward on its slices, its gates
        reading its noise, its L0 weight."""
        model = self.template.model
        gates, held = self.gates[0], getattr(model, "l0_lambda", None)
        for gate, u in zip(gates, noise):
            gate.given_noise = u
        if held is not None:
            model.l0_lambda = l0  # type: ignore[assignment]
        try:
            return functional_call(self.template, params, (x,))
        finally:
            for gate in gates:
                gate.given_noise = None
            if held is not None:
                model.l0_lambda = held  # type: ignore[assignment]

    def play(self, batches: dict[int, Batch]) -> dict[int, StepResult]:
        """Every member's step result for its batch (``slot -> batch``; members without one sit out)."""
        slots = sorted(batches)
        xs = [batches[s].x.flatten(1) for s in slots]
        rows = [x.shape[0] for x in xs]
        padded = max(rows)
        x = torch.stack([torch.cat([x, x.new_zeros(padded - x.shape[0], x.shape[1])]) if x.shape[0] < padded else x for x in xs])
        noise = [self._noise(s, r, padded) for s, r in zip(slots, rows)]
        stacked_noise = [torch.stack(us) for us in zip(*noise)]
        if len(slots) == len(self.trainers):
            params, l0 = self.mapped, self.l0
        else:
            index = torch.tensor(slots, device=x.device)
            params, l0 = {name: t.index_select(0, index) for name, t in self.mapped.items()}, self.l0.index_select(0, index)
        outputs, regularization = vmap(self._mapped, in_dims=(0, 0, 0, 0), randomness="error")(params, x, stacked_noise, l0)
        steps = {}
        for k, slot in enumerate(slots):
            task_loss = self.trainers[slot].learner.family.model_loss(outputs[k, : rows[k]], batches[slot])
            steps[slot] = StepResult(task_loss + regularization[k], task_loss, {"regularization": float(regularization[k].detach()) * batches[slot].size})
        return steps

    def zero_grad(self) -> None:
        """Zero the flat gradient, which backward accumulates into (every stacked parameter's ``grad`` is a view of it)."""
        self.flat["grad"].zero_()
        for n, leaf in self.param.items():
            if leaf.grad is None or leaf.grad.data_ptr() != self.views["grad"][n].data_ptr():
                leaf.grad = self.views["grad"][n]

    @torch.no_grad()
    def step(self, stepping: Sequence[int]) -> None:
        """Each member of ``stepping`` clips and takes its Adam step on its own row (torch's foreach
        Adam, element by element); every other member is left exactly as it is."""
        for n, leaf in self.param.items():  # a gradient backward made anew (not accumulated into the view) is copied in
            if leaf.grad is not None and leaf.grad.data_ptr() != self.views["grad"][n].data_ptr():
                self.views["grad"][n].copy_(leaf.grad)
        grad = self.flat["grad"]
        mask = torch.zeros(len(self.trainers), dtype=torch.float64, device=grad.device)
        mask[list(stepping)] = 1.0
        for p in range(len(self.trainers)):
            if p not in stepping:
                for view in self.views["grad"].values():
                    view[p].zero_()  # a member that sat out has no gradient (not NaN times zero)
        self._clip(grad)
        self.steps.add_(mask.view(-1, 1))
        t = self.steps.clamp(min=1)
        member, name = self.member_of, self.name_of
        bias2 = ((1 - self.beta2**t) ** 0.5)[member, name].to(grad.dtype)
        step_size = (self.lr / (1 - self.beta1**t) * -mask.view(-1, 1))[member, name].to(grad.dtype)
        exp_avg, exp_avg_sq = self.flat["exp_avg"], self.flat["exp_avg_sq"]
        exp_avg.lerp_(grad, (mask * (1 - self.beta1)).to(grad.dtype)[member])
        exp_avg_sq.mul_((1 - mask * (1 - self.beta2)).to(grad.dtype)[member]).addcmul_(grad, grad, value=1 - self.beta2)
        denom = (exp_avg_sq.sqrt() / bias2).add_(self.eps)
        self.flat["param"].add_(exp_avg / denom * step_size)

    def _clip(self, grad: torch.Tensor) -> None:
        """Each member's ``--grad-clip`` over its weights' gradients, as
        :func:`~routing_rl.training.loop.clipping.clip_weight_gradients` (the public code's mode lists
        every weight twice: its norm is sqrt(2) times the norm, and the factor applies twice)."""
        if all(limit is None for limit, _ in self.clip):
            return
        norm = torch.zeros(len(self.clip), dtype=grad.dtype, device=grad.device).index_add_(0, self.member_of, grad * grad * self.clipped).sqrt()
        scale = member_clip_factors(norm, self.clip)[self.member_of]
        grad.mul_(1 + self.clipped * (scale - 1))

    @torch.no_grad()
    def write_back(self) -> None:
        """Weights, moments and step counts into the members' modules and optimizers: as if each had trained alone."""
        for p, params in enumerate(self.members):
            for j, n in enumerate(self.names):
                param = params[n]
                param.copy_(self.views["param"][n][p])
                steps = float(self.steps[p, j])
                if steps == 0:
                    continue
                held = self.groups[p][n][0].state[param]
                if not held:
                    held["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
                    held["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    held["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                held["step"].fill_(steps)
                held["exp_avg"].copy_(self.views["exp_avg"][n][p])
                held["exp_avg_sq"].copy_(self.views["exp_avg_sq"][n][p])

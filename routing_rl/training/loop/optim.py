"""torch's Adam and SGD, extended to parameters whose gradient is sparse by rows (a bank's blocks).

A :class:`routing_rl.network.linear_bank.LinearBank` stores a layer's blocks as the rows of one
parameter, and its gradient lists exactly the blocks that had samples in the step. Each listed row
is stepped as the per-block form would step that block's own parameter: Adam keeps one step count
per row (so a rarely used block gets the bias correction of its own few updates, not of the run's
step count), and rows without samples are left alone (not even their moments decay), as torch
leaves a parameter whose ``grad`` is None. Dense gradients go to torch's own step unchanged
(``foreach`` or ``fused``), so every network without a bank trains bit for bit as before.

Only the options ``make_optimizers`` uses are supported for row-sparse parameters: Adam without
weight decay, AMSGrad or maximize; plain SGD (no momentum, no weight decay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


def _sparse_rows(optimizer: torch.optim.Optimizer) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    return [(p, g) for g in optimizer.param_groups for p in g["params"] if p.grad is not None and p.grad.is_sparse]


@contextmanager
def _dense_only(params: list[torch.Tensor]) -> Iterator[None]:
    """Hide the sparse gradients of ``params`` from torch's step (which refuses them), then restore them."""
    held = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for p, grad in zip(params, held):
            p.grad = grad


def _unsupported(group: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    return [key for key, value in defaults.items() if group.get(key, value) != value]


def _rows_and_values(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows a sparse gradient lists (increasing, once each) and their gradients."""
    grad = p.grad
    assert grad is not None
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if rows.numel() > 1 and not bool((rows[1:] > rows[:-1]).all()):
            grad = grad.coalesce()  # sums a row listed twice (a layer run twice in a step), like dense accumulation
        else:  # one gather of increasing rows (the dispatcher's): already coalesced, save the sort and copy
            return rows, grad._values()
    return grad.indices()[0], grad.values()


class _RowSparseStep:
    """The step of both optimizers: row-sparse parameters by :meth:`_step_rows`, the rest by torch."""

    def _step_rows(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = _sparse_rows(self)  # type: ignore[arg-type]
        for p, group in sparse:
            self._step_rows(p, group)
        with _dense_only([p for p, _ in sparse]):
            super().step()  # type: ignore[misc]
        return loss


class RowSparseAdam(_RowSparseStep, torch.optim.Adam):
    """``torch.optim.Adam``; parameters with row-sparse gradients step row by row (module docstring)."""

    _PLAIN = {"weight_decay": 0, "amsgrad": False, "maximize": False}

    def _step_rows(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        if bad := _unsupported(group, self._PLAIN):
            raise ValueError(f"row-sparse parameters (block banks) support plain Adam only, not {', '.join(bad)}")
        rows, grad = _rows_and_values(p)
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)  # steps in which any row had a gradient (torch's Adam reads it)
            state["row_step"] = torch.zeros(p.shape[0], dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, eps = float(group["lr"]), float(group["eps"])
        steps = state["row_step"].index_select(0, rows) + 1
        state["row_step"].index_copy_(0, rows, steps)
        if group.get("fused"):
            # torch's fused kernel on the rows as tensors of their own: each with its own step count
            picked = rows.tolist()

            def rows_of(t: torch.Tensor) -> list[torch.Tensor]:
                views = t.unbind(0)  # one call for all views, then the picked ones
                return [views[r] for r in picked]

            torch._fused_adam_(
                rows_of(p), list(grad.unbind(0)), rows_of(state["exp_avg"]), rows_of(state["exp_avg_sq"]), [],
                rows_of(state["row_step"]), lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            return
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(grad, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        shape = (-1,) + (1,) * (p.dim() - 1)
        t = steps.double()  # the bias corrections in double precision, as torch computes them from a Python float
        step_size = ((lr / (1 - beta1**t)) * -1).to(p.dtype).view(shape)
        bias_correction2_sqrt = ((1 - beta2**t) ** 0.5).to(p.dtype).view(shape)
        denom = exp_avg_sq.sqrt_().div_(bias_correction2_sqrt).add_(eps)
        p.index_add_(0, rows, exp_avg.mul_(step_size).div_(denom))  # p + step_size * exp_avg / denom, as addcdiv


class RowSparseSGD(_RowSparseStep, torch.optim.SGD):
    """``torch.optim.SGD``; parameters with row-sparse gradients step only their listed rows."""

    _PLAIN = {"momentum": 0, "weight_decay": 0, "nesterov": False, "maximize": False}

    def _step_rows(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        if bad := _unsupported(group, self._PLAIN):
            raise ValueError(f"row-sparse parameters (block banks) support plain SGD only, not {', '.join(bad)}")
        rows, grad = _rows_and_values(p)
        p.index_add_(0, rows, grad, alpha=-float(group["lr"]))


ADAM_SETTINGS = ("betas", "lr", "weight_decay", "eps", "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused",
                 "decoupled_weight_decay")  # fmt: skip
"""The hyperparameters of an Adam parameter group that :func:`step_adam_together` requires to be equal."""


def step_adam_together(optimizers: list[torch.optim.Optimizer]) -> bool:
    """One Adam update of every parameter of ``optimizers`` (a population's members' optimizers of
    one role), with one multi-tensor call per parameter group position instead of one per member.

    Adam is elementwise, each parameter with its own moments and step count, so updating the
    members' tensors in one list is the members' own updates (bit for bit: the float64 population
    tests compare them). Done only when every optimizer is a plain :class:`RowSparseAdam` without
    row-sparse gradients and the groups at each position have equal hyperparameters; returns
    False without stepping anything otherwise (the caller then steps each optimizer itself)."""
    from torch.optim.adam import adam

    if not optimizers or any(type(o) is not RowSparseAdam or _sparse_rows(o) for o in optimizers):
        return False
    counts = {len(o.param_groups) for o in optimizers}
    if len(counts) != 1:
        return False
    for position in range(counts.pop()):
        groups = [o.param_groups[position] for o in optimizers]
        if any(any(g[k] != groups[0][k] for k in ADAM_SETTINGS) for g in groups[1:]) or groups[0]["capturable"] or groups[0]["differentiable"]:
            return False
    with torch.no_grad():
        for position, group in enumerate(optimizers[0].param_groups):
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [], [], [])
            has_complex = False
            for optimizer in optimizers:
                has_complex |= optimizer._init_group(optimizer.param_groups[position], *lists)  # type: ignore[attr-defined]
            if not lists[0]:
                continue
            beta1, beta2 = group["betas"]
            adam(*lists, amsgrad=group["amsgrad"], has_complex=has_complex, beta1=beta1, beta2=beta2, lr=group["lr"],
                 weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"], foreach=group["foreach"],
                 capturable=False, differentiable=False, fused=group["fused"], grad_scale=None, found_inf=None,
                 decoupled_weight_decay=group["decoupled_weight_decay"])  # fmt: skip
    return True

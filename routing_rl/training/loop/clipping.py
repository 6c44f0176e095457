"""Clipping the weights' gradient norm, as ``torch.nn.utils.clip_grad_norm_`` or as the public code does.

The public routing code's ``run_experiments.py`` (cle-ros/RoutingNetworks) clips with
``clip_grad_norm_(model.module_parameters() + model.module_parameters(), 40.)``: every module
parameter is listed twice, so the measured norm is ``sqrt(2) * ||g||`` (clipping starts at
``40 / sqrt(2)``, about 28.3) and each gradient is scaled by the clip coefficient twice, once per
listing. ``grad_clip_mode="public-code"`` makes that exact call; ``"norm"`` is the ordinary clip.
The routing parameters are never clipped, in either mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def clip_weight_gradients(parameters: Sequence[nn.Parameter], max_norm: float, mode: str = "norm") -> torch.Tensor:
    """Clip in place; returns the total norm that ``clip_grad_norm_`` measured (of the list it was given)."""
    params = [p for p in parameters if p.grad is not None]
    if mode == "public-code":
        return torch.nn.utils.clip_grad_norm_(params + params, max_norm, norm_type=2.0)
    if mode == "norm":
        return torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2.0)
    raise ValueError(f"unknown --grad-clip-mode {mode!r}; valid choices: norm, public-code")


def member_clip_factors(norms: torch.Tensor, clips: Sequence[tuple[float | None, str]]) -> torch.Tensor:
    """Each population member's factor on its weights' gradients, from their norms ``[P]`` and its
    ``(--grad-clip, --grad-clip-mode)``, as :func:`clip_weight_gradients` scales them: 1 where the
    member does not clip; in the public code's mode the measured norm is sqrt(2) times the norm and
    the factor applies twice (every weight is listed twice)."""
    factors = []
    for norm, (limit, mode) in zip(norms, clips):
        if limit is None:
            factors.append(torch.ones((), dtype=norms.dtype, device=norms.device))
            continue
        measured = norm * math.sqrt(2.0) if mode == "public-code" else norm
        factor = (limit / (measured + 1e-6)).clamp(max=1.0)
        factors.append(factor * factor if mode == "public-code" else factor)
    return torch.stack(factors)

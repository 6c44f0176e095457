"""Mean squared error, the metric of regression tasks (e.g. the MMoE synthetic benchmark)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def mse(
    predictions: Tensor | np.ndarray, targets: Tensor | np.ndarray, mask: Tensor | np.ndarray | None = None
) -> float:
    """Mean of ``(predictions - targets)^2`` over the entries where ``mask`` (broadcastable) is True."""
    p = torch.as_tensor(np.asarray(predictions)) if isinstance(predictions, np.ndarray) else predictions.detach()
    t = torch.as_tensor(np.asarray(targets)) if isinstance(targets, np.ndarray) else targets.detach()
    if p.shape != t.shape:
        raise ValueError(f"predictions {tuple(p.shape)} and targets {tuple(t.shape)} must have the same shape")
    err = (p.to(torch.float64) - t.to(torch.float64)).square()
    if mask is None:
        return float(err.mean()) if err.numel() else float("nan")
    m = torch.as_tensor(np.asarray(mask)) if isinstance(mask, np.ndarray) else mask
    m = m.to(torch.bool).expand_as(err)
    return float(err[m].mean()) if bool(m.any()) else float("nan")


def per_task_mse(predictions: Tensor, targets: Tensor, label_mask: Tensor | None = None) -> np.ndarray:
    """MSE of each task for ``[N, T, C]`` predictions/targets (``label_mask`` ``[T, C]``): ``[T]``."""
    if predictions.dim() != 3:
        raise ValueError(f"expected [N, T, C], got {tuple(predictions.shape)}")
    mask = torch.ones(predictions.shape[1:], dtype=torch.bool) if label_mask is None else label_mask.cpu()
    return np.array([mse(predictions[:, t], targets[:, t], mask[t]) for t in range(predictions.shape[1])])

"""Top-1 accuracy, the metric of the single-label tasks (one-vs-rest, superclass tasks)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def accuracy(scores: Tensor | np.ndarray, targets: Tensor | np.ndarray) -> float:
    """Fraction of examples whose highest score is the target class.

    ``scores`` ``[..., C]``, ``targets`` integer ``[...]``; equal scores resolve to the lowest
    class index (``argmax`` convention). Returns NaN for an empty batch.
    """
    s = torch.as_tensor(np.asarray(scores)) if isinstance(scores, np.ndarray) else scores.detach()
    t = torch.as_tensor(np.asarray(targets)) if isinstance(targets, np.ndarray) else targets.detach()
    if s.shape[:-1] != t.shape:
        raise ValueError(f"scores {tuple(s.shape)} must be targets {tuple(t.shape)} plus a class axis")
    if t.numel() == 0:
        return float("nan")
    return float((s.argmax(dim=-1) == t.to(s.device)).to(torch.float64).mean())

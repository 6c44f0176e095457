"""Match model sizes: find the hidden size that gives a model a target parameter count.

The SNR paper compares models "in a way to approximately match the model size of SB" (section
"Model Training and Hyper-parameter Tuning") and plots accuracy against trainable parameters
(Figure 3). :func:`match_hidden_size` binary-searches one size argument of a model; the models
are built on PyTorch's ``meta`` device, so no memory is allocated even for large sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.layers import count_parameters


def train_parameter_count(
    model_cls: type[MultiTaskModel] | str, input_dim: int, labels_per_task: Sequence[int], **kwargs: Any
) -> int:
    """Trainable parameters of ``model_cls(input_dim, labels_per_task, **kwargs)`` (built on ``meta``)."""
    cls = MultiTaskModel.registry.get(model_cls) if isinstance(model_cls, str) else model_cls
    with torch.device("meta"):
        return count_parameters(cls(input_dim, labels_per_task, **kwargs))


def match_hidden_size(
    model_cls: type[MultiTaskModel] | str,
    target_params: int,
    input_dim: int,
    labels_per_task: Sequence[int],
    vary: str = "hidden_sizes",
    position: int = -1,
    low: int = 1,
    high: int = 1 << 14,
    **kwargs: Any,
) -> int:
    """The value of size argument ``vary`` whose trainable parameter count is closest to ``target_params``.

    ``vary`` names an int argument (e.g. ``"expert_hidden"``) or a sequence argument (e.g.
    ``"hidden_sizes"``), in which case entry ``position`` is varied and the other entries come
    from ``kwargs[vary]``. The count must grow with the size (true for every model here). Ties go
    to the smaller size.
    """
    if low < 1 or high < low:
        raise ValueError(f"need 1 <= low <= high, got {low=}, {high=}")
    cls = MultiTaskModel.registry.get(model_cls) if isinstance(model_cls, str) else model_cls  # once, not per step

    def count(size: int) -> int:
        args = dict(kwargs)
        base = args.get(vary)
        if isinstance(base, Sequence) and not isinstance(base, str):
            values = list(base)
            values[position] = size
            args[vary] = values
        elif base is None or isinstance(base, int):
            args[vary] = size
        else:
            raise TypeError(f"argument {vary!r} must be an int or a sequence of ints, got {base!r}")
        return train_parameter_count(cls, input_dim, labels_per_task, **args)

    return closest(count, target_params, low, high)


def closest(count: Callable[[int], int], target: int, low: int, high: int) -> int:
    """The size in ``[low, high]`` whose ``count`` (growing with the size) is closest to ``target``;
    ties to the smaller. A bisection: the models' widths and the battery's routers' widths alike."""
    lo, hi = low, high
    while lo < hi:  # the smallest size whose count reaches the target (or high)
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > low and abs(count(lo - 1) - target) <= abs(count(lo) - target):
        return lo - 1
    return lo

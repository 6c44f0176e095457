"""Training losses for models that output every task at once (``[B, T, C_max]``).

Padded label columns (``label_mask`` False) contribute nothing. Multi-label tasks use binary
cross-entropy summed over a task's labels and averaged over examples, as the YouTube8M starter
code does (a mean over labels would shrink the gradient of the rare positives by ~C); regression
tasks use the squared error summed over a task's outputs and averaged over examples. The
multi-task loss is the sum over tasks. A NaN target is an unlabelled entry (a user's file labels
some tasks of an example and not others) and contributes nothing either; data without NaN gets
exactly the numbers it got before unlabelled entries existed.
"""

from __future__ import annotations

from torch import Tensor

from routing_rl.core.objectives import ElementwiseLoss, elementwise_loss, observed
from routing_rl.data.multilabel import Problem


def masked_task_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, elementwise: ElementwiseLoss) -> Tensor:
    """Loss of each task, ``[T]``: ``elementwise`` over the labelled real columns, summed over a task's
    columns and averaged over examples; ``outputs``/``targets`` ``[B, T, C_max]``, ``label_mask`` ``[T, C_max]``."""
    if outputs.shape != targets.shape or outputs.shape[1:] != label_mask.shape:
        raise ValueError(
            f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)} and label_mask "
            f"{tuple(label_mask.shape)} must be [B, T, C] and [T, C]"
        )
    targets, weight = observed(targets, label_mask.to(targets.device))
    entries = elementwise(outputs, targets)
    entries = entries * weight.to(entries.dtype)
    return entries.sum(dim=2).mean(dim=0)


def per_task_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, problem: Problem = "multilabel") -> Tensor:
    """Loss of each task, ``[T]``, for a problem named as ``MultiLabelData.problem`` names it."""
    return masked_task_loss(outputs, targets, label_mask, elementwise_loss(problem))


def multitask_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, problem: Problem = "multilabel") -> Tensor:
    """Sum over tasks of :func:`per_task_loss` (add ``model.regularization()`` for SNR)."""
    return per_task_loss(outputs, targets, label_mask, problem).sum()


__all__ = ["masked_task_loss", "multitask_loss", "observed", "per_task_loss"]

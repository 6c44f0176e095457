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

from routing_rl.core.objectives import elementwise_loss, masked_task_loss, observed
from routing_rl.data.multilabel import Problem


def per_task_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, problem: Problem = "multilabel") -> Tensor:
    """Loss of each task, ``[T]``, for a problem named as ``MultiLabelData.problem`` names it."""
    return masked_task_loss(outputs, targets, label_mask, elementwise_loss(problem))


def multitask_loss(outputs: Tensor, targets: Tensor, label_mask: Tensor, problem: Problem = "multilabel") -> Tensor:
    """Sum over tasks of :func:`per_task_loss` (add ``model.regularization()`` for SNR)."""
    return per_task_loss(outputs, targets, label_mask, problem).sum()


__all__ = ["multitask_loss", "observed", "per_task_loss"]

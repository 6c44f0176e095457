"""Routing statistics: perplexity of routing policies and per-task accuracy."""

from __future__ import annotations

import torch


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row of a probability matrix: M for a uniform policy over M blocks, 1 for a fixed route."""
    p = probs.clamp_min(0)
    p = p / p.sum(dim=-1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)
    return torch.exp(entropy)


def per_task_accuracy(correct: torch.Tensor, tasks: torch.Tensor, num_tasks: int) -> list[float]:
    """Accuracy of each task from per-sample hits; NaN for a task with no samples."""
    hits = torch.bincount(tasks, weights=correct.float(), minlength=num_tasks)
    counts = torch.bincount(tasks, minlength=num_tasks).float()
    acc = hits / counts
    return [float(a) for a in acc]

"""Routing statistics: the perplexity of routing policies (the Re-examining paper's Figure 1)."""

from __future__ import annotations

import torch


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row of a probability matrix: M for a uniform policy over M blocks, 1 for a fixed route."""
    p = probs.clamp_min(0)
    p = p / p.sum(dim=-1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)
    return torch.exp(entropy)

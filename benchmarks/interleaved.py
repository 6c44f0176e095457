"""Interleaved timing of forward+backward passes, shared by the dispatch benchmarks: every form runs
its passes once per round, round after round, so machine noise hits them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def median_ms(forms: Mapping[str, Callable[[], torch.Tensor]], rounds: int, steps: int) -> dict[str, float]:
    """Median over ``rounds`` of each form's milliseconds per forward+backward pass (``steps`` per round)."""
    ms: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(rounds):
        for name, form in forms.items():
            start = time.perf_counter()
            for _ in range(steps):
                form().sum().backward()
            ms[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(values) for name, values in ms.items()}

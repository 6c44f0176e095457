"""TensorBoard logging of a run: losses, per-task accuracy, routing distributions and perplexity.

Tags are grouped CleanRL-style: ``losses/``, ``charts/`` (means), ``accuracy/`` (per task),
``routing/<layer>/`` (perplexity per task and its mean) and images of each layer's distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from routing_rl.analysis.similarity import cosine_similarity_matrix
from routing_rl.metrics.routing import perplexity


def matrix_image(matrix: np.ndarray, cell: int = 12) -> np.ndarray:
    """A [3, H, W] uint8 heatmap (dark = 0, bright = max) with ``cell``-pixel cells, for add_image."""
    m = np.asarray(matrix, dtype=np.float64)
    top = m.max() if m.size and m.max() > 0 else 1.0
    scaled = np.clip(m / top, 0.0, 1.0)
    big = np.kron(scaled, np.ones((cell, cell)))
    # A perceptual-ish ramp: dark purple -> orange -> light yellow.
    r = np.clip(0.15 + 1.2 * big, 0, 1)
    g = np.clip(-0.1 + 1.0 * big**1.5, 0, 1)
    b = np.clip(0.35 + 0.3 * np.sin(np.pi * big) - 0.3 * big, 0, 1)
    return (np.stack([r, g, b]) * 255).astype(np.uint8)


class TensorBoardLogger:
    """Writes one event file per (re)start of a run; ``purge_step`` drops steps a resumed run repeats."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def accuracy(self, split: str, per_task: list[float], task_names: list[str], step: int) -> None:
        for k, acc in enumerate(per_task):
            self.writer.add_scalar(f"accuracy_{split}/task{k:02d}_{task_names[k]}", acc, step)
        self.writer.add_scalar(f"charts/{split}_accuracy_mean", float(np.nanmean(per_task)), step)

    def routing(self, layer_names: list[str], policies: list[torch.Tensor], step: int) -> None:
        """Per routed layer: each task's policy perplexity and their mean (the paper's Figure 1), the
        policy as an image, and the tasks' pairwise cosine similarity as a heatmap (Figure 2)."""
        for name, probs in zip(layer_names, policies):
            ppl = perplexity(probs)
            for k, value in enumerate(ppl.tolist()):
                self.writer.add_scalar(f"routing/{name}/perplexity_task{k:02d}", value, step)
            self.writer.add_scalar(f"routing/{name}/perplexity_mean", float(ppl.mean()), step)
            self.writer.add_image(f"routing/{name}/policy", matrix_image(probs.numpy()), step)
            similarity = cosine_similarity_matrix(probs.numpy())
            self.writer.add_image(f"routing/{name}/task_similarity", matrix_image(similarity), step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()

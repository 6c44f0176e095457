"""The interface every multi-task model of the SNR comparison fills, and its registry.

The SNR paper compares five models (Shared-Bottom, MMoE, ML-MMoE, SNR-Trans, SNR-Aver) that
differ only in their shared low-level part, on data where every example is labelled for every
task (YouTube8M verticals). So a model maps a batch of inputs to the outputs of *all* tasks at
once, ``[B, T, C_max]``, and reports what the paper compares them on: trainable parameters (the
x-axis of its Figure 3), serving parameters after pruning (Figure 4) and sub-network utilisation
by task (Figure 5). Subclasses register themselves by ``name`` like task suites do, so a trainer
can build any of them from a CLI name.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from routing_rl.data.multilabel import make_label_mask
from routing_rl.models.layers import count_parameters
from routing_rl.registry import AGENTS, Registered, Registry


class MultiTaskModel(Registered, nn.Module, ABC):
    """A model that outputs every task's predictions for every input.

    ``forward(x)`` maps ``[B, input_dim]`` to ``[B, T, C_max]`` (logits for multi-label tasks,
    values for regression); columns ``c >= labels_per_task[t]`` of task ``t`` are padding (0) and
    are excluded with :attr:`label_mask`. Defining a subclass with a non-empty ``name`` registers
    it in :attr:`registry` (shared with the routers: ``--agent`` names either).
    """

    registry: ClassVar[Registry[Any]] = AGENTS
    family: ClassVar[str] = "multi-task model"
    option_help: ClassVar[dict[str, str]] = {
        "tower_hidden": "units of each task's one-layer tower (the SNR paper: 16)",
    }

    def __init__(self, input_dim: int, labels_per_task: Sequence[int], tower_hidden: int = 16) -> None:
        super().__init__()
        if input_dim <= 0:
            raise ValueError(f"input_dim must be positive, got {input_dim}")
        self.input_dim = int(input_dim)
        self.labels_per_task = [int(c) for c in labels_per_task]
        if not self.labels_per_task or min(self.labels_per_task) <= 0:
            raise ValueError(f"labels_per_task must be non-empty positive counts, got {list(labels_per_task)}")
        self.tower_hidden = int(tower_hidden)
        self.register_buffer("label_mask", make_label_mask(self.labels_per_task), persistent=False)

    @classmethod
    def build(cls, name: str, input_dim: int, labels_per_task: Sequence[int], **kwargs: Any) -> MultiTaskModel:
        """Construct the registered model ``name`` (raises ``UnknownNameError`` listing choices)."""
        return cls.registry.get(name)(input_dim, labels_per_task, **kwargs)

    @property
    def num_tasks(self) -> int:
        return len(self.labels_per_task)

    @property
    def max_labels(self) -> int:
        return max(self.labels_per_task)

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Per-task outputs ``[B, T, C_max]`` for inputs ``[B, input_dim]``."""

    def regularization(self) -> Tensor:
        """Term to add to the loss (SNR: ``lambda * E||z||_0``); 0 for models without one."""
        p = next(self.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)

    def serving_model(self) -> MultiTaskModel:
        """The model as deployed, in eval mode; pruned where the model can be (SNR).

        Its outputs equal this model's eval-mode outputs. The default is an eval-mode copy.
        """
        return copy.deepcopy(self).eval()

    def pruned(self) -> MultiTaskModel:
        """Alias of :meth:`serving_model`."""
        return self.serving_model()

    def parameter_counts(self) -> dict[str, int]:
        """``train``: all trainable parameters (gate parameters included); ``serving``: after pruning."""
        return {"train": count_parameters(self), "serving": count_parameters(self.serving_model())}

    def utilization(self, x: Tensor | None = None) -> np.ndarray | None:
        """``[T, n_subnetworks]`` usage of sub-networks by task, or None where not meaningful.

        SNR models derive it from the serving gates (``x`` unused); MMoE-type models from their
        input-dependent gates, which needs a batch ``x``.
        """
        return None

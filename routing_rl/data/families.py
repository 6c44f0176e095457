"""Task families: how a batch becomes per-task losses and predictions, and how a split is scored.

The trainer knows nothing about labels. A family declares its metric and whether higher is
better, gathers batches from its kind of split, turns a learner's outputs into the training loss,
and scores a split task by task:

* ``single-label``: every row is one sample of one task (Fashion-MNIST one-vs-rest, CIFAR-100
  superclasses, synthetic-groups); cross-entropy, per-task accuracy.
* ``multi-label``: every example carries multi-hot labels of every task (YouTube-8M verticals,
  multilabel-synthetic); BCE summed over a task's labels and over tasks, per-task MAP@K.
* ``regression``: every example carries real outputs of every task (mmoe-synthetic); squared
  error summed the same way, per-task MSE (lower is better).
* ``mixed``: tasks of those kinds in one table (a species beside a body mass); each task its
  own loss and metric (:class:`MixedFamily`).

A routed network plays one routing episode per (example, task) pair: for single-label rows that
is the row itself; for the other families each example is played once per task through that
task's route (:meth:`TaskFamily.episodes`), batched, and the episodes' outputs are folded back
into the ``[B, T, C_max]`` layout the multi-task models produce.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from routing_rl.core.contracts import Batch
from routing_rl.data.base import SingleLabelData
from routing_rl.data.multilabel import MultiLabelData
from routing_rl.core.objectives import (KIND_CODES, ClassificationObjective, ElementwiseLoss, EpisodeObjective, MixedObjective,
                                        MultiOutputObjective, label_cross_entropy, masked_task_loss, mixed_task_loss, squared_error)
from routing_rl.data.scorers import AccuracyScorer, MapScorer, MixedScorer, MseScorer, Scorer


class TaskFamily(ABC):
    """The contract between a data set's kind of tasks and the one trainer loop."""

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    default_reward: ClassVar[str] = "correct"
    rewards: ClassVar[tuple[str, ...]] = ("correct", "neg-loss")

    def __init__(self, data: Any) -> None:
        self.data = data

    @property
    def num_tasks(self) -> int:
        return int(self.data.num_tasks)

    @property
    @abstractmethod
    def metric(self) -> str:
        """The metric's name as results and tables print it (``accuracy``, ``map@10``, ``mse``)."""

    @property
    @abstractmethod
    def head_sizes(self) -> list[int]:
        """Outputs of each task's head in a routed network."""

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, as the routed network sees it."""

    @abstractmethod
    def gather(self, split: Any, rows: Tensor, device: torch.device, augment: torch.Generator | None = None) -> Batch:
        """The rows of ``split`` as a batch on ``device``; ``augment`` (training only) seeds augmentation."""

    @abstractmethod
    def episodes(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, targets, tasks)`` with one row per routing episode."""

    @abstractmethod
    def objective(self, reward: str, module_loss: str = "cross-entropy") -> EpisodeObjective:
        """Per-episode loss (``--module-loss``) and final reward of a routed network's episodes."""

    @abstractmethod
    def batch_loss(self, episode_loss: Tensor, batch: Batch) -> Tensor:
        """The training loss of a batch from its per-episode losses."""

    @abstractmethod
    def outputs_from_episodes(self, logits: Tensor, batch: Batch) -> Tensor:
        """The episodes' outputs in this family's layout for :meth:`Scorer.update`."""

    @abstractmethod
    def model_loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The training loss of a multi-task model's ``[B, T, C_max]`` outputs."""

    @abstractmethod
    def outputs_from_model(self, outputs: Tensor, batch: Batch) -> Tensor:
        """A multi-task model's ``[B, T, C_max]`` outputs in this family's layout."""

    @abstractmethod
    def scorer(self) -> Scorer:
        """A fresh accumulator of one split's scores."""

    def task_metrics(self) -> list[dict[str, Any]]:
        """Each task's metric and its direction, as results.json records them (``metric.tasks``):
        the family's own for every task, unless the tasks differ (:class:`MixedFamily`)."""
        return [{"metric": self.metric, "higher_is_better": self.higher_is_better}] * self.num_tasks

    def resolve_reward(self, reward: str) -> str:
        """``auto`` becomes this family's default; a reward the family cannot compute is an error."""
        kind = self.default_reward if reward == "auto" else reward
        if kind not in self.rewards:
            raise ValueError(f"--reward {reward} does not apply to {self.name} tasks; valid: auto, {', '.join(self.rewards)}")
        return kind


class SingleLabelFamily(TaskFamily):
    """One label per row: cross-entropy, per-task accuracy."""

    name = "single-label"
    data: SingleLabelData

    @property
    def metric(self) -> str:
        return "accuracy"

    @property
    def head_sizes(self) -> list[int]:
        return [self.data.num_classes] * self.num_tasks

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.data.input_shape)

    def gather(self, split: Any, rows: Tensor, device: torch.device, augment: torch.Generator | None = None) -> Batch:
        x, y, t = split.gather(rows)
        if augment is not None and self.data.augment is not None:
            x = self.data.augment(x, augment)
        return Batch(x.to(device), y.to(device), t.to(device))

    def episodes(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        assert batch.tasks is not None
        return batch.x, batch.y, batch.tasks

    def objective(self, reward: str, module_loss: str = "cross-entropy") -> EpisodeObjective:
        return ClassificationObjective(self.resolve_reward(reward), module_loss)

    def batch_loss(self, episode_loss: Tensor, batch: Batch) -> Tensor:
        return episode_loss.mean()

    def outputs_from_episodes(self, logits: Tensor, batch: Batch) -> Tensor:
        return logits

    def model_loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(self.outputs_from_model(outputs, batch), batch.y)

    def outputs_from_model(self, outputs: Tensor, batch: Batch) -> Tensor:
        assert batch.tasks is not None
        return outputs[torch.arange(batch.size, device=outputs.device), batch.tasks]

    def scorer(self) -> Scorer:
        return AccuracyScorer(self.num_tasks)


class MultiOutputFamily(TaskFamily):
    """Targets of every task for every example (``[B, T, C_max]``): the base of multi-label (MAP@K)
    and regression (MSE) tasks, which differ only in what a subclass declares: the entry loss
    (``elementwise``), the metric and its scorer, and the rewards."""

    data: MultiLabelData
    elementwise: ClassVar[ElementwiseLoss]
    """The loss of each output entry against its target (masked and summed over a task's columns)."""

    def __init__(self, data: MultiLabelData, map_k: int = 10) -> None:
        super().__init__(data)
        self.map_k = map_k
        self.label_mask = data.label_mask

    @property
    def head_sizes(self) -> list[int]:
        return list(self.data.labels_per_task)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (int(self.data.input_dim),)

    def gather(self, split: Any, rows: Tensor, device: torch.device, augment: torch.Generator | None = None) -> Batch:
        x, y = split.gather(rows)
        return Batch(x.to(device), y.to(device))

    def episodes(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Each example once per task: rows ``(b0, t0), (b0, t1), ...``; targets ``[B*T, C_max]``."""
        t = self.num_tasks
        tasks = torch.arange(t, device=batch.x.device).repeat(batch.size)
        return batch.x.repeat_interleave(t, dim=0), batch.y.reshape(batch.size * t, -1), tasks

    def objective(self, reward: str, module_loss: str = "cross-entropy") -> EpisodeObjective:
        if module_loss != "cross-entropy":
            raise ValueError(f"--module-loss {module_loss} applies to single-label suites; {self.name} suites train with their own loss")
        return MultiOutputObjective(self.label_mask, type(self).elementwise, self.resolve_reward(reward), self.map_k)

    def batch_loss(self, episode_loss: Tensor, batch: Batch) -> Tensor:
        """Sum over tasks of the mean over examples, as :func:`~routing_rl.models.losses.multitask_loss`."""
        return episode_loss.sum() / batch.size

    def outputs_from_episodes(self, logits: Tensor, batch: Batch) -> Tensor:
        return logits.view(batch.size, self.num_tasks, -1)

    def model_loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return masked_task_loss(outputs, batch.y, self.label_mask.to(outputs.device), type(self).elementwise).sum()

    def outputs_from_model(self, outputs: Tensor, batch: Batch) -> Tensor:
        return outputs



class MultiLabelFamily(MultiOutputFamily):
    """Multi-label tasks: BCE per label, scored by MAP@K; rewarded by AP@K or minus the loss."""

    name = "multi-label"
    elementwise = staticmethod(label_cross_entropy)

    @property
    def metric(self) -> str:
        return f"map@{self.map_k}"

    def scorer(self) -> Scorer:
        return MapScorer(self.label_mask, self.map_k)


class RegressionFamily(MultiOutputFamily):
    """Regression tasks: squared error per output, scored by MSE (lower is better); rewarded by minus the loss."""

    name = "regression"
    elementwise = staticmethod(squared_error)
    higher_is_better = False
    default_reward = "neg-loss"
    rewards = ("neg-loss",)

    @property
    def metric(self) -> str:
        return "mse"

    def scorer(self) -> Scorer:
        return MseScorer(self.label_mask, self.data.labels_per_task)


class MixedFamily(MultiOutputFamily):
    """Tasks of different kinds in one network: classification (cross-entropy over its classes,
    accuracy), regression (squared error, MSE on targets standardised by the training rows) and
    multi-label (BCE, MAP@K), each task scored by its own metric.

    Task losses are weighted equally: the training loss is the sum over tasks of each task's mean
    loss per example, as in the single-kind multi-output families. At the start of training a
    standardised regression target costs about 1 (the variance) and a C-class task about ln C, so
    no kind swamps another. The run's one number (``task-score``, which picks the best-validation
    epoch and is the table's column when every method is compared on it) is the mean over tasks of
    accuracy, MAP@K and 1 - MSE; as the regression targets are standardised by the training rows,
    1 - MSE is the share of the training variance a regression task explains (R²), so each task
    counts on a scale where 1 is perfect and higher is better. Suite tables summarise mixed tasks
    by Delta-m, from the per-task metrics with their own directions.
    """

    name = "mixed"
    default_reward = "neg-loss"
    rewards = ("neg-loss",)

    def __init__(self, data: MultiLabelData, map_k: int = 10) -> None:
        super().__init__(data, map_k)
        assert data.task_kinds is not None
        self.kinds = torch.tensor([KIND_CODES[k] for k in data.task_kinds], dtype=torch.long)

    @property
    def metric(self) -> str:
        return "task-score"

    def task_metrics(self) -> list[dict[str, Any]]:
        names = {"classification": ("accuracy", True), "regression": ("mse", False), "multilabel": (f"map@{self.map_k}", True)}
        assert self.data.task_kinds is not None
        return [{"metric": names[k][0], "higher_is_better": names[k][1]} for k in self.data.task_kinds]

    def objective(self, reward: str, module_loss: str = "cross-entropy") -> EpisodeObjective:
        if module_loss != "cross-entropy":
            raise ValueError(f"--module-loss {module_loss} applies to single-label suites; mixed suites train each task with its own loss")
        self.resolve_reward(reward)
        return MixedObjective(self.label_mask, self.kinds)

    def model_loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return mixed_task_loss(outputs, batch.y, self.label_mask, self.kinds).sum()

    def scorer(self) -> Scorer:
        return MixedScorer(self.label_mask, self.kinds, self.map_k)


def task_family(data: SingleLabelData | MultiLabelData, map_k: int = 10) -> TaskFamily:
    """The family of a loaded data set."""
    if isinstance(data, SingleLabelData):
        return SingleLabelFamily(data)
    return MULTI_OUTPUT_FAMILIES[data.problem](data, map_k)


MULTI_OUTPUT_FAMILIES: dict[str, type[MultiOutputFamily]] = {"multilabel": MultiLabelFamily, "regression": RegressionFamily, "mixed": MixedFamily}
"""The family of each multi-output problem (``MultiLabelData.problem``): the one place a loaded
data set's problem is turned into the behaviour of its tasks."""

"""The results record: what a run's ``results.json`` holds, as types every reader and the trainer share.

``results.json`` stays plain JSON (readers in other languages, old runs); these ``TypedDict``\\ s say
which keys exist and what they hold, so the trainer that writes the record and the tables, figures
and analyses that read it agree on one schema (``schema_version``), checked by
:func:`routing_rl.training.records.results.load_results`. The record holds results only; a run's own state
while it trains (the first batch's loss that the divergence stop compares with) lives in the
trainer and its checkpoint.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

MAX_TASKS = 1000
"""The most tasks a run may have, and a results.json hold. The built-in suites have 2 to 20
(CIFAR-100's 20 superclasses, YouTube-8M's 16 verticals) and the multi-task tables in use tens to
hundreds (ToxCast's 617); a run of 1000 tasks already writes a [tasks, blocks] policy table per
routed layer of a million numbers every epoch. The data loaders refuse more before reading a
column, and the readers of results (``show``, ``analyze``, ``report``, ``suite table``), which build
per-task tables and task-by-task matrices, refuse a file of more before building them."""

RunStatus = Literal["running", "complete", "diverged"]


class MetricRecord(TypedDict):
    name: str
    higher_is_better: bool


SplitRecord = dict[str, Any]
"""One split's per-task scores: :meth:`SplitScore.to_dict() <routing_rl.core.contracts.SplitScore.to_dict>`
(``metric``, ``per_task``, ``mean``, ``micro``, ``loss``, ``examples``, ``counts``)."""


class EnvRecord(TypedDict):
    name: str
    family: str
    task_names: list[str]
    head_sizes: list[int]
    input_shape: list[int]
    samples: dict[str, int]
    info: dict[str, Any]


class EpochRecord(TypedDict, total=False):
    """One epoch: training statistics, both splits' scores and what the learner adds (``routing`` of
    a router; ``utilization``, ``gates`` and ``regularization`` of a model)."""

    epoch: int
    train_loss: float
    train_seconds: float
    data_seconds: float
    samples_per_second: float
    eval_seconds: float
    val: SplitRecord
    test: SplitRecord
    parameters: dict[str, int]
    routing: dict[str, Any]
    router_loss: float
    train_reward: float
    train_accuracy: float
    regularization: float
    utilization: list[list[float]] | None
    utilization_per_task: list[float] | None
    gates: dict[str, Any] | None


class SelectedEpoch(TypedDict):
    epoch: int
    val_mean: float
    test_mean: float
    test_micro: float
    test_per_task: list[float]


class FinalRecord(TypedDict, total=False):
    """The last epoch and the best-validation epoch (model selection), and the sizes at the end."""

    metric: str
    higher_is_better: bool
    epoch: int
    last: SelectedEpoch
    best_val: SelectedEpoch
    mean_train_seconds_per_epoch: float
    parameters: dict[str, int]
    routes: list[list[int]]


class ResultsRecord(TypedDict, total=False):
    """A run's ``results.json``."""

    schema_version: int
    status: RunStatus
    config: dict[str, Any]
    provenance: dict[str, Any]
    env: EnvRecord
    learner: dict[str, Any]
    metric: MetricRecord
    epochs: list[EpochRecord]
    final: FinalRecord
    serving: dict[str, Any]
    divergence: dict[str, Any]

"""A multi-task model (SNR-Trans, SNR-Aver, MMoE, ML-MMoE, Shared-Bottom) as one learner of the trainer.

The model maps a batch of inputs to every task's outputs (``[B, T, C_max]``); the task family turns
them into the loss (plus the model's own regularisation, SNR's ``lambda * E||z||_0``) and the
scores. Models with hard concrete gates draw their noise from the learner's generator, reseeded
every epoch, so a resumed run replays them exactly. Each epoch records train/serving parameter
counts, sub-network utilisation by task and gate statistics; after the last epoch the pruned
serving model is evaluated on the test split and compared with the gated model.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from routing_rl.core.contracts import Batch, SplitScore
from routing_rl.core.seeding import seeded_weights, torch_generator
from routing_rl.models import MultiTaskModel
from routing_rl.data.families import TaskFamily
from routing_rl.training.loop.learner import Learner, StepResult, make_optimizers
from routing_rl.training.setup.options import section_values
from routing_rl.training.records.tb_logger import TensorBoardLogger
from routing_rl.training.setup.composition import Composition


SERVING_TOLERANCE = 1e-6
"""Largest metric difference between the serving and the gated model still reported as equal.

The pruned model computes the same function with a different summation order (per-connection
matmuls instead of one einsum), so outputs agree to float rounding, not bit for bit.
"""


class ModelLearner(Learner):
    """The multi-task-model side of the trainer."""

    kind = "model"

    def __init__(self, parts: Composition, family: TaskFamily, device: torch.device) -> None:
        super().__init__(parts, family, device)
        self.gate_generator = torch_generator()  # reseeded by begin_epoch before the gates draw
        self.model: MultiTaskModel = self._build_model().to(device)
        routing = [p for name, p in self.model.named_parameters() if name.endswith("log_alpha")]
        routing_ids = {id(p) for p in routing}
        weights = [p for p in self.model.parameters() if id(p) not in routing_ids]
        self.weight_parameters = weights
        self.optimizers = make_optimizers(self.config, weights, routing, parts.router_lr)

    def _build_model(self) -> MultiTaskModel:
        """The model with weights drawn from ``seed`` (without disturbing the caller's RNG stream)."""
        model_cls = self.parts.agent_cls
        options = section_values(self.parts.section("agent"))
        if "gate_generator" in inspect.signature(model_cls.__init__).parameters:
            options["gate_generator"] = self.gate_generator
        input_dim = int(np.prod(self.family.input_shape))
        with seeded_weights(self.config.seed):
            return model_cls(input_dim, self.family.head_sizes, **options)

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def begin_epoch(self, epoch: int, sampling_seed: int) -> None:
        self.gate_generator.manual_seed(sampling_seed)
        self.model.train()

    def train_step(self, batch: Batch, epoch: int) -> StepResult:
        task_loss = self.family.model_loss(self.model(batch.x.flatten(1)), batch)
        regularization = self.model.regularization()
        return StepResult(task_loss + regularization, task_loss, {"regularization": float(regularization.detach()) * batch.size})

    def predict(self, batch: Batch, epoch: int, model: MultiTaskModel | None = None) -> torch.Tensor:
        return self.family.outputs_from_model((model or self.model)(batch.x.flatten(1)), batch)

    def epoch_record(self, epoch: int) -> dict[str, Any]:
        """Parameter counts, sub-network utilisation by task, and gate statistics of the model now.

        ``utilization`` is the model's ``[T, n_subnetworks]`` matrix (SNR: 1 where a task reaches a
        sub-network through non-zero serving gates; MMoE-type: mean gate weight on the first
        evaluation batch of test inputs) or None (shared-bottom has no sub-networks).
        ``utilization_per_task`` is the fraction of sub-networks each task uses at all.
        """
        self.model.eval()
        test = self.family.data.test
        probe_rows = torch.arange(min(len(test), self.config.eval_rows(self.family.input_shape)))
        with torch.no_grad():
            counts = self.model.parameter_counts()
            probe = self.family.gather(test, probe_rows, self.device).x.flatten(1)
            util = self.model.utilization(probe)
            gate_stats = None
            gate_modules = getattr(self.model, "gate_modules", None)
            expected_l0 = getattr(self.model, "expected_l0", None)
            if gate_modules is not None and expected_l0 is not None:
                masks = [g.serving_mask() for g in gate_modules()]
                gate_stats = {
                    "open": int(sum(int(m.sum()) for m in masks)),
                    "total": int(sum(m.numel() for m in masks)),
                    "expected_l0": float(expected_l0()),
                }
        util_array = None if util is None else np.asarray(util, dtype=np.float64)
        return {
            "parameters": {"train": int(counts["train"]), "serving": int(counts["serving"])},
            "utilization": None if util_array is None else util_array.tolist(),
            "utilization_per_task": None if util_array is None else (util_array != 0).mean(axis=1).tolist(),
            "gates": gate_stats,
        }

    def finish(self, evaluate: Callable[[Callable[[Batch], torch.Tensor]], SplitScore], test: SplitScore) -> dict[str, Any]:
        """Evaluate the pruned serving model on the test split and compare it with the gated model."""
        serving = self.model.serving_model().to(self.device).eval()
        served = evaluate(lambda batch: self.predict(batch, 0, serving))
        differences = [abs(a - b) for a, b in zip(served.per_task, test.per_task) if not (math.isnan(a) and math.isnan(b))]
        differences += [abs(served.mean - test.mean), abs(served.micro - test.micro)]
        largest = max(differences)
        worst_output = 0.0
        split = self.family.data.test
        with torch.no_grad():
            self.model.eval()
            for rows in split.batches(self.config.eval_rows(self.family.input_shape)):
                x = self.family.gather(split, rows, self.device).x.flatten(1)
                worst_output = max(worst_output, float((self.model(x) - serving(x)).abs().max()))
        return {
            "parameters": sum(p.numel() for p in serving.parameters() if p.requires_grad),
            "test": served.to_dict(),
            "gated_test_mean": test.mean,
            "gated_test_micro": test.micro,
            "max_metric_difference": largest,
            "max_output_difference": worst_output,
            "metrics_equal": bool(largest <= SERVING_TOLERANCE),
        }

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "agent": self.config.agent, "class": type(self.model).__name__, "repr": repr(self.model)}

    def log(self, logger: TensorBoardLogger, record: dict[str, Any], epoch: int) -> None:
        scalars = {"losses/regularization": record["regularization"]}
        if record["gates"] is not None:
            scalars["charts/open_gates"] = record["gates"]["open"]
            scalars["charts/expected_l0"] = record["gates"]["expected_l0"]
        logger.scalars(scalars, epoch)
        if record["utilization"] is not None:
            logger.utilization(record["utilization"], list(self.family.data.task_names), epoch)

"""Training loop for the SNR comparison: :class:`MultiTaskModel` s on :class:`MultiLabelData`.

The routing-network :class:`~routing_rl.training.trainer.Trainer` plays every sample as a routing
episode of *one* task. The SNR setting is different (every example is labelled for every task,
the model outputs all tasks at once, and the metric is MAP@K rather than accuracy), so it gets
its own small loop with the same run discipline:

* Adam on ``multitask_loss + model.regularization()`` (SNR's ``lambda * E||z||_0``);
* every epoch, evaluation of the validation and test splits (macro/micro MAP@K per task for
  multi-label problems, MSE per task for regression), train/serving parameter counts and per-task
  sub-network utilisation, then ``results.json`` and ``checkpoint.pt`` written atomically;
* all randomness of an epoch (shuffling, hard concrete noise) seeded from ``(seed, epoch)`` with
  :func:`~routing_rl.training.trainer.epoch_seed`, so ``--resume`` ends with exactly the numbers of
  an uninterrupted run;
* a NaN/inf loss raises :class:`~routing_rl.training.TrainingDiverged`;
* after the last epoch the serving (pruned) model is evaluated on the test split and the result
  is recorded next to the gated model's, so every run checks that pruning changed nothing.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass, field

from typing import Any

import numpy as np
import torch

from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit
from routing_rl.metrics import MapAccumulator
from routing_rl.models import MultiTaskModel
from routing_rl.models.losses import multitask_loss, per_task_loss
from routing_rl.training.config import BaseRunConfig
from routing_rl.training.run_dir import RunDirectory
from routing_rl.training.tb_logger import TensorBoardLogger, matrix_image
from routing_rl.training.trainer import (
    Callbacks,
    TrainingDiverged,
    epoch_seed,
    resolve_device,
)

MODEL_ALIASES: dict[str, str] = {"shared-bottom": "shared-bottom-mlp"}
"""CLI names that mean a model registered under another name.

``shared-bottom`` is the routing toolkit's router that puts every task on block 0; on multi-label
envs the same idea is the classic shared-bottom MLP, registered as ``shared-bottom-mlp`` so the two
registries do not clash.
"""

SERVING_TOLERANCE = 1e-6
"""Largest metric difference between the serving and the gated model still reported as equal.

The pruned model computes the same function with a different summation order (per-connection
matmuls instead of one einsum), so outputs agree to float rounding, not bit for bit.
"""


def resolve_model_name(agent: str) -> str:
    """The registry name of the model that ``--agent`` names (applies :data:`MODEL_ALIASES`)."""
    return MODEL_ALIASES.get(agent, agent)


@dataclass
class MultiLabelRunConfig(BaseRunConfig):
    """Options of ``routing-rl run`` for a multi-label env; stored in results.json, checked on resume.

    ``agent`` is the name given on the command line (``shared-bottom`` stays ``shared-bottom``);
    ``agent_options`` are the model's constructor options, ``env_options`` the suite's. ``map_k``
    is the K of MAP@K (the SNR paper uses 10).
    """

    agent: str = "snr-trans"
    env: str = "multilabel-synthetic"
    map_k: int = 10

    @property
    def model(self) -> str:
        return resolve_model_name(self.agent)

    def check(self) -> None:
        super().check()
        if self.map_k < 1:
            raise ValueError(f"--map-k must be at least 1, got {self.map_k}")


@dataclass
class SplitMetrics:
    """Per-task scores of one split: MAP@K (higher is better) or MSE (lower is better).

    ``macro`` averages the tasks uniformly; ``micro`` weights them by ``counts`` (MAP: examples
    with a positive in the task; MSE: all output entries, i.e. the overall MSE). ``loss`` is the
    mean multi-task training loss (without regularisation).
    """

    metric: str
    per_task: list[float]
    macro: float
    micro: float
    loss: float
    examples: int
    counts: list[int]

    @property
    def higher_is_better(self) -> bool:
        return self.metric.startswith("map")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate_model(
    model: MultiTaskModel, split: MultiLabelSplit, data: MultiLabelData, k: int, batch_size: int, device: torch.device
) -> SplitMetrics:
    """Evaluate ``model`` (put in eval mode: serving gates) on ``split``, batch by batch."""
    model.eval()
    mask = data.label_mask.to(device)
    num_tasks = data.num_tasks
    loss_sum, examples = 0.0, 0
    ranking = MapAccumulator(num_tasks, k, data.label_mask) if data.problem == "multilabel" else None
    squared = torch.zeros(num_tasks, dtype=torch.float64)
    for rows in split.batches(batch_size):
        x, y = split.gather(rows)
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss_sum += float(per_task_loss(out, y, mask, data.problem).sum()) * len(rows)
        examples += len(rows)
        if ranking is not None:
            ranking.update(out.float().cpu(), y.cpu())
        else:
            squared += ((out - y).double().square() * mask).sum(dim=(0, 2)).cpu()
    loss = loss_sum / examples if examples else math.nan
    if ranking is not None:
        result = ranking.result()
        return SplitMetrics(
            f"map@{k}", result.per_task.tolist(), result.macro, result.micro, loss, examples, result.counts.tolist()
        )
    entries = torch.tensor([examples * c for c in data.labels_per_task], dtype=torch.float64)
    per_task = (squared / entries).tolist() if examples else [math.nan] * num_tasks
    micro = float(squared.sum() / entries.sum()) if examples else math.nan
    macro = float(np.mean(per_task)) if examples else math.nan
    return SplitMetrics("mse", per_task, macro, micro, loss, examples, [int(e) for e in entries])


@torch.no_grad()
def max_output_difference(
    a: MultiTaskModel, b: MultiTaskModel, split: MultiLabelSplit, batch_size: int, device: torch.device
) -> float:
    """Largest absolute difference between two models' eval-mode outputs on ``split``."""
    a.eval()
    b.eval()
    worst = 0.0
    for rows in split.batches(batch_size):
        x = split.x[rows].to(device)
        worst = max(worst, float((a(x) - b(x)).abs().max()))
    return worst


def _selection_key(metrics: dict[str, Any]) -> float:
    """Sort key for model selection on validation (larger is better; NaN, e.g. no val split, is worst)."""
    value = metrics["macro"]
    if value is None or math.isnan(value):
        return -math.inf
    return value if metrics["metric"].startswith("map") else -value


@dataclass
class MultiLabelTrainer:
    """Trains one :class:`MultiTaskModel` on one :class:`MultiLabelData`, as a :class:`MultiLabelRunConfig` says."""

    config: MultiLabelRunConfig
    data: MultiLabelData
    callbacks: Callbacks = field(default_factory=Callbacks)

    def __post_init__(self) -> None:
        cfg = self.config
        cfg.check()
        self.device = resolve_device(cfg.device)
        self.run_dir = cfg.run_dir()
        self.run_directory = RunDirectory(self.run_dir)
        self.gate_generator = torch.Generator()
        self.model = self._build_model().to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.results: dict[str, Any] = self._new_results()
        self.start_epoch = 1

    # ---- set-up -----------------------------------------------------------------------------
    def _build_model(self) -> MultiTaskModel:
        """The model with weights drawn from ``seed`` (without disturbing the caller's RNG stream).

        Models with hard concrete gates get the trainer's own noise generator, reseeded every
        epoch, so their gate samples replay exactly on resume.
        """
        cfg = self.config
        model_cls = MultiTaskModel.registry.get(cfg.model)
        options = dict(cfg.agent_options)
        if "gate_generator" in inspect.signature(model_cls.__init__).parameters:
            options["gate_generator"] = self.gate_generator
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return model_cls(self.data.input_dim, self.data.labels_per_task, **options)

    def _new_results(self) -> dict[str, Any]:
        d = self.data
        return {
            "kind": "multilabel",
            "status": "running",
            "config": self.config.to_dict(),
            "env": {
                "name": d.name, "problem": d.problem, "task_names": d.task_names,
                "labels_per_task": d.labels_per_task, "input_dim": d.input_dim,
                "samples": {"train": len(d.train), "val": len(d.val), "test": len(d.test)},
            },
            "model": {"name": self.config.model, "class": type(self.model).__name__, "repr": repr(self.model)},
            "metric": self.metric_name,
            "device": str(self.device),
            "epochs": [],
        }

    @property
    def metric_name(self) -> str:
        return f"map@{self.config.map_k}" if self.data.problem == "multilabel" else "mse"

    # ---- run directory and resume -----------------------------------------------------------
    def prepare_run_dir(self, resume: bool, overwrite: bool = False) -> None:
        """Refuse to clobber an existing run unless asked; on ``resume`` load the last checkpoint."""
        state = self.run_directory.open(resume, overwrite, self.config.differences, self.device)
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.results = state["results"]
        self.results["config"] = self.config.to_dict()
        self.start_epoch = int(state["epoch"]) + 1

    def _save(self, epoch: int) -> None:
        self.run_directory.save(epoch, self.config.to_dict(), self.results, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
        })

    # ---- one epoch --------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split; returns mean task loss, regularisation and timing."""
        cfg = self.config
        torch.manual_seed(epoch_seed(cfg.seed, epoch, 0))
        data_gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, 1))
        self.gate_generator.manual_seed(epoch_seed(cfg.seed, epoch, 3))
        mask = self.data.label_mask.to(self.device)
        self.model.train()
        loss_sum, reg_sum, samples = 0.0, 0.0, 0
        start = time.perf_counter()
        for b, rows in enumerate(self.data.train.batches(cfg.batch_size, data_gen, shuffle=True)):
            if cfg.max_batches_per_epoch is not None and b >= cfg.max_batches_per_epoch:
                break
            x, y = self.data.train.gather(rows)
            x, y = x.to(self.device), y.to(self.device)
            task_loss = multitask_loss(self.model(x), y, mask, self.data.problem)
            regularization = self.model.regularization()
            loss = task_loss + regularization
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch}, batch {b + 1} "
                    f"(task loss {task_loss.item()}); try a lower --lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            n = len(rows)
            task_value = task_loss.item()
            loss_sum += task_value * n
            reg_sum += float(regularization.detach()) * n
            samples += n
            if self.callbacks.on_batch:
                self.callbacks.on_batch(n, task_value)
        seconds = time.perf_counter() - start
        n = max(samples, 1)
        return {
            "train_loss": loss_sum / n,
            "regularization": reg_sum / n,
            "train_seconds": seconds,
            "samples_per_second": samples / seconds if seconds > 0 else math.nan,
        }

    def evaluate(self, split: MultiLabelSplit, model: MultiTaskModel | None = None) -> SplitMetrics:
        """Metrics of ``model`` (default: the trained model, gates at their serving values) on ``split``."""
        cfg = self.config
        return evaluate_model(model or self.model, split, self.data, cfg.map_k, cfg.eval_batch_size, self.device)

    def structure(self) -> dict[str, Any]:
        """Parameter counts, sub-network utilisation by task, and gate statistics of the model now.

        ``utilization`` is the model's ``[T, n_subnetworks]`` matrix (SNR: 1 where a task reaches a
        sub-network through non-zero serving gates; MMoE-type: mean gate weight on the first
        ``eval_batch_size`` test inputs) or None (shared-bottom has no sub-networks).
        ``utilization_per_task`` is the fraction of sub-networks each task uses at all (non-zero
        entry): pruning shows up here for SNR, while softmax gates are never exactly 0, so MMoE
        models always read 1.0.
        """
        self.model.eval()
        with torch.no_grad():
            counts = self.model.parameter_counts()
            probe = self.data.test.x[: self.config.eval_batch_size].to(self.device)
            util = self.model.utilization(probe)
            gate_modules = getattr(self.model, "gate_modules", None)
            expected_l0 = getattr(self.model, "expected_l0", None)
            gate_stats = None
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

    def serving_check(self, gated_test: SplitMetrics) -> dict[str, Any]:
        """Evaluate the pruned serving model on the test split and compare it with the gated model."""
        serving = self.model.serving_model().to(self.device)
        test = self.evaluate(self.data.test, serving)
        differences = [abs(a - b) for a, b in zip(test.per_task, gated_test.per_task) if not (math.isnan(a) and math.isnan(b))]
        differences += [abs(test.macro - gated_test.macro), abs(test.micro - gated_test.micro)]
        largest = max(differences)
        return {
            "parameters": sum(p.numel() for p in serving.parameters() if p.requires_grad),
            "test": test.to_dict(),
            "gated_test_macro": gated_test.macro,
            "gated_test_micro": gated_test.micro,
            "max_metric_difference": largest,
            "max_output_difference": max_output_difference(
                self.model, serving, self.data.test, self.config.eval_batch_size, self.device
            ),
            "metrics_equal": bool(largest <= SERVING_TOLERANCE),
        }

    # ---- the run ----------------------------------------------------------------------------
    def fit(self, logger: TensorBoardLogger | None = None) -> dict[str, Any]:
        """Train from ``start_epoch`` to ``epochs``; returns the results dictionary (also on disk)."""
        cfg = self.config
        if logger and self.start_epoch == 1:
            logger.text("config", "\n".join(f"    {k}: {v}" for k, v in cfg.to_dict().items()), 0)
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            if self.callbacks.on_epoch_start:
                self.callbacks.on_epoch_start(epoch, cfg.epochs)
            train = self.train_epoch(epoch)
            eval_start = time.perf_counter()
            val = self.evaluate(self.data.val)
            test = self.evaluate(self.data.test)
            record: dict[str, Any] = {
                "epoch": epoch,
                **train,
                "eval_seconds": time.perf_counter() - eval_start,
                "val": val.to_dict(),
                "test": test.to_dict(),
                **self.structure(),
            }
            self.results["epochs"].append(record)
            if epoch == cfg.epochs:
                self.results["serving"] = self.serving_check(test)
                self.results["status"] = "complete"
            self._summarise()
            if logger:
                self._log(logger, record, epoch)
            self._save(epoch)
            if self.callbacks.on_epoch_end:
                self.callbacks.on_epoch_end(record)
        return self.results

    def _log(self, logger: TensorBoardLogger, record: dict[str, Any], epoch: int) -> None:
        """TensorBoard: ``losses/``, ``charts/`` (means, sizes) and the metric of every task per split."""
        tag = self.metric_name.replace("@", "")
        scalars = {
            "losses/train_loss": record["train_loss"], "losses/regularization": record["regularization"],
            "losses/val_loss": record["val"]["loss"], "losses/test_loss": record["test"]["loss"],
            "charts/samples_per_second": record["samples_per_second"],
            "charts/train_parameters": record["parameters"]["train"],
            "charts/serving_parameters": record["parameters"]["serving"],
        }
        for split in ("val", "test"):
            scalars[f"charts/{split}_{tag}_macro"] = record[split]["macro"]
            scalars[f"charts/{split}_{tag}_micro"] = record[split]["micro"]
            for k, value in enumerate(record[split]["per_task"]):
                scalars[f"{tag}_{split}/task{k:02d}_{self.data.task_names[k]}"] = value
        if record["gates"] is not None:
            scalars["charts/open_gates"] = record["gates"]["open"]
            scalars["charts/expected_l0"] = record["gates"]["expected_l0"]
        logger.scalars(scalars, epoch)
        if record["utilization"] is not None:
            logger.writer.add_image("utilization", matrix_image(np.asarray(record["utilization"])), epoch)

    def _summarise(self) -> None:
        """Final numbers: the last epoch, and the epoch with the best validation macro score (model selection)."""
        epochs = self.results["epochs"]
        best = max(epochs, key=lambda r: (_selection_key(r["val"]), -r["epoch"]))
        last = epochs[-1]
        self.results["final"] = {
            "epoch": last["epoch"],
            "metric": self.metric_name,
            "test_macro": last["test"]["macro"],
            "test_micro": last["test"]["micro"],
            "test_per_task": last["test"]["per_task"],
            "parameters": last["parameters"],
            "best_val_epoch": best["epoch"],
            "best_val_macro": best["val"]["macro"],
            "test_macro_at_best_val": best["test"]["macro"],
            "test_micro_at_best_val": best["test"]["micro"],
            "mean_train_seconds_per_epoch": sum(r["train_seconds"] for r in epochs) / len(epochs),
        }


__all__ = [
    "MODEL_ALIASES",
    "MultiLabelRunConfig",
    "MultiLabelTrainer",
    "SplitMetrics",
    "evaluate_model",
    "max_output_difference",
    "resolve_model_name",
]

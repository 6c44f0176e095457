"""The one training loop: data -> task family -> learner -> losses -> scores -> results and logs.

Every run, a router in its routed network or a multi-task model, on single-label, multi-label or
regression tasks, goes through :class:`Trainer`. Every epoch: train on each mini-batch (the
learner turns it into a loss), evaluate every task on the validation and test splits, log to
TensorBoard, write ``results.json`` and a checkpoint atomically. All randomness of an epoch is
seeded from ``(seed, epoch)`` (:mod:`routing_rl.core.seeding` lists every stream), so a run resumed
from its last checkpoint ends with exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from routing_rl.data import MultiLabelSplit, MultiTaskDataset, Split
from routing_rl.training.loop.clipping import clip_weight_gradients
from routing_rl.training.setup.config import RunConfig
from routing_rl.core.contracts import Batch, SplitScore
from routing_rl.core.records import EpochRecord, ResultsRecord
from routing_rl.core.seeding import EpochStream, epoch_generator, epoch_seed
from routing_rl.data.families import task_family
from routing_rl.training.records.io import CheckpointError
from routing_rl.training.setup.composition import Composition
from routing_rl.training.loop.determinism import select_cuda_kernels
from routing_rl.training.loop.learner import Learner, StepResult
from routing_rl.training.loop.learner_factory import make_learner
from routing_rl.training.records.results import SCHEMA_VERSION, ResultsError, now, provenance, resume_record, summarise, validate
from routing_rl.training.records.run_dir import RunDirectory
from routing_rl.training.records.tb_logger import TensorBoardLogger, task_tag


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or rose far above its first value; the run stops rather
    than train on garbage."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"invalid --device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


@dataclass
class Callbacks:
    """Optional observers of a run (the CLI's progress display uses them)."""

    on_epoch_start: Callable[[int, int], None] | None = None
    on_batch: Callable[[int, float], None] | None = None
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None


def set_epoch_learning_rates(
    optimizers: Iterable[torch.optim.Optimizer], epoch: int, milestones: Sequence[int], decay: float | Sequence[float]
) -> None:
    """Step decay: every parameter group trains epoch ``epoch`` (1-based) at its initial rate times
    the factor of each milestone passed (``m < epoch``): ``decay`` for all, or one factor per
    milestone. The public routing code's schedules (0-based epochs) are ``{0: 1e-2, 5: 1e-3, 10:
    1e-4}`` at cd4e9af, ``--lr 1e-2 --lr-milestones 5,10 --lr-decay 0.1``, and ``{0: 3e-3, 5: 1e-3,
    10: 3e-4}`` later, ``--lr 3e-3 --lr-milestones 5,10 --lr-decay 0.3333333333333333,0.3``.

    The rate is recomputed from the epoch, not stepped, so a resumed run trains at the same rates.
    """
    if not milestones:
        return
    passed = [m < epoch for m in milestones]
    if isinstance(decay, (list, tuple)):
        factor = math.prod(f for f, p in zip(decay, passed, strict=True) if p)
    else:
        factor = decay ** sum(passed)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


@dataclass
class EpochFeed:
    """One training epoch in progress: its batches' row indices, augmentation generator and running sums.

    The solo loop (:meth:`Trainer.train_epoch`) and a population (:mod:`routing_rl.training.loop.population`)
    drive the same pieces: begin the epoch, take batches, account for each trained batch, end it.
    """

    epoch: int
    rows: Iterator[torch.Tensor]
    aug_gen: torch.Generator
    stepping: bool
    start: float
    batches: int = 0
    samples: int = 0
    loss_sum: float = 0.0
    data_seconds: float = 0.0
    sums: dict[str, float] = field(default_factory=dict)


@dataclass
class Trainer:
    """Trains the learner of a composed run on its data; see the module docstring.

    The one way to build it: from a :class:`~routing_rl.training.setup.composition.Composition` (the
    config checked and its names resolved once, by :func:`~routing_rl.training.setup.composition.compose`
    or ``configure``) and the data that composition loads. ``run_directory`` is the run's one
    :class:`RunDirectory`: the run sequence passes the one whose lock it took before loading the
    data; without it the trainer makes the composition's."""

    parts: Composition
    data: MultiTaskDataset
    run_directory: RunDirectory | None = None
    command: list[str] | None = None
    callbacks: Callbacks = field(default_factory=Callbacks)

    def __post_init__(self) -> None:
        cfg = self.config
        if self.run_directory is None:
            self.run_directory = RunDirectory(self.parts.run_dir())
        self.run_dir = self.run_directory.path
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            select_cuda_kernels(cfg.deterministic)
        self.family = task_family(self.data, cfg.map_k)
        self.learner: Learner = make_learner(self.parts, self.family, self.device)
        self.results: ResultsRecord = self._new_results()
        self.start_epoch = 1
        self.first_loss: float | None = None
        """The first training batch's task loss, which the divergence stop compares with (run state,
        kept in the checkpoint, not in the results)."""

    @property
    def config(self) -> RunConfig:
        """The run's checked options (the composition's)."""
        return self.parts.config

    def _new_results(self) -> ResultsRecord:
        d, family = self.data, self.family
        env: dict[str, Any] = {
            "name": d.name, "family": family.name, "task_names": d.task_names, "head_sizes": family.head_sizes,
            "input_shape": list(family.input_shape),
            "samples": {"train": len(d.train), "val": len(d.val), "test": len(d.test)},
            "info": json.loads(json.dumps(getattr(d, "info", {}) or {}, default=str)),  # source files, augmentation, task choice
        }  # fmt: skip
        return {
            "schema_version": SCHEMA_VERSION,
            "status": "running",
            "config": self.config.to_dict(),
            "provenance": provenance(self.device, self.command),
            "env": env,
            "learner": self.learner.describe(),
            "metric": {"name": family.metric, "higher_is_better": family.higher_is_better, "tasks": family.task_metrics()},
            "epochs": [],
        }

    # ---- run directory ----------------------------------------------------------------------
    def prepare_run_dir(self, resume: bool, overwrite: bool = False) -> None:
        """Refuse to clobber an existing run unless asked; on ``resume`` load the last checkpoint."""
        state = self.run_directory.open(resume, overwrite, self.config.differences, self.device)
        if state is None:
            return
        path = self.run_directory.checkpoint_path
        try:
            validate(state["results"], path)
        except ResultsError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            raise CheckpointError(f"cannot resume from {path}: its results record is not valid ({reason}); "
                                  "the checkpoint is damaged (start again with --overwrite)") from None  # fmt: skip
        try:
            self.learner.load_state(state)
        except ValueError as exc:
            raise CheckpointError(
                f"cannot resume from {path}: {exc}; it was written by another run or is damaged (start again with --overwrite)"
            ) from None
        self.results = state["results"]
        # checkpoints written before the first loss left the results record kept it there
        self.first_loss = state.get("first_loss", self.results.pop("first_loss", None))
        self.results["config"] = self.config.to_dict()
        self.start_epoch = int(state["epoch"]) + 1
        self.results["provenance"].setdefault("resumes", []).append(resume_record(self.start_epoch, self.device))

    def _save(self, epoch: int) -> None:
        self.results["provenance"]["ended"] = now()
        self.run_directory.save(epoch, self.config.to_dict(), dict(self.results), {**self.learner.state(), "first_loss": self.first_loss})

    # ---- one epoch --------------------------------------------------------------------------
    def begin_train_epoch(self, epoch: int) -> EpochFeed:
        """Seed the epoch's streams, set its learning rates and start its batches (see :class:`EpochFeed`)."""
        cfg = self.config
        torch.manual_seed(epoch_seed(cfg.seed, epoch, EpochStream.GLOBAL))
        data_gen = epoch_generator(cfg.seed, epoch, EpochStream.DATA_ORDER)
        aug_gen = epoch_generator(cfg.seed, epoch, EpochStream.AUGMENTATION)
        self.learner.begin_epoch(epoch, epoch_seed(cfg.seed, epoch, EpochStream.SAMPLING))
        set_epoch_learning_rates(self.learner.optimizers.values(), epoch, cfg.lr_milestones, cfg.lr_decay)
        # --step-epochs: the public code's loop steps no optimizer in other epochs (its optimizer list
        # is empty), yet plays every batch (BatchNorm statistics, sampled routes, collaboration history)
        stepping = not cfg.step_epochs or epoch in cfg.step_epochs
        return EpochFeed(epoch, iter(self.data.train.batches(cfg.batch_size, data_gen, shuffle=True)), aug_gen, stepping,
                         time.perf_counter())  # fmt: skip

    def next_batch(self, feed: EpochFeed) -> Batch | None:
        """The epoch's next training batch on the device (None after the last, or at ``--max-batches``)."""
        limit = self.config.max_batches_per_epoch
        if limit is not None and feed.batches >= limit:
            return None
        fetch = time.perf_counter()
        rows = next(feed.rows, None)
        if rows is None:
            return None
        batch = self.family.gather(self.data.train, rows, self.device, feed.aug_gen)
        feed.data_seconds += time.perf_counter() - fetch
        return batch

    def account(self, feed: EpochFeed, step: StepResult, batch: Batch) -> None:
        """The divergence stop and the epoch's sums for one trained batch."""
        feed.batches += 1
        task_loss = step.task_loss.item()
        self._check_divergence(feed.epoch, feed.batches, step.loss.item(), task_loss)
        n = batch.size
        feed.loss_sum += task_loss * n
        feed.samples += n
        for key, value in step.sums.items():
            feed.sums[key] = feed.sums.get(key, 0.0) + value
        if self.callbacks.on_batch:
            self.callbacks.on_batch(n, task_loss)

    def end_train_epoch(self, feed: EpochFeed) -> dict[str, float]:
        """The training part of the epoch's record."""
        seconds = time.perf_counter() - feed.start
        n = max(feed.samples, 1)
        return {
            "train_loss": feed.loss_sum / n,
            **{key: value / n for key, value in feed.sums.items()},
            "train_seconds": seconds,
            "data_seconds": feed.data_seconds,  # batching, gathering and augmenting rows: the data pipeline's share
            "samples_per_second": feed.samples / seconds if seconds > 0 else math.nan,
        }

    def train_epoch(self, epoch: int) -> dict[str, float]:
        feed = self.begin_train_epoch(epoch)
        while (batch := self.next_batch(feed)) is not None:
            step = self.learner.train_step(batch, epoch)
            self.account(feed, step, batch)
            if feed.stepping:
                self._update(step)
        return self.end_train_epoch(feed)

    def _update(self, step: StepResult) -> None:
        """Back-propagate the step's loss, clip the weights' gradients (``--grad-clip``), step every optimizer."""
        self.zero_grad()
        step.loss.backward()
        self.apply_gradients(step)

    def zero_grad(self) -> None:
        """Every optimized parameter's gradient set to None, as ``zero_grad(set_to_none=True)`` does,
        without its profiler scope per call (a population clears each member's every step)."""
        for opt in self.learner.optimizers.values():
            for group in opt.param_groups:
                for param in group["params"]:
                    param.grad = None

    def apply_gradients(self, step: StepResult) -> None:
        """With the step's gradients in place: clip the weights' (``--grad-clip``), step every optimizer, then the learner's hook."""
        self.clip_gradients()
        for opt in self.learner.optimizers.values():
            opt.step()
        self.learner.after_step(step)

    def clip_gradients(self) -> None:
        """``--grad-clip``: the weights' gradients clipped, the router's left as they are."""
        if self.config.grad_clip is not None:
            clip_weight_gradients(self.learner.weight_parameters, self.config.grad_clip, self.config.grad_clip_mode)

    def _check_divergence(self, epoch: int, batch: int, loss: float, task_loss: float) -> None:
        """Stop on a non-finite loss, or on a task loss over ``divergence_factor`` times the run's first
        (floored at 1, so that a near-zero start does not make ordinary noise look like divergence)."""
        if not math.isfinite(loss):
            self._stop_diverged(epoch, batch, loss, task_loss, f"loss became {loss} at epoch {epoch}, batch {batch} (task loss {task_loss})")
        if self.first_loss is None:
            self.first_loss = task_loss
        first = self.first_loss
        factor = self.config.divergence_factor
        if factor and task_loss > factor * max(first, 1.0):
            self._stop_diverged(
                epoch, batch, loss, task_loss,
                f"loss {task_loss:.4g} at epoch {epoch}, batch {batch} is over {factor:g} times the first batch's "
                f"{first:.4g} (--divergence-factor)",
            )  # fmt: skip

    def _stop_diverged(self, epoch: int, batch: int, loss: float, task_loss: float, what: str) -> None:
        """Record ``status: diverged`` with where it happened (results only, no checkpoint), then stop."""
        message = f"{what}; the run diverged, try a lower --lr"
        self.results["status"] = "diverged"
        self.results["divergence"] = {"epoch": epoch, "batch": batch, "loss": loss, "task_loss": task_loss}
        self.results["provenance"]["ended"] = now()
        self.run_directory.save_results(self.results)
        raise TrainingDiverged(message)

    @torch.no_grad()
    def evaluate(self, split: Split | MultiLabelSplit, predict: Callable[[Batch], torch.Tensor]) -> SplitScore:
        """Scores of ``predict`` (greedy routes or serving gates) on every task of ``split``."""
        scorer = self.family.scorer()
        for rows in split.batches(self.config.eval_rows(self.family.input_shape)):
            batch = self.family.gather(split, rows, self.device)
            scorer.update(predict(batch), batch)
        return scorer.result()

    # ---- the run ----------------------------------------------------------------------------
    def fit(self, logger: TensorBoardLogger | None = None) -> ResultsRecord:
        """Train from ``start_epoch`` to ``epochs``; returns the results dictionary (also on disk)."""
        self.run_directory.acquire()
        try:
            return self._fit(logger)
        finally:
            self.run_directory.release()

    def _fit(self, logger: TensorBoardLogger | None) -> ResultsRecord:
        self.begin_fit(logger)
        for epoch in range(self.start_epoch, self.config.epochs + 1):
            self.begin_epoch(epoch)
            self.end_epoch(epoch, self.train_epoch(epoch), logger)
        return self.results

    def begin_fit(self, logger: TensorBoardLogger | None) -> None:
        """What a run logs before its first epoch: its options (a fresh run only)."""
        if logger and self.start_epoch == 1:
            logger.text("config", "\n".join(f"    {k}: {v}" for k, v in self.config.to_dict().items()), 0)

    def begin_epoch(self, epoch: int) -> None:
        if self.callbacks.on_epoch_start:
            self.callbacks.on_epoch_start(epoch, self.config.epochs)

    def end_epoch(self, epoch: int, train: dict[str, float], logger: TensorBoardLogger | None) -> None:
        """After the epoch's training: evaluate, record, log and save the epoch (and finish the run after its last)."""
        cfg = self.config
        eval_start = time.perf_counter()
        self.learner.eval_mode()
        predict = lambda batch: self.learner.predict(batch, epoch)  # noqa: E731
        val = self.evaluate(self.data.val, predict)
        test = self.evaluate(self.data.test, predict)
        record: EpochRecord = {  # type: ignore[typeddict-item]  # the learner's keys are its own
            "epoch": epoch, **train, "eval_seconds": time.perf_counter() - eval_start,
            "val": val.to_dict(), "test": test.to_dict(), **self.learner.epoch_record(epoch),
        }  # fmt: skip
        self.results["epochs"].append(record)
        if epoch == cfg.epochs:
            check = self.learner.finish(lambda p: self.evaluate(self.data.test, p), test)
            if check is not None:
                self.results["serving"] = check
            self.results["status"] = "complete"
        self.results["final"] = summarise(self.results["epochs"], self.family.metric, self.family.higher_is_better)
        if logger:
            self._log(logger, record, epoch)
            if self.results["status"] == "complete":
                logger.hparams(cfg.to_dict(), self.results["final"])
        self._save(epoch)
        if self.callbacks.on_epoch_end:
            self.callbacks.on_epoch_end(record)

    def _log(self, logger: TensorBoardLogger, record: dict[str, Any], epoch: int) -> None:
        """``losses/``, ``charts/`` (means, speed, sizes), the metric of every task per split, then the learner's own."""
        tag = self.family.metric.replace("@", "")
        scalars = {
            "losses/train_loss": record["train_loss"], "losses/val_loss": record["val"]["loss"],
            "losses/test_loss": record["test"]["loss"], "charts/samples_per_second": record["samples_per_second"],
            "charts/train_parameters": record["parameters"]["train"],
            "charts/serving_parameters": record["parameters"]["serving"],
        }  # fmt: skip
        for split in ("val", "test"):
            scalars[f"charts/{split}_{tag}_mean"] = record[split]["mean"]
            scalars[f"charts/{split}_{tag}_micro"] = record[split]["micro"]
            for k, value in enumerate(record[split]["per_task"]):
                names = self.data.task_names
                scalars[f"{tag}_{split}/{task_tag(k, names[k] if k < len(names) else None)}"] = value
        logger.scalars(scalars, epoch)
        self.learner.log(logger, record, epoch)


__all__ = ["Callbacks", "Trainer", "TrainingDiverged", "resolve_device"]

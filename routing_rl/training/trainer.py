"""The training loop: data -> batched routing episodes -> router -> network -> losses -> logs.

Every epoch: play each training mini-batch as a batch of routing episodes, minimise the task
loss (plus the router's own loss, for routers that learn), then evaluate every task on the
validation and test splits with greedy routes, log to TensorBoard, write ``results.json`` and a
checkpoint atomically. All randomness of an epoch is seeded from ``(seed, epoch)``, so a run
resumed from its last checkpoint ends with exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from routing_rl.agents import Router
from routing_rl.analysis.similarity import cosine_similarity_matrix
from routing_rl.agents.shared_bottom import SharedBottomRouter
from routing_rl.data import MultiTaskData, Split
from routing_rl.envs.batched import BatchedRoutingEnv
from routing_rl.envs.collaboration import CollaborationReward
from routing_rl.network import RoutingNetwork, build_network
from routing_rl.training.config import RunConfig
from routing_rl.training.io import read_json
from routing_rl.training.run_dir import RunDirectory, RunExistsError
from routing_rl.training.metrics import per_task_accuracy, perplexity
from routing_rl.training.tb_logger import TensorBoardLogger


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stops rather than train on garbage."""


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


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
    except RuntimeError as exc:
        raise ValueError(f"invalid --device {name!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, random stream)."""
    return (seed * 1_000_003 + epoch * 7919 + stream * 104_729) % (2**63 - 1)


@dataclass
class EvalResult:
    """Per-task accuracy and mean loss of one split under greedy routes."""

    accuracy: list[float]
    loss: float

    @property
    def mean(self) -> float:
        finite = [a for a in self.accuracy if not math.isnan(a)]
        return sum(finite) / len(finite) if finite else float("nan")


@dataclass
class Callbacks:
    """Optional observers of a run (the CLI's progress display uses them)."""

    on_epoch_start: Callable[[int, int], None] | None = None
    on_batch: Callable[[int, float], None] | None = None
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None


@dataclass
class Trainer:
    """Trains one router + routed network on one task suite, as configured by a :class:`RunConfig`."""

    config: RunConfig
    data: MultiTaskData
    callbacks: Callbacks = field(default_factory=Callbacks)

    def __post_init__(self) -> None:
        cfg = self.config
        cfg.check()
        if cfg.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")
        self.device = resolve_device(cfg.device)
        self.run_dir = cfg.run_dir()
        self.run_directory = RunDirectory(self.run_dir)
        self.network: RoutingNetwork = build_network(
            self.data.input_shape, self.data.num_tasks, self.data.num_classes, cfg.routed, cfg.blocks,
            seed=cfg.seed, hidden=cfg.hidden, filters=cfg.filters,
        ).to(self.device)
        router_cls = Router.registry.get(cfg.agent)
        self.router: Router = router_cls(
            self.data.num_tasks, self.network.num_routed, max(self.network.blocks_per_layer, default=1),
            seed=cfg.seed, **cfg.agent_options,
        ).to(self.device)
        self.warmup_router = SharedBottomRouter(
            self.data.num_tasks, self.network.num_routed, self.router.num_blocks
        ).to(self.device)
        step_rewards = [CollaborationReward(cfg.collab_reward, cfg.collab_window)] if cfg.collab_reward else []
        self.env = BatchedRoutingEnv(
            self.network, reward=cfg.reward, step_rewards=step_rewards, observe_hidden=cfg.observe_hidden
        )
        self.optimizers = self._make_optimizers()
        self.results: dict[str, Any] = self._new_results()
        self.start_epoch = 1

    # ---- set-up -----------------------------------------------------------------------------
    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer over everything (as the public routing code) or one per parameter set.

        ``--optimizer sgd`` is plain SGD: its step scales with the gradient, so a router whose
        gradients explode (the public-code WPL projection) really takes the huge step; Adam
        normalises the step size and hides the explosion.
        """
        optimizer_cls = OPTIMIZERS[self.config.optimizer]
        weights = list(self.network.parameters())
        router_params = [p for p in self.router.parameters() if p.requires_grad]
        router_lr = self.config.router_lr if self.config.router_lr is not None else self.config.lr
        if self.config.separate_optimizers:
            optimizers = {"weights": optimizer_cls(weights, lr=self.config.lr)}
            if router_params:
                optimizers["router"] = optimizer_cls(router_params, lr=router_lr)
            return optimizers
        groups: list[dict[str, Any]] = [{"params": weights, "lr": self.config.lr}]
        if router_params:
            groups.append({"params": router_params, "lr": router_lr})
        return {"all": optimizer_cls(groups)}

    def _new_results(self) -> dict[str, Any]:
        d = self.data
        return {
            "status": "running",
            "config": self.config.to_dict(),
            "env": {
                "name": d.name, "task_names": d.task_names, "num_classes": d.num_classes,
                "input_shape": list(d.input_shape),
                "samples": {"train": len(d.train), "val": len(d.val), "test": len(d.test)},
            },
            "network": {
                "layers": [s.to_dict() for s in self.network.specs],
                "routed_layers": self.network.routed_layer_names,
                "parameters": sum(p.numel() for p in self.network.parameters()),
                "router_parameters": sum(p.numel() for p in self.router.parameters()),
            },
            "device": str(self.device),
            "epochs": [],
        }

    # ---- resume -----------------------------------------------------------------------------
    def prepare_run_dir(self, resume: bool, overwrite: bool = False) -> None:
        """Refuse to clobber an existing run unless asked; on ``resume`` load the last checkpoint."""
        state = self.run_directory.open(resume, overwrite, self.config.differences, self.device)
        if state is None:
            return
        self.network.load_state_dict(state["network"])
        self.router.load_state_dict(state["router"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.results = state["results"]
        self.results["config"] = self.config.to_dict()
        self.start_epoch = int(state["epoch"]) + 1

    def _save(self, epoch: int) -> None:
        self.run_directory.save(epoch, self.config.to_dict(), self.results, {
            "network": self.network.state_dict(),
            "router": self.router.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        })

    # ---- one epoch --------------------------------------------------------------------------
    def routing_policy(self, epoch: int) -> Router:
        """The router in charge this epoch: everything shared during warm-up, the agent afterwards."""
        return self.warmup_router if epoch <= self.config.warmup_epochs else self.router

    def _batch(self, split: Split, rows: torch.Tensor, train: bool, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        x, y, t = split.gather(rows)
        if train and self.data.augment is not None:
            x = self.data.augment(x, gen)
        return x.to(self.device), y.to(self.device), t.to(self.device)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.config
        torch.manual_seed(epoch_seed(cfg.seed, epoch, 0))
        data_gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, 1))
        aug_gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, 2))
        self.router.reseed(epoch_seed(cfg.seed, epoch, 3))
        for term in self.env.step_rewards:
            if hasattr(term, "reset"):
                term.reset()
        router = self.routing_policy(epoch)
        learn_router = router is self.router
        self.network.train()
        self.router.train()
        totals = {"loss": 0.0, "router_loss": 0.0, "correct": 0.0, "reward": 0.0, "samples": 0}
        start = time.perf_counter()
        for b, rows in enumerate(self.data.train.batches(cfg.batch_size, data_gen, shuffle=True)):
            if cfg.max_batches_per_epoch is not None and b >= cfg.max_batches_per_epoch:
                break
            x, y, t = self._batch(self.data.train, rows, True, aug_gen)
            episodes = self.env.run(x, y, t, lambda obs: router.act(obs, explore=True))
            task_loss = episodes.loss.mean()
            router_loss = router.loss(episodes) if learn_router else None
            loss = task_loss if router_loss is None else task_loss + router_loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch}, batch {b + 1} "
                    f"(task loss {task_loss.item()}); try a lower --lr"
                )
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in self.optimizers.values():
                opt.step()
            if router_loss is not None:
                router.after_update()
            n = int(y.shape[0])
            task_loss_value = task_loss.item()
            totals["loss"] += task_loss_value * n
            totals["router_loss"] += router_loss.item() * n if router_loss is not None else 0.0
            totals["correct"] += float((episodes.logits.argmax(1) == y).sum())
            totals["reward"] += float(episodes.final_reward.sum())
            totals["samples"] += n
            if self.callbacks.on_batch:
                self.callbacks.on_batch(n, task_loss_value)
        seconds = time.perf_counter() - start
        n = max(totals["samples"], 1)
        return {
            "train_loss": totals["loss"] / n,
            "router_loss": totals["router_loss"] / n,
            "train_accuracy": totals["correct"] / n,
            "train_reward": totals["reward"] / n,
            "train_seconds": seconds,
            "samples_per_second": totals["samples"] / seconds if seconds > 0 else float("nan"),
        }

    @torch.no_grad()
    def evaluate(self, split: Split, epoch: int | None = None) -> EvalResult:
        """Per-task accuracy with greedy routes (the router's most likely block)."""
        router = self.routing_policy(epoch) if epoch is not None else self.router
        self.network.eval()
        self.router.eval()
        hits, tasks, loss_sum = [], [], 0.0
        gen = torch.Generator()
        for rows in split.batches(self.config.eval_batch_size):
            x, y, t = self._batch(split, rows, False, gen)
            episodes = self.env.run(x, y, t, lambda obs: router.act(obs, explore=False))
            hits.append((episodes.logits.argmax(1) == y).cpu())
            tasks.append(t.cpu())
            loss_sum += float(episodes.loss.sum())
        hit = torch.cat(hits)
        acc = per_task_accuracy(hit, torch.cat(tasks), self.data.num_tasks)
        return EvalResult(acc, loss_sum / max(len(hit), 1))

    def policies(self, router: Router) -> list[torch.Tensor]:
        with torch.no_grad():
            return [router.policy(d).detach().float().cpu() for d in range(self.network.num_routed)]

    # ---- the run ----------------------------------------------------------------------------
    def fit(self, logger: TensorBoardLogger | None = None) -> dict[str, Any]:
        """Train from ``start_epoch`` to ``epochs``; returns the results dictionary (also on disk)."""
        cfg = self.config
        layer_names = self.network.routed_layer_names
        if logger and self.start_epoch == 1:
            logger.text("config", "\n".join(f"    {k}: {v}" for k, v in cfg.to_dict().items()), 0)
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            if self.callbacks.on_epoch_start:
                self.callbacks.on_epoch_start(epoch, cfg.epochs)
            train = self.train_epoch(epoch)
            eval_start = time.perf_counter()
            val = self.evaluate(self.data.val, epoch)
            test = self.evaluate(self.data.test, epoch)
            in_charge = self.routing_policy(epoch)
            policies = self.policies(in_charge)
            record: dict[str, Any] = {
                "epoch": epoch,
                **train,
                "eval_seconds": time.perf_counter() - eval_start,
                "routing_active": epoch > cfg.warmup_epochs,
                "val_loss": val.loss, "val_accuracy": val.accuracy, "val_accuracy_mean": val.mean,
                "test_loss": test.loss, "test_accuracy": test.accuracy, "test_accuracy_mean": test.mean,
                "policy": [p.tolist() for p in policies],
                "perplexity": [perplexity(p).tolist() for p in policies],
                "policy_similarity": [cosine_similarity_matrix(p.numpy()).round(6).tolist() for p in policies],
                "routes": in_charge.routes().cpu().tolist(),
            }
            self.results["epochs"].append(record)
            self._summarise()
            if logger:
                logger.scalars({
                    "losses/train_loss": train["train_loss"], "losses/router_loss": train["router_loss"],
                    "losses/val_loss": val.loss, "losses/test_loss": test.loss,
                    "charts/train_accuracy": train["train_accuracy"], "charts/train_reward": train["train_reward"],
                    "charts/samples_per_second": train["samples_per_second"],
                }, epoch)
                logger.accuracy("val", val.accuracy, self.data.task_names, epoch)
                logger.accuracy("test", test.accuracy, self.data.task_names, epoch)
                logger.routing(layer_names, policies, epoch)
            if epoch == cfg.epochs:
                self.results["status"] = "complete"
            self._save(epoch)
            if self.callbacks.on_epoch_end:
                self.callbacks.on_epoch_end(record)
        return self.results

    def _summarise(self) -> None:
        """Final numbers: last epoch, and the epoch with the best mean validation accuracy (model selection)."""
        epochs = self.results["epochs"]
        best = max(epochs, key=lambda r: (r["val_accuracy_mean"], -r["epoch"]))
        last = epochs[-1]
        self.results["final"] = {
            "epoch": last["epoch"],
            "test_accuracy_mean": last["test_accuracy_mean"],
            "test_accuracy": last["test_accuracy"],
            "routes": last["routes"],
            "best_val_epoch": best["epoch"],
            "best_val_accuracy_mean": best["val_accuracy_mean"],
            "test_accuracy_mean_at_best_val": best["test_accuracy_mean"],
            "mean_train_seconds_per_epoch": sum(r["train_seconds"] for r in epochs) / len(epochs),
        }


def load_results(run_dir: Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "results.json")


__all__ = ["Callbacks", "EvalResult", "RunExistsError", "Trainer", "TrainingDiverged", "resolve_device"]

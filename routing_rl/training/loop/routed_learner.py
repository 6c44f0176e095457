"""A routed network, its router and the batched routing env, as one learner of the trainer.

Every training batch is played as a batch of routing episodes (one per row for single-label
tasks; one per (example, task) pair for multi-label and regression tasks), the task loss is
back-propagated through the chosen blocks, and a learning router adds its own loss (policy
gradient, TD error, L0 penalty). During ``--warmup-epochs`` every task shares block 0 of every
routed layer and the router does not learn. Evaluation uses greedy routes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from routing_rl.agents import Router, RouterConfigError
from routing_rl.agents.shared_bottom import SharedBottomRouter
from routing_rl.core.contracts import Batch, EpisodeBatch, RoutingObservation
from routing_rl.envs.batched import BatchedRoutingEnv
from routing_rl.envs.collaboration import CollaborationReward
from routing_rl.metrics.routing import cosine_similarity_matrix, perplexity
from routing_rl.models.layers import count_parameters
from routing_rl.network import InputShapeError, RoutingNetwork, build_network
from routing_rl.data.families import TaskFamily
from routing_rl.training.loop.learner import Learner, StepResult, make_optimizers
from routing_rl.training.setup.options import section_values
from routing_rl.training.records.tb_logger import TensorBoardLogger
from routing_rl.training.setup.composition import Composition



NOT_GIVEN: Any = object()
"""``step_result``'s router loss when the caller has not computed it."""


class RoutedLearner(Learner):
    """The routing-network side of the trainer: network + router + env, with warm-up and optimizers."""

    kind = "router"

    def __init__(self, parts: Composition, family: TaskFamily, device: torch.device) -> None:
        super().__init__(parts, family, device)
        cfg = self.config
        net, episodes = parts.section("network"), parts.section("episodes")
        tasks = family.num_tasks
        try:
            self.network: RoutingNetwork = build_network(
                family.input_shape, tasks, family.head_sizes, net.routed, net.blocks,
                seed=cfg.seed, hidden=net.hidden, filters=net.filters, fc_layers=net.fc_layers, dropout=net.dropout,
            ).to(device)  # fmt: skip
        except InputShapeError as exc:  # the network cannot say which data it was given: name the file (or suite)
            info = getattr(family.data, "info", None) or {}
            raise InputShapeError(f"{info.get('file') or family.data.name}: {exc}") from None
        self.memory_format = torch.channels_last if net.channels_last and len(family.input_shape) == 3 else None
        if self.memory_format is not None:
            self.network = self.network.to(memory_format=self.memory_format)
        blocks = max(self.network.blocks_per_layer, default=1)
        router_cls = parts.agent_cls
        if router_cls.shares_nothing:
            self._refuse_sharing(router_cls.name)
        options = section_values(parts.section("agent"))
        if router_cls.needs_task_groups:  # routes from what the data knows of its tasks
            groups = (getattr(family.data, "info", None) or {}).get("groups")
            if groups is None:
                raise RouterConfigError(f"--agent {router_cls.name} routes by the suite's known task groups, and --env {family.data.name} "
                                        "records none; use synthetic-groups or multilabel-synthetic")  # fmt: skip
            options["task_groups"] = tuple(int(g) for g in groups)
        self.router: Router = router_cls(tasks, self.network.num_routed, blocks, seed=cfg.seed, **options).to(device)
        self.warmup_router = SharedBottomRouter(tasks, self.network.num_routed, blocks).to(device)
        step_rewards = [CollaborationReward(episodes.collab_reward, episodes.collab_window, episodes.collab_form, self.network.num_routed)] \
            if episodes.collab_reward else []  # fmt: skip
        self.env = BatchedRoutingEnv(
            self.network, step_rewards=step_rewards, observe_hidden=episodes.observe_hidden,
            objective=family.objective(episodes.reward, episodes.module_loss),
        )  # fmt: skip
        routing = [p for p in self.router.parameters() if p.requires_grad]
        self.weight_parameters = list(self.network.parameters())
        self.optimizers = make_optimizers(cfg, self.weight_parameters, routing, parts.router_lr)

    def _refuse_sharing(self, agent: str) -> None:
        """A router whose tasks may share nothing gets neither a shared layer nor a shared warm-up."""
        if self.config.warmup_epochs:
            raise RouterConfigError(
                f"{agent} gives every task a network of its own, but --warmup-epochs {self.config.warmup_epochs} would share "
                "every layer first: drop --warmup-epochs"
            )
        shared = [s.name for s in self.network.specs if s.mode == "shared"]
        if shared:
            raise RouterConfigError(
                f"{agent} gives every task a network of its own, but --routed {self.config.routed} leaves "
                f"{', '.join(shared)} shared: use --routed all"
            )

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch as routing episodes' inputs, images in the network's memory format."""
        x, targets, tasks = self.family.episodes(batch)
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        return x, targets, tasks

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"network": self.network, "router": self.router}

    def routing_policy(self, epoch: int | None) -> Router:
        """The router in charge: everything shared during warm-up, the agent afterwards."""
        if epoch is not None and epoch <= self.config.warmup_epochs:
            return self.warmup_router
        return self.router

    # ---- training ---------------------------------------------------------------------------
    def begin_epoch(self, epoch: int, sampling_seed: int) -> None:
        self.router.reseed(sampling_seed)
        for term in self.env.step_rewards:
            if hasattr(term, "reset"):
                term.reset()
        self.network.train()
        self.router.train()

    def train_step(self, batch: Batch, epoch: int) -> StepResult:
        router = self.routing_policy(epoch)
        x, targets, tasks = self._inputs(batch)
        episodes = self.env.run(x, targets, tasks, lambda obs: router.act(obs, explore=True))
        return self.step_result(batch, episodes, router)

    def step_result(self, batch: Batch, episodes: EpisodeBatch, router: Router, router_loss: Any = NOT_GIVEN) -> StepResult:
        """The losses and statistics of a batch's played episodes (``router`` played them: the agent,
        or the shared routes of warm-up, which learn nothing). ``router_loss``: the agent's loss on
        these episodes where it was computed already (a population's routers learn together,
        :func:`~routing_rl.training.loop.stacked_play.losses_together`)."""
        learn = router is self.router
        # --loss-reduction sum: the public code's Loss layer with reduction "none", summed (the corrected row)
        task_loss = episodes.loss.sum() if self.config.loss_reduction == "sum" else self.family.batch_loss(episodes.loss, batch)
        if router_loss is NOT_GIVEN:
            router_loss = router.loss(episodes) if learn else None
        loss = task_loss if router_loss is None else task_loss + router_loss
        n = batch.size
        sums = {
            "router_loss": router_loss.item() * n if router_loss is not None else 0.0,
            "train_reward": float(episodes.final_reward.sum()) * (n / episodes.final_reward.numel()),
        }
        if batch.tasks is not None:
            sums["train_accuracy"] = float((episodes.logits.argmax(1) == batch.y).sum())
        return StepResult(loss, task_loss, sums, learned_routing=router_loss is not None)

    def after_step(self, step: StepResult) -> None:
        if step.learned_routing:
            self.router.after_update()

    # ---- evaluation -------------------------------------------------------------------------
    def predict(self, batch: Batch, epoch: int) -> torch.Tensor:
        router = self.routing_policy(epoch)
        x, targets, tasks = self._inputs(batch)
        episodes = self.env.run(x, targets, tasks, lambda obs: router.act(obs, explore=False))
        return self.family.outputs_from_episodes(episodes.logits, batch)

    def policies(self, router: Router) -> list[torch.Tensor]:
        with torch.no_grad():
            return [router.policy(d).detach().float().cpu() for d in range(self.network.num_routed)]

    def parameter_counts(self, router: Router) -> dict[str, int]:
        """``train``: network and router parameters; ``serving``: the network without the blocks no
        task's greedy route (or open gate) reaches, as a deployed routed network would be pruned."""
        train = count_parameters(self.network) + count_parameters(self.router)
        serving = count_parameters(self.network)
        if self.config.observe_hidden:
            return {"train": train, "serving": serving}  # routes depend on the input: every block may serve
        tasks = torch.arange(self.family.num_tasks, device=self.device)
        with torch.no_grad():
            for depth, position in enumerate(self.network.routed_positions):
                decision = router.act(RoutingObservation(tasks, depth), explore=False)
                used = decision.blocks if decision.weights is None else decision.blocks[decision.weights != 0]
                used_set = set(used.flatten().tolist())
                blocks = self.network.layers[position].layer.blocks
                per_block = count_parameters(blocks) // len(blocks)  # a routed layer's blocks are copies of one spec
                serving -= per_block * (len(blocks) - len(used_set))
        return {"train": train, "serving": serving}

    def epoch_record(self, epoch: int) -> dict[str, Any]:
        in_charge = self.routing_policy(epoch)
        policies = self.policies(in_charge)
        routing: dict[str, Any] = {
            "active": epoch > self.config.warmup_epochs,
            "policy": [p.tolist() for p in policies],
            "perplexity": [perplexity(p).tolist() for p in policies],
            "policy_similarity": [cosine_similarity_matrix(p.numpy()).round(6).tolist() for p in policies],
            "routes": in_charge.routes().cpu().tolist(),
        }
        gates = self.serving_gates(in_charge)
        if gates is not None:
            routing["gates"] = gates
        return {"parameters": self.parameter_counts(in_charge), "routing": routing}

    def serving_gates(self, router: Router) -> list[list[list[float]]] | None:
        """A gated router's serving gate values per routed layer (``[layers][tasks][blocks]``), or None.

        Its normalised policy cannot tell a task whose gates are all closed from one whose gates are
        all open (both read uniform), so the raw gates are recorded: they say which blocks each task
        reads, which the route display and the "every gate stayed open" flag need."""
        read = getattr(router, "serving_gates", None)
        if read is None or not callable(read):
            return None
        with torch.no_grad():
            return [read(d).detach().float().cpu().tolist() for d in range(self.network.num_routed)]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "agent": self.config.agent,
            "class": type(self.router).__name__,
            "learns_routes": self.router.learns_routes,
            "layers": [s.to_dict() for s in self.network.specs],
            "routed_layers": self.network.routed_layer_names,
            "blocks_per_layer": self.network.blocks_per_layer,
            "head_sizes": self.network.head_sizes,
            "network_parameters": count_parameters(self.network),
            "router_parameters": sum(p.numel() for p in self.router.parameters()),
            "router_lr": self.parts.router_lr,
        }

    def log(self, logger: TensorBoardLogger, record: dict[str, Any], epoch: int) -> None:
        logger.scalars({
            "losses/router_loss": record["router_loss"], "charts/train_reward": record["train_reward"],
        }, epoch)  # fmt: skip
        if "train_accuracy" in record:
            logger.scalars({"charts/train_accuracy": record["train_accuracy"]}, epoch)
        policies = [torch.tensor(p) for p in record["routing"]["policy"]]
        logger.routing(self.network.routed_layer_names, policies, list(self.family.data.task_names), epoch,
                       learned=self.router.learns_routes)  # fmt: skip

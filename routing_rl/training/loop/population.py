"""A population: several trials of one network shape trained together, batch by batch, in one process.

Each member is a whole :class:`~routing_rl.training.loop.trainer.Trainer` of its own (its run
directory, seed, data order, augmentation, weights, router, optimizers, learning-rate schedule,
gradient clipping, loss reduction, results, checkpoint and TensorBoard files); the population
only replaces the solo loop's "play one batch, back-propagate it" with one step for everybody:

1. every member takes its own next batch (its own data order);
2. the batches run as one through the members' networks stacked as one, each member's router
   choosing its own samples' blocks at every routed layer: FC networks (tables, synthetic data)
   hold their weights as one ``[P, ...]`` tensor per layer for the epoch
   (:class:`~routing_rl.training.loop.stacked_weights.StackedWeights`, played by
   :func:`~routing_rl.training.loop.stacked_play.play_stacked`), stepped by one masked Adam that
   is each member's own and written back before the members evaluate; other networks (convolutions,
   block banks, optimizers other than plain Adam) run their own modules, stacked per step
   (:class:`~routing_rl.network.population.PopulationNetwork`);
3. each member's env turns its own samples' outputs into its episodes, and the member's learner
   into its losses (as alone);

   multi-task models (SNR-Trans, SNR-Aver, MMoE, ML-MMoE, the shared-bottom MLP) run as one
   model: their parameters stacked for the epoch, the forward mapped over the members, each
   member's gate noise drawn from its own generator
   (:class:`~routing_rl.training.loop.stacked_models.StackedModels`); models that do not stack
   (another shape, an optimizer other than plain Adam) run one by one on their own batches;
4. one backward pass of the sum of the members' losses: a member's parameters touch only its own
   samples, so its gradient is the one it would have alone; then each member clips and steps its
   own optimizers (the stacked weights and models: each member's clipping and Adam on its own slices).

Evaluation, records, checkpoints and logs are each member's own, after every epoch. A member that
diverges is recorded as diverged and leaves; the others go on. A population stopped at any point
resumes from its members' checkpoints (all at the same epoch, since every member saves after
every epoch) to the numbers of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from routing_rl.core.contracts import RoutingObservation
from routing_rl.envs.batched import hidden_summary
from routing_rl.network.population import PopulationNetwork, population_decision, stacking_problem
from routing_rl.training.loop.learner import StepResult
from routing_rl.training.loop.optim import ADAM_SETTINGS, step_adam_together
from routing_rl.training.loop.routed_learner import RoutedLearner
from routing_rl.training.loop.stacked_models import StackedModels, stacked_models_problem
from routing_rl.training.loop.stacked_weights import StackedWeights, stacked_weights_problem
from routing_rl.training.loop.stacked_play import act_together, member_steps, play_stacked
from routing_rl.training.loop.trainer import EpochFeed, Trainer, TrainingDiverged
from routing_rl.training.records.results import ResultsRecord
from routing_rl.training.records.tb_logger import TensorBoardLogger

STACK_FROM = 1
"""Linear blocks in use from which a population's layer runs as one padded batched matmul (a solo
network waits for :data:`~routing_rl.network.routed_layer.STACKED_MIN_BLOCKS`, 32): a member's
shared layer is one block of P, and P small matrix products in one call are what a population is
for. From one block, so that a member's arithmetic is the same whoever else is in the population
(a member catching up an epoch alone after a kill computes as it would have with the others). Measured by ``benchmarks/population_speed.py`` (benchmarks/README.md). The batched matmul agrees
with one call per block to rounding, so a member's float32 numbers agree with its numbers alone to
rounding, not bit for bit (``tests/training/test_population.py`` states the tolerance)."""

SAME_OPTIONS = ("device", "batch_size", "max_batches_per_epoch", "epochs", "step_epochs", "observe_hidden", "warmup_epochs")
"""Options every member must share: they fix the batches and the steps the members take together."""


def population_problem(trainers: Sequence[Trainer]) -> str | None:
    """Why these trials cannot train as one population (None when they can)."""
    if len(trainers) < 2:
        return "a population needs two members at least"
    routed = [isinstance(t.learner, RoutedLearner) for t in trainers]
    if any(routed) and not all(routed):
        return "routed networks and multi-task models (snr-trans, snr-aver, mmoe, ml-mmoe) train in populations of their own"
    for name in SAME_OPTIONS:
        if len({str(getattr(t.config, name)) for t in trainers}) > 1:
            return f"their --{name.replace('_', '-')} differ"
    if len({t.device for t in trainers}) > 1:
        return "they train on different devices"
    if not all(routed):
        return None  # models of one shape run as one, others one by one (StackedModels): nothing else to agree on
    if len({t.learner.memory_format for t in trainers}) > 1:  # type: ignore[attr-defined]
        return "they train in different memory formats"
    if len({t.learner.env.observe_hidden for t in trainers}) > 1:  # type: ignore[attr-defined]
        return "some observe the hidden state and some do not"
    if len({t.learner.router.routes_soft for t in trainers}) > 1:  # type: ignore[attr-defined]
        return "some route soft (weighing every block) and some hard"
    return stacking_problem([t.learner.network for t in trainers])  # type: ignore[attr-defined]


def stackable_groups(trainers: Sequence[Trainer]) -> list[tuple[list[Trainer], str | None]]:
    """``trainers`` in groups that can each train as one population, in their order: each joins the
    first group it stacks with (:func:`population_problem`), or starts its own. A group of one comes
    with why it could not join the first group (None when it is the only trainer)."""
    groups: list[list[Trainer]] = []
    for trainer in trainers:
        home = next((g for g in groups if population_problem([g[0], trainer]) is None), None)
        if home is None:
            groups.append([trainer])
        else:
            home.append(trainer)

    def alone(trainer: Trainer) -> str | None:  # why it stacks with none: with the first other trainer, say
        other = next((t for t in trainers if t is not trainer), None)
        return None if other is None else population_problem([other, trainer])

    return [(group, alone(group[0]) if len(group) == 1 else None) for group in groups]


class Population:
    """Trains ``trainers`` (prepared: run directories open, checkpoints loaded) together; see the module docstring."""

    def __init__(self, trainers: Sequence[Trainer], stacked_min_blocks: int = STACK_FROM, stack_weights: bool = True) -> None:
        if problem := population_problem(trainers):
            raise ValueError(f"these trials cannot train as one population: {problem}")
        self.trainers = list(trainers)
        self.stacked_min_blocks = stacked_min_blocks
        self.stack_weights = stack_weights
        """FC networks train stacked weights (:class:`StackedWeights`) and models run as one
        (:class:`StackedModels`) where they can; False: their own modules side by side."""
        self.routed = isinstance(self.trainers[0].learner, RoutedLearner)
        """Routed networks or multi-task models (never both in one population)."""

    def fit(self, loggers: Sequence[TensorBoardLogger | None] | None = None) -> list[ResultsRecord | None]:
        """Train every member from its start epoch to the last; returns each member's results
        (None for a member that diverged: its record on disk says where)."""
        loggers = list(loggers) if loggers is not None else [None] * len(self.trainers)
        for trainer in self.trainers:
            trainer.run_directory.acquire()
        try:
            return self._fit(loggers)
        finally:
            for trainer in self.trainers:
                trainer.run_directory.release()

    def _fit(self, loggers: list[TensorBoardLogger | None]) -> list[ResultsRecord | None]:
        trainers = dict(enumerate(self.trainers))
        for trainer, logger in zip(self.trainers, loggers):
            trainer.begin_fit(logger)
        first = self.trainers[0]
        diverged: set[int] = set()
        # a population killed between two members' checkpoints resumes with members an epoch apart:
        # an epoch trains the members that have not trained it yet
        for epoch in range(min(t.start_epoch for t in self.trainers), first.config.epochs + 1):
            live = {i: t for i, t in trainers.items() if t.start_epoch <= epoch and i not in diverged}
            if not live:
                continue
            for trainer in live.values():
                trainer.begin_epoch(epoch)
            feeds = {i: t.begin_train_epoch(epoch) for i, t in live.items()}
            training = set(live)
            self._train_epoch(epoch, live, feeds)
            diverged |= training - set(live)
            for i, trainer in live.items():
                trainer.end_epoch(epoch, trainer.end_train_epoch(feeds[i]), loggers[i])
        return [t.results if t.results["status"] == "complete" else None for t in self.trainers]

    def _train_epoch(self, epoch: int, live: dict[int, Trainer], feeds: dict[int, EpochFeed]) -> None:
        """The members' batches step by step; a member whose epoch has fewer batches (a training split
        a few rows shorter, as a seed's stratified hold-out may leave it) sits out the last steps."""
        slots = list(live)  # the stacked weights' (or models') members, in order
        members = [live[i] for i in slots]
        weights: StackedWeights | StackedModels | None = None
        if self.stack_weights and self.routed and stacked_weights_problem(members) is None:
            weights = StackedWeights(members)
        elif self.stack_weights and not self.routed and len(members) > 1 and stacked_models_problem(members) is None:
            weights = StackedModels(members)
        try:
            self._steps(epoch, live, feeds, weights, members, slots)
        finally:
            if weights is not None:
                weights.write_back()  # before the members evaluate and save

    def _steps(self, epoch: int, live: dict[int, Trainer], feeds: dict[int, EpochFeed], weights: StackedWeights | StackedModels | None,
               slotted: list[Trainer], slots: list[int]) -> None:  # fmt: skip
        stacked: tuple[int, ...] = ()
        network: PopulationNetwork | None = None
        used: list[torch.Tensor] = []
        while True:
            batches = {i: b for i in live if (b := live[i].next_batch(feeds[i])) is not None}
            if not batches:
                return
            members = tuple(batches)
            if isinstance(weights, StackedModels):
                played_models = weights.play({slots.index(i): batches[i] for i in members})
                steps = {slots[p]: step for p, step in played_models.items()}
            elif not self.routed:  # multi-task models that do not stack: each member's own model on its own batch
                steps = {i: live[i].learner.train_step(batches[i], epoch) for i in members}
            elif weights is not None:
                played, used = play_stacked(weights.network, slotted, {slots.index(i): batches[i] for i in members}, epoch)
                steps = {slots[p]: step for p, step in played.items()}
            else:
                if members != stacked:
                    stacked, network = members, PopulationNetwork([live[i].learner.network for i in members], self.stacked_min_blocks)  # type: ignore[attr-defined]
                steps = dict(zip(members, play(network, [live[i] for i in members], [batches[i] for i in members], epoch)))  # type: ignore[arg-type]
            diverged = []
            for i, step in steps.items():
                try:
                    live[i].account(feeds[i], step, batches[i])
                except TrainingDiverged:
                    diverged.append(i)  # its record says where; the others go on
            stepping = {i: step for i, step in steps.items() if i not in diverged}
            if stepping and feeds[members[0]].stepping:
                for i in stepping:
                    live[i].zero_grad()
                if weights is not None:
                    weights.zero_grad()
                torch.stack([step.loss for step in stepping.values()]).sum().backward()
                if isinstance(weights, StackedModels):  # every parameter stacked: each member's clipping and Adam there
                    weights.step([slots.index(i) for i in stepping])
                    for i, step in stepping.items():
                        live[i].learner.after_step(step)
                else:
                    if weights is not None:  # the members' weights: stacked; their routers: below, each its own
                        weights.clip_gradients()
                        steps_now = torch.tensor([slot in stepping for slot in slots], device=used[0].device).view(-1, 1)
                        weights.step([mask & steps_now for mask in used])
                    update([live[i] for i in stepping], list(stepping.values()))
            for i in diverged:
                del live[i], feeds[i]


def update(trainers: list[Trainer], steps: list[StepResult]) -> None:
    """Each member's clipping, optimizer steps and after-step hook, as :meth:`Trainer.apply_gradients`;
    the members' Adam optimizers of one role (weights, router) whose settings agree step in one
    multi-tensor call (:func:`~routing_rl.training.loop.optim.step_adam_together`), even when other
    members' settings differ (a run's seeds beside another run at another router rate)."""
    for trainer in trainers:
        trainer.clip_gradients()
    roles: dict[str, None] = {}
    for trainer in trainers:
        roles.update(dict.fromkeys(trainer.learner.optimizers))
    for role in roles:
        alike: dict[tuple[object, ...], list[torch.optim.Optimizer]] = {}  # members of one role whose settings agree step together
        for trainer in trainers:
            if (optimizer := trainer.learner.optimizers.get(role)) is not None:
                alike.setdefault(adam_signature(optimizer), []).append(optimizer)
        for optimizers in alike.values():
            if len(optimizers) == 1 or not step_adam_together(optimizers):
                for optimizer in optimizers:
                    optimizer.step()
    for trainer, step in zip(trainers, steps):
        trainer.learner.after_step(step)


def adam_signature(optimizer: torch.optim.Optimizer) -> tuple[object, ...]:
    """What optimizers must share to step in one call (:func:`step_adam_together`): type and each group's settings."""
    return (type(optimizer), *(tuple(group.get(k) for k in ADAM_SETTINGS) for group in optimizer.param_groups))


def play(network: PopulationNetwork, trainers: Sequence[Trainer], batches: Sequence[object], epoch: int) -> list[StepResult]:
    """One batch of every member through ``network``: each member's router routes its own samples,
    each member's env and learner make its episodes and losses (:meth:`RoutedLearner.step_result`)."""
    learners: list[RoutedLearner] = [t.learner for t in trainers]  # type: ignore[misc]
    inputs = [learner._inputs(batch) for learner, batch in zip(learners, batches)]  # type: ignore[arg-type]
    sizes = [x.shape[0] for x, _, _ in inputs]
    tasks = [t for _, _, t in inputs]
    x = torch.cat([x for x, _, _ in inputs])
    population_tasks = torch.cat([t + p * network.num_tasks for p, t in enumerate(tasks)])
    routers = [learner.routing_policy(epoch) for learner in learners]
    observations: list[list[RoutingObservation]] = [[] for _ in learners]
    decisions: list[list] = [[] for _ in learners]
    h = network.begin(x, population_tasks)
    for depth in range(network.num_routed):
        hidden = hidden_summary(h).split(sizes) if learners[0].env.observe_hidden else [None] * len(learners)
        for p in range(len(routers)):
            observations[p].append(RoutingObservation(tasks[p], depth, hidden[p]))
        acted = act_together(dict(enumerate(routers)), {p: obs[-1] for p, obs in enumerate(observations)})
        chosen = [acted[p] for p in range(len(routers))]
        for p, decision in enumerate(chosen):
            decisions[p].append(decision)
        h = network.advance(depth, h, population_tasks, population_decision(chosen, network.blocks_per_layer[depth]))
    logits = h.split(sizes)
    episodes = {}
    for p, learner in enumerate(learners):
        obs = observations[p] or [RoutingObservation(tasks[p], 0)]  # a network with no routed layer: one observation, no steps
        episodes[p] = learner.env.episodes(obs, decisions[p], logits[p], inputs[p][1], tasks[p])
    steps = member_steps(dict(enumerate(learners)), dict(enumerate(routers)), dict(enumerate(batches)), episodes)
    return [steps[p] for p in range(len(learners))]

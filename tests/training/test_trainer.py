"""The trainer learns, is deterministic under a seed, resumes exactly, and stops on NaN."""

from __future__ import annotations

import json

import pytest
import torch

from routing_rl.agents import FixedRouteRouter, Router
from routing_rl.data import load_suite
from routing_rl.training import RunConfig, RunExistsError, Trainer, TrainingDiverged
from routing_rl.training.setup.composition import compose

SMALL = {"num_tasks": 4, "num_groups": 2, "train_per_task": 300, "test_per_task": 150}


@pytest.fixture(scope="module")
def data():
    return load_suite("synthetic-groups", seed=0, **SMALL)


def train(data, tmp_path, **overrides):
    cfg = RunConfig(**{"env": "synthetic-groups", "epochs": 3, "batch_size": 64, "logdir": str(tmp_path), **overrides})
    trainer = Trainer(compose(cfg), data)
    trainer.prepare_run_dir(resume=False)
    return trainer, trainer.fit()


@pytest.mark.parametrize("agent", ["fixed-random", "shared-bottom", "no-sharing"])
def test_training_learns_well_above_chance(data, tmp_path, agent):
    _, results = train(data, tmp_path, agent=agent, epochs=4, lr=3e-3)
    chance = data.info["chance"]
    first, last = results["epochs"][0], results["epochs"][-1]
    assert last["test"]["mean"] > chance + 0.3
    assert last["train_loss"] < first["train_loss"]
    assert results["status"] == "complete"


def test_results_file_and_tensorboard_events_are_written(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from routing_rl.training.records.tb_logger import TensorBoardLogger

    cfg = RunConfig(env="synthetic-groups", agent="fixed-random", epochs=2, logdir=str(tmp_path), routed="fc1,fc2", blocks=3)
    trainer = Trainer(compose(cfg), data)
    trainer.prepare_run_dir(resume=False)
    logger = TensorBoardLogger(tmp_path / "tb")
    trainer.fit(logger)
    logger.close()
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["epochs"]) == 2 and len(results["epochs"][0]["test"]["per_task"]) == 4
    assert results["final"]["routes"] == trainer.learner.router.routes().tolist()
    assert results["epochs"][0]["routing"]["perplexity"] == [[1.0] * 4, [1.0] * 4]
    assert results["learner"]["learns_routes"] is False
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = acc.Tags()["scalars"]
    assert "losses/train_loss" in tags and "charts/test_accuracy_mean" in tags
    assert "accuracy_test/task00_" + data.task_names[0] in tags
    # fixed routes: no perplexity or similarity (the policy is the route table), one note saying why
    assert not [t for t in tags if t.startswith("routing/")] and "routing/task_similarity" not in acc.Tags()["images"]
    assert [t for t in acc.Tags()["tensors"] if t.startswith("routing/note")] == ["routing/note/text_summary"]
    assert [e.step for e in acc.Scalars("charts/test_accuracy_mean")] == [1, 2]


def test_tensorboard_tags_name_each_task_and_learning_routers_get_routing_charts(tmp_path):
    """A chart of one task says which task it is (index and tag-safe name, in the metric and the
    perplexity groups alike), and a router that learns its routes gets perplexities and heatmaps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from routing_rl.training.records.tb_logger import TensorBoardLogger

    data = load_suite("synthetic-groups", seed=0, **{**SMALL, "train_per_task": 60, "test_per_task": 30})
    data.task_names[0] = "hair colour/tone (%)"
    data.task_names[1] = ""
    cfg = RunConfig(env="synthetic-groups", agent="wpl", epochs=1, logdir=str(tmp_path), routed="fc1,fc2", blocks=3, threads=1)
    trainer = Trainer(compose(cfg), data)
    trainer.prepare_run_dir(resume=False)
    logger = TensorBoardLogger(tmp_path / "tb")
    trainer.fit(logger)
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = acc.Tags()["scalars"]
    third = "task02_" + data.task_names[2]
    for tag in ("accuracy_test/task00_hair_colour-tone", "accuracy_val/task01", f"accuracy_test/{third}",
                "routing/fc1/perplexity_task00_hair_colour-tone", "routing/fc2/perplexity_task01", f"routing/fc2/{'perplexity_' + third}",
                "routing/fc1/perplexity_mean"):  # fmt: skip
        assert tag in tags, (tag, tags)
    assert "routing/task_similarity" in acc.Tags()["images"]
    assert not [t for t in acc.Tags()["tensors"] if t.startswith("routing/note")]


def test_task_tags_keep_names_readable_and_the_index_where_a_name_is_missing():
    from routing_rl.training.records.tb_logger import task_tag

    assert task_tag(0, "t-shirt/top") == "task00_t-shirt-top"
    assert task_tag(3, "hair colour (%)") == "task03_hair_colour"
    assert task_tag(12, "größe.cm") == "task12_größe.cm"
    assert task_tag(4, None) == task_tag(4, "") == task_tag(4, "?!") == "task04"


def test_same_seed_same_numbers_different_seed_different(data, tmp_path):
    _, a = train(data, tmp_path / "a", agent="fixed-random", epochs=2, seed=5)
    _, b = train(data, tmp_path / "b", agent="fixed-random", epochs=2, seed=5)
    _, c = train(data, tmp_path / "c", agent="fixed-random", epochs=2, seed=6)
    key = lambda r: [(e["train_loss"], e["test"]["per_task"]) for e in r["epochs"]]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)


@pytest.mark.parametrize("agent", ["wpl", "hard-concrete"])
def test_evaluation_scores_do_not_depend_on_the_evaluation_batch(data, tmp_path, agent):
    """The evaluation batch is a speed choice: the same scores as any other batch size, losses
    equal up to the summation order."""
    _, small = train(data, tmp_path / "a", agent=agent, epochs=2, eval_batch_size=7)
    _, large = train(data, tmp_path / "b", agent=agent, epochs=2, eval_batch_size=1024)
    for e_small, e_large in zip(small["epochs"], large["epochs"], strict=True):
        for split in ("val", "test"):
            assert e_small[split]["per_task"] == e_large[split]["per_task"]
            assert e_small[split]["loss"] == pytest.approx(e_large[split]["loss"], rel=1e-6)
        assert e_small["train_loss"] == e_large["train_loss"]


def test_the_default_evaluation_batch_is_1024_rows_of_vectors_and_128_images():
    config = RunConfig(env="synthetic-groups")
    assert config.eval_batch_size is None
    assert config.eval_rows((32,)) == 1024 and config.eval_rows((1, 28, 28)) == 128
    assert RunConfig(env="synthetic-groups", eval_batch_size=7).eval_rows((32,)) == 7


def test_evaluation_runs_in_batches_of_the_default_rows(data, tmp_path, monkeypatch):
    """A vector network's evaluation asks its split for batches of 1,024 rows (4-5x faster than 128)."""
    asked = []
    split_cls = type(data.test)
    original = split_cls.batches
    def batches(self, size, generator=None, shuffle=False):
        if not shuffle:  # evaluation (training batches are shuffled)
            asked.append(size)
        return original(self, size, generator, shuffle)

    monkeypatch.setattr(split_cls, "batches", batches)
    train(data, tmp_path, agent="wpl", epochs=1)
    assert asked == [1024, 1024]  # validation and test


def test_resume_reaches_the_same_final_result(data, tmp_path):
    _, full = train(data, tmp_path / "full", agent="fixed-random", epochs=3, seed=1)
    cfg = RunConfig(env="synthetic-groups", agent="fixed-random", epochs=2, batch_size=64, seed=1, logdir=str(tmp_path / "part"))
    first = Trainer(compose(cfg), data)
    first.prepare_run_dir(resume=False)
    first.fit()  # "interrupted" after epoch 2
    cfg.epochs = 3
    resumed = Trainer(compose(cfg), data)
    resumed.prepare_run_dir(resume=True)
    assert resumed.start_epoch == 3
    results = resumed.fit()
    strip = lambda r: [(e["train_loss"], e["test"]["per_task"], e["val"]["per_task"]) for e in r["epochs"]]  # noqa: E731
    assert strip(results) == strip(full)
    for p, q in zip(resumed.learner.network.parameters(), Trainer(compose(cfg), data).learner.network.parameters()):
        assert p.shape == q.shape


def test_existing_run_is_not_clobbered(data, tmp_path):
    train(data, tmp_path, agent="shared-bottom", epochs=1)
    cfg = RunConfig(env="synthetic-groups", agent="shared-bottom", epochs=1, logdir=str(tmp_path))
    with pytest.raises(RunExistsError, match="--resume"):
        Trainer(compose(cfg), data).prepare_run_dir(resume=False)
    other = RunConfig(env="synthetic-groups", agent="shared-bottom", epochs=1, logdir=str(tmp_path), lr=0.5)
    with pytest.raises(RunExistsError, match="lr"):
        Trainer(compose(other), data).prepare_run_dir(resume=True)


def test_nan_loss_stops_the_run(data, tmp_path):
    class NaNRouter(Router):
        name = "test-nan-router"

        def __init__(self, num_tasks, num_layers, num_blocks, *, seed: int = 0):
            super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
            self.bad = torch.nn.Parameter(torch.tensor(float("nan")))

        def act(self, obs, explore=True):
            from routing_rl.core.contracts import RoutingDecision

            return RoutingDecision(torch.zeros_like(obs.task_ids))

        def policy(self, depth):
            return torch.full((self.num_tasks, self.num_blocks), 1.0 / self.num_blocks)

        def loss(self, episodes):
            return self.bad * episodes.final_reward.mean()

    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, batch 1"):
        train(data, tmp_path, agent="test-nan-router")
    assert not (tmp_path / "checkpoint.pt").exists()
    stopped = json.loads((tmp_path / "results.json").read_text())
    assert stopped["status"] == "diverged"
    assert (stopped["divergence"]["epoch"], stopped["divergence"]["batch"]) == (1, 1)


class DiagonalRouter(FixedRouteRouter):
    """Task k on block k, like no-sharing, but without its refusal of a shared warm-up."""

    name = "test-diagonal"

    def make_routes(self) -> torch.Tensor:
        return torch.arange(self.num_tasks).unsqueeze(1).repeat(1, self.num_layers) % self.num_blocks


def test_warmup_shares_everything_then_routes(data, tmp_path):
    trainer, results = train(data, tmp_path, agent="test-diagonal", epochs=3, warmup_epochs=2)
    routes = [e["routing"]["routes"] for e in results["epochs"]]
    assert routes[0] == routes[1] == [[0, 0, 0]] * 4
    assert routes[2] == [[k, k, k] for k in range(4)]
    assert [e["routing"]["active"] for e in results["epochs"]] == [False, False, True]


def test_warmup_trains_only_the_shared_block(data, tmp_path):
    cfg = RunConfig(env="synthetic-groups", agent="test-diagonal", epochs=1, warmup_epochs=1, logdir=str(tmp_path))
    trainer = Trainer(compose(cfg), data)
    before = [b[0].weight.detach().clone() for b in trainer.learner.network.layers[0].layer.blocks]
    trainer.fit()
    after = [b[0].weight.detach() for b in trainer.learner.network.layers[0].layer.blocks]
    assert not torch.equal(before[0], after[0])
    assert all(torch.equal(x, y) for x, y in zip(before[1:], after[1:]))


def test_separate_optimizers_use_their_own_learning_rates(data, tmp_path):
    class ParamRouter(Router):
        name = "test-param-router"

        def __init__(self, num_tasks, num_layers, num_blocks, *, seed: int = 0):
            super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
            self.logits = torch.nn.Parameter(torch.zeros(num_tasks, num_layers, num_blocks))

        def act(self, obs, explore=True):
            from routing_rl.core.contracts import RoutingDecision

            return RoutingDecision(self.logits[obs.task_ids, obs.depth].argmax(1))

        def policy(self, depth):
            return self.logits[:, depth].softmax(1)

        def loss(self, episodes):
            return self.logits.sum() * 0 + (self.logits**2).sum()

    cfg = RunConfig(env="synthetic-groups", agent="test-param-router", separate_optimizers=True, lr=1e-4, router_lr=2e-2, logdir=str(tmp_path))
    trainer = Trainer(compose(cfg), data)
    assert set(trainer.learner.optimizers) == {"weights", "router"}
    assert trainer.learner.optimizers["weights"].param_groups[0]["lr"] == 1e-4
    assert trainer.learner.optimizers["router"].param_groups[0]["lr"] == 2e-2
    router_ids = {id(p) for p in trainer.learner.router.parameters()}
    assert all(id(p) not in router_ids for p in trainer.learner.optimizers["weights"].param_groups[0]["params"])
    single = Trainer(compose(RunConfig(env="synthetic-groups", agent="test-param-router", lr=1e-3, logdir=str(tmp_path / "s"))), data)
    assert set(single.learner.optimizers) == {"all"}
    assert [g["lr"] for g in single.learner.optimizers["all"].param_groups] == [1e-3, 1e-3]


def test_optimizer_choice_applies_to_every_parameter_set(data, tmp_path):
    cfg = RunConfig(env="synthetic-groups", agent="wpl", optimizer="sgd", separate_optimizers=True, logdir=str(tmp_path))
    trainer = Trainer(compose(cfg), data)
    from routing_rl.training.loop.optim import RowSparseSGD

    assert {type(o) for o in trainer.learner.optimizers.values()} == {RowSparseSGD}  # torch's SGD, plus block banks' rows
    with pytest.raises(ValueError, match="--optimizer must be one of adam, sgd"):
        Trainer(compose(RunConfig(env="synthetic-groups", optimizer="rmsprop", logdir=str(tmp_path / "x"))), data)


def test_step_decay_follows_the_public_codes_schedule():
    """{0: 1e-2, 5: 1e-3, 10: 1e-4} over 0-based epochs: 1-based epochs 1-5 at 1e-2, 6-10 at 1e-3, 11+ at 1e-4."""
    import torch

    from routing_rl.training.loop.trainer import set_epoch_learning_rates

    weights, router = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [weights], "lr": 1e-2}, {"params": [router], "lr": 2e-2}])
    seen = {}
    for epoch in (1, 5, 6, 10, 11, 30, 3):  # out of order, as a resumed run would call it
        set_epoch_learning_rates([optimizer], epoch, [5, 10], 0.1)
        seen[epoch] = [group["lr"] for group in optimizer.param_groups]
    for epoch, (weights_lr, router_lr) in seen.items():
        expected = 1e-2 * 0.1 ** sum(m < epoch for m in (5, 10))
        assert weights_lr == pytest.approx(expected) and router_lr == pytest.approx(2 * expected)
    set_epoch_learning_rates([optimizer], 7, [], 0.1)  # no milestones: rates untouched
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-2, 2e-2])


def test_a_stored_config_rebuilds_the_run_config_across_releases():
    stored = RunConfig(agent="wpl", epochs=7, lr_milestones=[2]).to_dict()
    stored["option_of_a_later_release"] = 1
    del stored["fused_optimizer"]  # a run from before the option existed
    config = RunConfig.from_stored(stored, logdir="elsewhere")
    assert config == RunConfig(agent="wpl", epochs=7, lr_milestones=[2], logdir="elsewhere")


def test_a_run_stored_before_channels_last_became_the_default_keeps_the_contiguous_layout(data, tmp_path):
    stored = RunConfig(agent="wpl").to_dict()
    del stored["channels_last"]  # a results.json of a release whose default was the contiguous layout
    assert RunConfig.from_stored(stored).channels_last is False
    assert RunConfig(agent="wpl").differences(stored) == ["channels_last (stored false, now true)"]
    assert RunConfig(agent="wpl", channels_last=False).differences(stored) == []


def test_the_first_loss_is_run_state_kept_in_the_checkpoint_not_in_the_results(data, tmp_path):
    from routing_rl.training.records.io import load_checkpoint, save_checkpoint

    trainer, results = train(data, tmp_path / "a", agent="fixed-random", epochs=1)
    assert "first_loss" not in results and "first_loss" not in json.loads((tmp_path / "a" / "results.json").read_text())
    checkpoint = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert checkpoint["first_loss"] == trainer.first_loss and trainer.first_loss > 0
    # a checkpoint of an older release kept it in its results: a resume still finds it there
    old = {k: v for k, v in checkpoint.items() if k != "first_loss"}
    old["results"] = {**checkpoint["results"], "first_loss": 123.0}
    save_checkpoint(tmp_path / "a" / "checkpoint.pt", old)
    resumed = Trainer(compose(RunConfig(env="synthetic-groups", agent="fixed-random", epochs=2, batch_size=64, logdir=str(tmp_path / "a"))), data)
    resumed.prepare_run_dir(resume=True)
    assert resumed.first_loss == 123.0 and "first_loss" not in resumed.results


def test_figures_stay_within_their_share_of_the_run_and_the_last_epoch_always_gets_one(tmp_path, monkeypatch):
    """A heatmap costs about a second whatever the network; on a small table that was more than an
    epoch. Figures are drawn within FIGURE_SHARE of the run's time, and at the first and last epoch;
    the perplexity scalars are written every epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from routing_rl.training.records import tb_logger
    from routing_rl.training.records.tb_logger import TensorBoardLogger

    clock = iter(float(t) for t in range(0, 10_000, 1))
    monkeypatch.setattr(tb_logger.time, "perf_counter", lambda: next(clock))  # every reading is one "second" later
    logger = TensorBoardLogger(tmp_path / "tb", last_step=6)
    policy = [torch.full((3, 2), 0.5)]
    for step in range(1, 7):
        logger.routing(["fc1"], policy, ["a", "b", "c"], step)
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    drawn = [e.step for e in acc.Images("routing/task_similarity")]
    # each figure "takes" one second against one second per step in between: far over a 10% share
    assert drawn == [1, 6]
    assert [e.step for e in acc.Scalars("routing/fc1/perplexity_mean")] == [1, 2, 3, 4, 5, 6]
    cheap = TensorBoardLogger(tmp_path / "tb2", last_step=3)  # a real clock: drawing is what it costs
    assert cheap._draws_figures(1) and cheap._draws_figures(3)
    cheap.close()


def test_a_populations_loggers_share_one_figure_budget(tmp_path, monkeypatch):
    """Five members each drawing within their own 10% would spend half of the population's time on
    figures; sharing one budget, their figures together stay within the share (the first and the
    last epoch still get each member's figures)."""
    from routing_rl.training.records import tb_logger
    from routing_rl.training.records.tb_logger import FigureBudget, TensorBoardLogger

    now = [0.0]
    monkeypatch.setattr(tb_logger.time, "perf_counter", lambda: now[0])
    drawing = tb_logger.SummaryWriter.add_image

    def slow_figure(self, *args, **kwargs):  # every figure "takes" one second
        now[0] += 1.0
        return drawing(self, *args, **kwargs)

    monkeypatch.setattr(tb_logger.SummaryWriter, "add_image", slow_figure)

    def drawn(shared: bool) -> int:
        budget = FigureBudget() if shared else None
        loggers = [TensorBoardLogger(tmp_path / f"{shared}-{m}", last_step=40, budget=budget) for m in range(5)]
        policy = [torch.full((3, 2), 0.5)]
        figures = 0
        for step in range(1, 41):
            now[0] += 10.0  # an epoch of the population: ten "seconds"
            for logger in loggers:
                before = logger.budget.seconds
                logger.routing(["fc1"], policy, ["a", "b", "c"], step)
                figures += logger.budget.seconds > before
        for logger in loggers:
            logger.close()
        return figures

    alone, together = drawn(False), drawn(True)
    assert together < alone
    assert together <= 0.1 * 40 * 10 + 2 * 5  # the share of the population's 400 s, plus the first and last epochs' figures


def test_a_figure_laid_out_once_and_redrawn_each_epoch_gives_the_pixels_of_a_new_figure(tmp_path, monkeypatch):
    """The logger lays a figure out at its first epoch and afterwards only puts the epoch's data and
    title into it (layout is most of a small figure's cost). What TensorBoard gets must be what a
    figure drawn anew gives, pixel for pixel; a figure whose shape changed is drawn anew."""
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard._utils import figure_to_image

    from routing_rl.plots import figures
    from routing_rl.training.records import tb_logger
    from routing_rl.training.records.tb_logger import TensorBoardLogger

    monkeypatch.setattr(tb_logger, "FIGURE_SHARE", float("inf"))  # every epoch drawn, whatever this machine's speed
    g = torch.Generator().manual_seed(3)
    tasks, layers = ["a", "hair colour", "c", "d"], ["fc1", "fc2", "fc3"]
    policies = [[torch.softmax(3 * torch.randn(4, 3, generator=g), 1) for _ in layers] for _ in range(4)]
    utilization = [torch.rand(4, 5, generator=g).tolist() for _ in range(3)] + [torch.rand(4, 6, generator=g).tolist()]
    logger = TensorBoardLogger(tmp_path / "tb", last_step=12)
    for step in range(1, 5):
        logger.routing(layers, policies[step - 1], tasks, step * 3)  # epochs 3..12: the title's epoch gains a digit
        logger.utilization(utilization[step - 1], tasks, step * 3)  # the last has another sub-network count
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()

    def logged(tag: str) -> dict[int, np.ndarray]:
        return {e.step: np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")) for e in acc.Images(tag)}

    similarity, used = logged("routing/task_similarity"), logged("utilization")
    assert sorted(similarity) == sorted(used) == [3, 6, 9, 12]
    for epoch, image in similarity.items():
        fresh = figures.similarity_figure([p.tolist() for p in policies[epoch // 3 - 1]], tasks, layers, f"task similarity, epoch {epoch}")
        assert np.array_equal(image, np.moveaxis(figure_to_image(fresh, close=True), 0, 2)), epoch
    for epoch, image in used.items():
        fresh = figures.utilization_figure(utilization[epoch // 3 - 1], tasks, f"sub-network utilisation, epoch {epoch}")
        assert np.array_equal(image, np.moveaxis(figure_to_image(fresh, close=True), 0, 2)), epoch

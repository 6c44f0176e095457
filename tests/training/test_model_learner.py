"""Multi-task models through the one Trainer: scores agree with the metric functions, determinism,
NaN stop, TensorBoard, serving check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from routing_rl.data import Suite
from routing_rl.metrics import map_at_k, per_task_mse
from routing_rl.models import MultiTaskModel
from routing_rl.training import RunConfig, RunExistsError, Trainer, TrainingDiverged
from routing_rl.training.setup.composition import compose
from routing_rl.data.families import task_family



@pytest.fixture(scope="module")
def data():
    return Suite.registry.get("multilabel-synthetic")(num_train=600, num_test=200, input_dim=12).load(None, 0, 0.1)


def trainer_for(data, tmp_path, **overrides) -> Trainer:
    settings = {"env": "multilabel-synthetic", "epochs": 2, "batch_size": 64, "lr": 1e-2, "logdir": str(tmp_path), "device": "cpu"}
    trainer = Trainer(compose(RunConfig(**{**settings, **overrides})), data)
    trainer.prepare_run_dir(resume=False)
    return trainer


def evaluate_model(model, split, data, k, batch_size):
    """The trainer's batched scoring of ``model`` on ``split`` (the family's scorer over gathered batches)."""
    family = task_family(data, k)
    scorer = family.scorer()
    with torch.no_grad():
        for rows in split.batches(batch_size):
            batch = family.gather(split, rows, torch.device("cpu"))
            scorer.update(family.outputs_from_model(model(batch.x), batch), batch)
    return scorer.result(), family


def test_batched_evaluation_equals_the_metric_on_the_whole_split(data):
    model = MultiTaskModel.build("mmoe", data.input_dim, data.labels_per_task, shared_hidden=16, expert_hidden=8).eval()
    metrics, _ = evaluate_model(model, data.test, data, k=5, batch_size=37)
    with torch.no_grad():
        whole = map_at_k(model(data.test.x), data.test.y, 5, data.label_mask)
    assert metrics.metric == "map@5"
    np.testing.assert_allclose(metrics.per_task, whole.per_task, rtol=1e-12)
    assert metrics.mean == pytest.approx(whole.macro) and metrics.micro == pytest.approx(whole.micro)
    assert metrics.counts == whole.counts.tolist() and metrics.examples == len(data.test)


def test_regression_mse_equals_per_task_mse():
    reg = Suite.registry.get("mmoe-synthetic")(num_train=300, num_test=100, input_dim=8).load(None, 0, 0.1)
    model = MultiTaskModel.build("shared-bottom-mlp", reg.input_dim, reg.labels_per_task, hidden_sizes=(8, 8)).eval()
    metrics, family = evaluate_model(model, reg.test, reg, k=10, batch_size=33)
    with torch.no_grad():
        expected = per_task_mse(model(reg.test.x), reg.test.y, reg.label_mask)
    assert metrics.metric == "mse" and not family.higher_is_better
    np.testing.assert_allclose(metrics.per_task, expected, rtol=1e-6)
    assert metrics.micro == pytest.approx(float(expected.mean()), rel=1e-6)  # one output per task


def test_same_seed_same_numbers_different_seed_different(data, tmp_path):
    def numbers(seed, name):
        results = trainer_for(data, tmp_path / name, agent="snr-aver", seed=seed).fit()
        return [(e["train_loss"], e["test"]["per_task"]) for e in results["epochs"]]

    assert numbers(1, "a") == numbers(1, "b")
    assert numbers(1, "a2") != numbers(2, "c")


def test_nan_loss_stops_the_run_and_records_where(data, tmp_path):
    class NaNModel(MultiTaskModel):
        name = "test-nan-model"

        def __init__(self, input_dim, labels_per_task):
            super().__init__(input_dim, labels_per_task)
            self.w = nn.Parameter(torch.tensor(float("nan")))

        def forward(self, x):
            return self.w * torch.ones(x.shape[0], self.num_tasks, self.max_labels)

    trainer = trainer_for(data, tmp_path, agent="test-nan-model")
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, batch 1"):
        trainer.fit()
    assert not (tmp_path / "checkpoint.pt").exists()
    stopped = json.loads((tmp_path / "results.json").read_text())
    assert stopped["status"] == "diverged" and stopped["divergence"]["batch"] == 1 and stopped["epochs"] == []


def test_existing_run_is_not_clobbered_and_changed_options_refuse_resume(data, tmp_path):
    trainer_for(data, tmp_path, agent="shared-bottom-mlp", epochs=1).fit()
    with pytest.raises(RunExistsError, match="--resume"):
        trainer_for(data, tmp_path, agent="shared-bottom-mlp", epochs=1)
    other = Trainer(compose(RunConfig(agent="shared-bottom-mlp", env="multilabel-synthetic", epochs=2, lr=0.5, logdir=str(tmp_path))), data)
    with pytest.raises(RunExistsError, match="lr"):
        other.prepare_run_dir(resume=True)


def test_tensorboard_has_losses_charts_and_per_task_map(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from routing_rl.training.records.tb_logger import TensorBoardLogger

    trainer = trainer_for(data, tmp_path, agent="snr-trans")
    logger = TensorBoardLogger(tmp_path / "tb")
    trainer.fit(logger)
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("losses/train_loss", "losses/regularization", "charts/test_map10_mean", "charts/val_map10_micro",
                "charts/serving_parameters", "charts/open_gates", f"map10_test/task00_{data.task_names[0]}"):
        assert tag in tags, tag
    assert "utilization" in acc.Tags()["images"]
    assert [e.step for e in acc.Scalars("charts/test_map10_mean")] == [1, 2]


def test_serving_check_compares_the_pruned_model_with_the_gated_one(data, tmp_path):
    trainer = trainer_for(data, tmp_path, agent="snr-trans", epochs=1, agent_options={"log_alpha_init": -2.0, "l0_lambda": 1.0})
    results = trainer.fit()
    serving = results["serving"]
    assert serving["gated_test_mean"] == results["final"]["last"]["test_mean"]
    assert serving["metrics_equal"] and serving["max_metric_difference"] <= 1e-6
    assert serving["parameters"] == results["final"]["parameters"]["serving"]
    with torch.no_grad():  # the trainer's check is only as good as this: close a gate, the serving model must follow
        trainer.learner.model.gate_modules()[0].log_alpha[0, 0] = -10.0
    predict = lambda batch: trainer.learner.predict(batch, 1)  # noqa: E731
    again = trainer.learner.finish(lambda p: trainer.evaluate(data.test, p), trainer.evaluate(data.test, predict))
    assert again["metrics_equal"] and again["parameters"] < serving["parameters"]

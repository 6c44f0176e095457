"""Tasks of different kinds in one table and one network: each task its own loss, head and metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from routing_rl.cli import main
from routing_rl.core.contracts import Batch
from routing_rl.core.objectives import KIND_CODES, mixed_entry_loss, mixed_task_loss
from routing_rl.data import MultiLabelData, load_suite
from routing_rl.data.families import MixedFamily, task_family


def penguin_like(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A species (3 classes), a sex (binary) and a body mass (regression) from two measurements and an island."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    mass = np.where(species == "Gentoo", 5000.0, 3700.0) + rng.normal(0, 200, n)
    return pd.DataFrame({
        "island": np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], n)),
        "flipper": mass / 20 + rng.normal(0, 3, n), "bill": np.where(species == "Chinstrap", 49.0, 39.0) + rng.normal(0, 2, n),
        "species": species, "sex": rng.choice(["female", "male"], n), "body_mass": mass,
    })  # fmt: skip


def test_each_kind_has_its_own_loss_on_a_hand_made_batch():
    outputs = torch.tensor([[2.0, 0.5, -1.0], [1.5, 0.0, 0.0], [0.3, -0.7, 0.0], [4.0, 4.0, 4.0]])
    targets = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [math.nan, math.nan, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False], [True, True, False], [True, True, False]])
    kinds = torch.tensor([KIND_CODES["classification"], KIND_CODES["regression"], KIND_CODES["multilabel"], KIND_CODES["classification"]])
    loss = mixed_entry_loss(outputs, targets, mask, kinds)
    expected = [
        float(F.cross_entropy(outputs[:1], torch.tensor([1]))),  # -log softmax of the true class
        (1.5 - 2.0) ** 2,  # squared error of the one output
        float(F.binary_cross_entropy_with_logits(outputs[2, :2], targets[2, :2], reduction="sum")),
        0.0,  # an example without this task's label costs nothing
    ]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)


def test_a_classification_task_uses_only_its_own_classes():
    """A 2-class task padded to 3 columns: the padded column's logit must not enter the softmax."""
    outputs = torch.tensor([[1.0, 0.0, 50.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    loss = mixed_entry_loss(outputs, targets, mask, torch.tensor([0]))
    assert float(loss) == pytest.approx(float(F.cross_entropy(outputs[:, :2], torch.tensor([0]))))


def test_a_table_of_mixed_kinds_loads_as_one_mixed_problem(tmp_path):
    penguin_like().to_csv(tmp_path / "p.csv", index=False)
    data = load_suite("files", seed=0, path=str(tmp_path / "p.csv"), tasks="species,sex,body_mass", features="island,flipper,bill")
    assert isinstance(data, MultiLabelData) and data.problem == "mixed"
    assert data.task_kinds == ["classification", "classification", "regression"] and data.labels_per_task == [3, 2, 1]
    y = data.train.y
    assert torch.all(y[:, 0, :3].sum(dim=1) == 1.0) and torch.all(y[:, 1, :2].sum(dim=1) == 1.0)  # one-hot classes
    assert abs(float(y[:, 2, 0].mean())) < 1e-5  # the mass standardised by the training rows
    family = task_family(data)
    assert isinstance(family, MixedFamily) and family.head_sizes == [3, 2, 1]
    assert family.task_metrics() == [{"metric": "accuracy", "higher_is_better": True}, {"metric": "accuracy", "higher_is_better": True},
                                     {"metric": "mse", "higher_is_better": False}]  # fmt: skip
    with pytest.raises(ValueError, match="--reward correct does not apply to mixed tasks"):
        family.objective("correct")


def test_the_mixed_scorer_gives_each_task_its_metric_and_the_task_score():
    targets = torch.tensor([[[1.0, 0.0], [0.5, 0.0]], [[0.0, 1.0], [-1.0, 0.0]], [[1.0, 0.0], [math.nan, 0.0]]])
    outputs = torch.tensor([[[3.0, 1.0], [0.0, 9.0]], [[3.0, 1.0], [-2.0, 9.0]], [[0.0, 1.0], [7.0, 9.0]]])
    label_mask = torch.tensor([[True, True], [True, False]])
    data = type("D", (), {"num_tasks": 2, "label_mask": label_mask, "labels_per_task": [2, 1], "task_kinds": ["classification", "regression"]})()
    scorer = MixedFamily(data).scorer()  # type: ignore[arg-type]
    scorer.update(outputs, Batch(torch.zeros(3, 1), targets))
    score = scorer.result()
    mse = ((0.0 - 0.5) ** 2 + (-2.0 + 1.0) ** 2) / 2  # the unlabelled third example left out
    assert score.per_task == pytest.approx([1 / 3, mse]) and score.counts == [3, 2]
    assert score.mean == pytest.approx((1 / 3 + (1 - mse)) / 2)
    expected_loss = mixed_task_loss(outputs, targets, label_mask, torch.tensor([0, 1])).sum()
    assert score.loss == pytest.approx(float(expected_loss))


@pytest.mark.parametrize("agent", ["wpl", "mmoe"])
def test_a_router_and_a_model_train_mixed_tasks_and_record_each_metric(tmp_path, agent):
    penguin_like(120).to_csv(tmp_path / "p.csv", index=False)
    logdir = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--env", "files", "-e", f"path={tmp_path / 'p.csv'}", "-e", "tasks=species,sex,body_mass",
                                       "--agent", agent, "--epochs", "8", "--threads", "1", "--logdir", str(logdir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "species (accuracy)" in result.output and "body_mass (MSE)" in result.output
    assert "features (5 inputs from 3 columns): island: string, 3 categories in training, one-hot" in result.output
    results = json.loads((logdir / "results.json").read_text())
    assert results["metric"]["name"] == "task-score" and [t["metric"] for t in results["metric"]["tasks"]] == ["accuracy", "accuracy", "mse"]
    first, last = results["epochs"][0], results["epochs"][-1]
    assert last["train_loss"] < first["train_loss"]  # every kind's loss goes down together
    species, _, mass = last["test"]["per_task"]
    assert 0.0 <= species <= 1.0 and mass >= 0.0

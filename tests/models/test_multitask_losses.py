"""Multi-task losses ignore padded label columns; models also fit the MMoE regression benchmark."""

from __future__ import annotations

import math

import pytest
import torch

from routing_rl.data.mmoe_synthetic import MMoESynthetic
from routing_rl.metrics import mse
from routing_rl.models import MultiTaskModel, multitask_loss, per_task_loss


def test_bce_sums_labels_of_a_task_and_skips_padding() -> None:
    outputs = torch.zeros(2, 2, 3)
    outputs[:, 1, 2] = 100.0  # padding of task 1: must not matter
    targets = torch.zeros(2, 2, 3)
    targets[0, 0, 0] = 1.0
    mask = torch.tensor([[True, True, True], [True, True, False]])
    losses = per_task_loss(outputs, targets, mask)
    # every real logit is 0 -> log 2 per label; task 0 has 3 labels, task 1 has 2
    assert losses.tolist() == pytest.approx([3 * math.log(2), 2 * math.log(2)])
    assert multitask_loss(outputs, targets, mask).item() == pytest.approx(5 * math.log(2))


def test_regression_loss_and_shape_errors() -> None:
    outputs = torch.tensor([[[1.0], [2.0]]])
    targets = torch.tensor([[[0.0], [0.0]]])
    mask = torch.ones(2, 1, dtype=torch.bool)
    assert per_task_loss(outputs, targets, mask, "regression").tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="must be"):
        per_task_loss(outputs, targets[:, :1], mask)
    with pytest.raises(ValueError, match="problem"):
        per_task_loss(outputs, targets, mask, "ranking")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["snr-trans", "mmoe"])
def test_models_fit_the_mmoe_regression_pair(name: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        data = MMoESynthetic(correlation=0.5, input_dim=20, num_train=2000, num_test=500).load(None, seed=0)
        model = MultiTaskModel.build(name, data.input_dim, data.labels_per_task)
        before = mse(model.eval()(data.test.x).detach(), data.test.y)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(5):
            for rows in data.train.batches(64, generator, shuffle=True):
                x, y = data.train.gather(rows)
                loss = multitask_loss(model(x), y, model.label_mask, "regression") + model.regularization()
                opt.zero_grad()
                loss.backward()
                opt.step()
        after = mse(model.eval()(data.test.x).detach(), data.test.y)
        assert after < 0.5 * before
    finally:
        torch.set_num_threads(threads)

"""Task families on hand-made batches: episode layout, losses equal to the models' loss, the
multi-label reward formula, padded heads."""

from __future__ import annotations

import pytest
import torch

from routing_rl.data import Suite
from routing_rl.core.objectives import label_cross_entropy
from routing_rl.models.losses import multitask_loss
from routing_rl.network.model import PaddedLinear, RoutingNetwork
from routing_rl.network.spec import build_layer_specs
from routing_rl.data.families import Batch, MultiOutputObjective, task_family


@pytest.fixture(scope="module")
def multilabel():
    return Suite.registry.get("multilabel-synthetic")(num_tasks=3, labels_per_task=[3, 2, 3], num_train=40, num_test=10, input_dim=4).load(None, 0, 0.1)


def test_each_example_is_played_once_per_task_in_order(multilabel):
    family = task_family(multilabel)
    x, y = multilabel.train.gather(torch.arange(2))
    ex, ey, et = family.episodes(Batch(x, y))
    assert et.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(ex[1], x[0]) and torch.equal(ex[3], x[1])
    assert torch.equal(ey[4], y[1, 1])  # example 1, task 1
    logits = torch.randn(6, 3)
    assert torch.equal(family.outputs_from_episodes(logits, Batch(x, y))[1, 2], logits[5])


def test_episode_losses_sum_to_the_multi_task_models_loss(multilabel):
    family = task_family(multilabel)
    x, y = multilabel.train.gather(torch.arange(5))
    batch = Batch(x, y)
    outputs = torch.randn(5, 3, 3) * multilabel.label_mask  # padded column of task 1 is 0, as heads pad it
    _, targets, tasks = family.episodes(batch)
    per_episode = family.objective("auto").loss(outputs.reshape(15, 3), targets, tasks)
    assert family.batch_loss(per_episode, batch) == pytest.approx(float(multitask_loss(outputs, y, multilabel.label_mask)), rel=1e-6)
    assert float(family.model_loss(outputs, batch)) == pytest.approx(float(multitask_loss(outputs, y, multilabel.label_mask)))


def test_multilabel_reward_is_two_ap_minus_one_and_zero_without_positives():
    mask = torch.tensor([[True, True, True], [True, True, False]])
    objective = MultiOutputObjective(mask, label_cross_entropy, "correct", map_k=10)
    logits = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 1.0, 9.0], [0.0, 1.0, 2.0]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0], [0, 0, 0]])
    tasks = torch.tensor([0, 0, 1, 0])
    loss = objective.loss(logits, targets, tasks)
    reward = objective.reward(logits, targets, tasks, loss)
    # AP@10: positive ranked 1st -> 1; ranked 2nd -> 1/2; task 1 ignores its padded column (score 9): ranked 1st -> 1
    assert reward.tolist() == pytest.approx([1.0, 0.0, 1.0, 0.0])
    expected_padded = torch.nn.functional.binary_cross_entropy_with_logits(logits[2, :2], targets[2, :2], reduction="sum")
    assert loss[2] == pytest.approx(float(expected_padded))  # the padded column costs nothing
    assert objective.reward(logits, targets, tasks, loss).requires_grad is False
    neg = MultiOutputObjective(mask, label_cross_entropy, "neg-loss", 10).reward(logits, targets, tasks, loss)
    assert torch.equal(neg, -loss)


def test_multilabel_reward_stays_on_the_device_of_the_logits():
    # The routing reward is computed inside the training step, on the training device (CUDA there).
    # The meta device stands in for it on a CPU machine: any copy to the CPU on the way fails.
    mask = torch.tensor([[True, True, True], [True, True, False]])  # kept on the CPU, as the family keeps it
    objective = MultiOutputObjective(mask, label_cross_entropy, "correct", map_k=10)
    logits = torch.empty(4, 3, device="meta")
    targets = torch.empty(4, 3, device="meta")
    tasks = torch.empty(4, dtype=torch.long, device="meta")
    loss = objective.loss(logits, targets, tasks)
    reward = objective.reward(logits, targets, tasks, loss)
    assert reward.device.type == "meta" and reward.shape == (4,)


def test_regression_routers_default_to_the_negative_loss():
    data = Suite.registry.get("mmoe-synthetic")(num_train=20, num_test=5, input_dim=4).load(None, 0, 0.1)
    family = task_family(data)
    assert family.metric == "mse" and not family.higher_is_better
    assert family.resolve_reward("auto") == "neg-loss"
    with pytest.raises(ValueError, match="--reward correct does not apply to regression"):
        family.resolve_reward("correct")


def test_single_label_family_reads_each_rows_own_task_from_a_model():
    data = Suite.registry.get("synthetic-groups")(num_tasks=3, train_per_task=10, test_per_task=5).load(None, 0, 0.1)
    family = task_family(data)
    outputs = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    batch = Batch(torch.zeros(2, 32), torch.tensor([0, 1]), torch.tensor([2, 0]))
    assert family.outputs_from_model(outputs, batch).tolist() == [outputs[0, 2].tolist(), outputs[1, 0].tolist()]
    assert family.metric == "accuracy" and family.head_sizes == [4, 4, 4]


def test_heads_have_their_tasks_outputs_and_pad_to_the_widest():
    specs = build_layer_specs((4,), routed="fc1", blocks=2, hidden=8)
    net = RoutingNetwork(specs, (4,), 2, [3, 1])
    assert isinstance(net.heads.blocks[1], PaddedLinear) and net.heads.blocks[1].weight.shape == (1, 8)
    assert type(net.heads.blocks[0]) is torch.nn.Linear
    from routing_rl.core.contracts import RoutingDecision

    out = net(torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1]), [RoutingDecision(torch.zeros(5, dtype=torch.long))])
    assert out.shape == (5, 3) and torch.equal(out[1, 1:], torch.zeros(2))

"""AP@K, MAP@K and their macro/micro averages against hand-computed rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from routing_rl.metrics import MapAccumulator, accuracy, average_precision_at_k, map_at_k, mse, per_task_mse


def reference_ap(scores: list[float], labels: list[int], k: int) -> float:
    """AP@K with an explicit loop, for cross-checking the vectorised version."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
    hits, total = 0, 0.0
    for rank, i in enumerate(order, start=1):
        if labels[i]:
            hits += 1
            total += hits / rank
    positives = sum(1 for v in labels if v)
    return total / min(k, positives) if positives else 0.0


def test_hand_computed_average_precision() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    labels = np.array([[1, 0, 1, 0, 1]])
    # ranks 1, 3, 5 are positive: (1/1 + 2/3 + 3/5) / 3
    assert average_precision_at_k(scores, labels, k=10)[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # K = 2: only rank 1 counts, divided by min(2, 3) = 2
    assert average_precision_at_k(scores, labels, k=2)[0] == pytest.approx(0.5)
    # K = 3: (1 + 2/3) / 3
    assert average_precision_at_k(scores, labels, k=3)[0] == pytest.approx((1 + 2 / 3) / 3)


def test_ties_rank_by_label_index_and_no_positive_gives_zero() -> None:
    scores = torch.tensor([[0.5, 0.5, 0.1], [0.3, 0.2, 0.1]])
    labels = torch.tensor([[0, 1, 0], [0, 0, 0]])
    ap = average_precision_at_k(scores, labels, k=10)
    assert isinstance(ap, torch.Tensor)
    assert ap.tolist() == pytest.approx([0.5, 0.0])


def test_masked_columns_are_ignored() -> None:
    scores = np.array([[0.1, 0.9, 0.8]])
    labels = np.array([[1, 1, 0]])
    mask = np.array([True, False, False])
    # column 1 is padding: its high score and its (spurious) positive are ignored
    assert average_precision_at_k(scores, labels, k=10, mask=mask)[0] == pytest.approx(1.0)
    assert average_precision_at_k(scores, labels, k=10)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_vectorised_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((300, 25))
    labels = (rng.random((300, 25)) < 0.15).astype(np.int64)
    for k in (1, 5, 10, 30):
        ap = average_precision_at_k(scores, labels, k=k)
        expected = [reference_ap(list(s), list(y), k) for s, y in zip(scores, labels)]
        assert np.allclose(ap, expected)


def three_examples_two_tasks() -> tuple[np.ndarray, np.ndarray]:
    scores = np.zeros((3, 3, 3))
    labels = np.zeros((3, 3, 3), dtype=np.int64)
    scores[0, 0], labels[0, 0] = [0.9, 0.1, 0.2], [1, 0, 0]  # AP 1
    scores[1, 0], labels[1, 0] = [0.9, 0.8, 0.1], [0, 1, 0]  # AP 1/2
    scores[2, 0] = [0.3, 0.2, 0.1]  # no positive: excluded
    scores[0, 1], labels[0, 1] = [0.3, 0.2, 0.1], [0, 0, 1]  # AP 1/3
    return scores, labels  # task 2 has no positive at all


def test_map_macro_and_micro_averages() -> None:
    scores, labels = three_examples_two_tasks()
    result = map_at_k(scores, labels, k=10)
    assert result.per_task[:2] == pytest.approx([0.75, 1 / 3])
    assert math.isnan(result.per_task[2])
    assert result.counts.tolist() == [2, 1, 0]
    assert result.macro == pytest.approx((0.75 + 1 / 3) / 2)  # 0.5417
    assert result.micro == pytest.approx((2 * 0.75 + 1 / 3) / 3)  # 0.6111


def test_label_mask_per_task() -> None:
    scores, labels = three_examples_two_tasks()
    mask = np.array([[True, True, True], [True, True, False], [True, True, True]])
    # task 1 loses its only positive (column 2 is padding) -> no examples
    result = map_at_k(scores, labels, k=10, label_mask=mask)
    assert result.counts.tolist() == [2, 0, 0]
    assert result.macro == pytest.approx(0.75) and result.micro == pytest.approx(0.75)


def test_accumulator_over_batches_equals_one_call() -> None:
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(rng.random((100, 4, 12)))
    labels = torch.from_numpy((rng.random((100, 4, 12)) < 0.1).astype(np.float32))
    acc = MapAccumulator(4, k=10)
    for start in range(0, 100, 32):
        acc.update(scores[start : start + 32], labels[start : start + 32])
    whole = map_at_k(scores, labels, k=10)
    assert np.allclose(acc.result().per_task, whole.per_task)
    assert acc.result().counts.tolist() == whole.counts.tolist()


def test_accuracy_and_mse() -> None:
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    assert accuracy(scores, torch.tensor([1, 1, 0])) == pytest.approx(2 / 3)
    assert mse(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])) == pytest.approx((0 + 4 + 9) / 3)
    masked = mse(torch.tensor([[1.0, 5.0]]), torch.tensor([[0.0, 0.0]]), mask=torch.tensor([True, False]))
    assert masked == pytest.approx(1.0)
    pred = torch.tensor([[[1.0, 9.0], [2.0, 2.0]]])
    target = torch.zeros(1, 2, 2)
    assert per_task_mse(pred, target, torch.tensor([[True, False], [True, True]])).tolist() == pytest.approx([1.0, 4.0])

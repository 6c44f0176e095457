"""The synthetic multi-label suite and the multi-label data contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from routing_rl.data import Suite, memory
from routing_rl.data.base import DataError
from routing_rl.data.multilabel import DenseTargets, MultiLabelData, MultiLabelSplit, SparseMultiHot
from routing_rl.data.multilabel_synthetic import MultiLabelSynthetic


def test_shapes_masks_and_split_sizes() -> None:
    data = MultiLabelSynthetic(num_tasks=5, labels_per_task=[4, 2, 3, 4, 1], num_train=500, num_test=200).load(
        None, seed=0, val_fraction=0.2
    )
    assert (len(data.train), len(data.val), len(data.test)) == (400, 100, 200)
    assert data.train.x.shape == (400, 32) and data.train.x.dtype == torch.float32
    assert data.train.y.shape == (400, 5, 4)
    assert data.label_mask.tolist()[1] == [True, True, False, False]
    for split in (data.train, data.val, data.test):
        assert not bool(split.y[:, ~data.label_mask].any())
        assert set(split.y.unique().tolist()) <= {0.0, 1.0}


def test_deterministic_under_seed() -> None:
    suite = MultiLabelSynthetic(num_train=300, num_test=100)
    a, b, c = suite.load(None, seed=3), suite.load(None, seed=3), suite.load(None, seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_prevalence_decreases_across_tasks_so_task_sizes_differ() -> None:
    suite = MultiLabelSynthetic(num_train=3000, num_test=500, max_prevalence=0.2, min_prevalence=0.05)
    data = suite.load(None, seed=0)
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    per_label = y.sum(0) / y.shape[0]  # [T, C]
    for t, prevalence in enumerate(suite.prevalence):
        real = per_label[t, : data.labels_per_task[t]]
        assert torch.allclose(real, torch.full_like(real, float(prevalence)), atol=0.01)
    counts = data.train.positive_counts()
    assert counts[0] > counts[-1]


def label_correlation(data: MultiLabelData, t: int, u: int) -> float:
    y = data.train.y.numpy()
    return float(
        np.mean(
            [
                np.corrcoef(y[:, t, c], y[:, u, c])[0, 1]
                for c in range(min(data.labels_per_task[t], data.labels_per_task[u]))
            ]
        )
    )


def test_relatedness_controls_label_agreement_within_a_group() -> None:
    related = MultiLabelSynthetic(num_tasks=4, num_groups=2, relatedness=0.9, num_train=3000, noise_std=0.1).load(
        None, seed=0
    )
    unrelated = MultiLabelSynthetic(num_tasks=4, num_groups=2, relatedness=0.0, num_train=3000, noise_std=0.1).load(
        None, seed=0
    )
    assert related.info["groups"] == [0, 1, 0, 1]
    same_group = label_correlation(related, 0, 2)
    other_group = label_correlation(related, 0, 1)
    assert same_group > 0.4 and abs(other_group) < 0.15
    assert abs(label_correlation(unrelated, 0, 2)) < 0.15


def test_sparse_storage_matches_dense() -> None:
    dense = MultiLabelSynthetic(num_train=200, num_test=50).load(None, seed=1)
    sparse = MultiLabelSynthetic(num_train=200, num_test=50, sparse_targets=True).load(None, seed=1)
    assert isinstance(dense.train.targets, DenseTargets) and isinstance(sparse.train.targets, SparseMultiHot)
    rows = torch.tensor([5, 0, 17, 5])
    assert torch.equal(dense.train.gather(rows)[1], sparse.train.gather(rows)[1])
    assert torch.equal(dense.train.positive_counts(), sparse.train.positive_counts())
    sub = sparse.train.subset(torch.tensor([3, 1]))
    assert torch.equal(sub.y, dense.train.y[[3, 1]])


def test_contract_rejects_positives_in_padding() -> None:
    y = torch.zeros(3, 2, 3)
    y[0, 1, 2] = 1.0  # task 1 has only 2 labels
    split = MultiLabelSplit.from_dense(torch.zeros(3, 4), y)
    with pytest.raises(ValueError, match="padded"):
        MultiLabelData("bad", ["a", "b"], [3, 2], 4, split, split, split)
    with pytest.raises(ValueError, match="padded"):
        sparse = MultiLabelSplit.from_dense(torch.zeros(3, 4), y, sparse=True)
        MultiLabelData("bad", ["a", "b"], [3, 2], 4, sparse, sparse, sparse)


def test_registry_and_batches() -> None:
    suite = Suite.registry.get("multilabel-synthetic")(num_train=130, num_test=10)
    data = suite.load(None, seed=0, val_fraction=0.0)
    rows = list(data.train.batches(64, torch.Generator().manual_seed(0), shuffle=True))
    assert [len(r) for r in rows] == [64, 64, 2]
    assert sorted(torch.cat(rows).tolist()) == list(range(130))


def test_sizes_that_cannot_fit_are_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 20 * 10**9)
    # Refused before the per-task lists of the constructor are built (they alone would not fit).
    with pytest.raises(DataError, match=r"^multilabel-synthetic: -e num_tasks=1000, -e num_train=10000000000 with -e num_test=1000 "
                       r"needs about 4.4 PB of memory .* 20 GB available\. Lower -e num_tasks, -e num_train\.$"):
        MultiLabelSynthetic(num_tasks=1000, num_train=10**10)
    with pytest.raises(ValueError, match="num_tasks is 99999999999, more than the 1000 tasks a run may have"):
        MultiLabelSynthetic(num_tasks=99999999999)
    with pytest.raises(DataError, match=r"-e labels_per_task=100000000,1,1,1,1,1 with -e num_tasks=6, .* "
                       r"Lower -e labels_per_task\.$"):
        MultiLabelSynthetic(labels_per_task=[10**8, 1, 1, 1, 1, 1])
    with pytest.raises(DataError, match=r"-e input_dim=10000000 with -e num_train=4000, -e num_test=1000 "):
        MultiLabelSynthetic(input_dim=10**7)

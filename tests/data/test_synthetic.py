"""The synthetic grouped suite: known groups, shared teachers, determinism, learnability; and
the package-level ``load_suite`` entry point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from routing_rl.data import SyntheticGroups, SingleLabelSuite, load_suite, memory, suite_names
from routing_rl.data.base import DataError, SingleLabelData
from routing_rl.data.synthetic import Teacher
from routing_rl.registry import UnknownNameError


@pytest.fixture(scope="module")
def data() -> SingleLabelData:
    return SyntheticGroups().load(None, seed=0)


def task_xy(split: object, task: int) -> tuple[torch.Tensor, np.ndarray]:
    rows = split.task_rows(task)  # type: ignore[attr-defined]
    x, y, _ = split.gather(rows)  # type: ignore[attr-defined]
    return x, y.numpy()


def test_shapes_and_groups(data: SingleLabelData) -> None:
    assert data.num_tasks == 8 and data.num_classes == 4 and data.input_shape == (32,)
    assert data.info["groups"] == [0, 1, 0, 1, 0, 1, 0, 1]
    assert data.train.inputs.dtype == torch.float32 and data.train.inputs.shape == (8000, 32)
    assert len(data.train) == 7200 and len(data.val) == 800 and len(data.test) == 2400
    assert data.augment is None
    for task in range(8):
        counts = np.bincount(task_xy(data.test, task)[1], minlength=4)
        assert counts.min() > 0.1 * counts.sum()  # classes are balanced by the teacher biases


def test_same_group_same_teacher(data: SingleLabelData) -> None:
    teachers: list[Teacher] = data.info["teachers"]  # type: ignore[assignment]
    groups: list[int] = data.info["groups"]  # type: ignore[assignment]
    x0, y0 = task_xy(data.test, 0)
    for task in range(8):
        x, y = task_xy(data.train, task)
        np.testing.assert_array_equal(teachers[groups[task]].labels(x), y)
        # task 0's inputs labelled by the teacher of `task` agree exactly iff same group
        agree = (teachers[groups[task]].labels(x0) == y0).mean()
        if groups[task] == groups[0]:
            assert agree == 1.0
        else:
            assert agree < 0.5
    disagreement = (teachers[0].labels(x0) != teachers[1].labels(x0)).mean()
    assert disagreement > 0.5


def test_deterministic_under_seed() -> None:
    suite = SyntheticGroups(num_tasks=4, train_per_task=50, test_per_task=20)
    a, b, c = suite.load(None, 7), suite.load(None, 7), suite.load(None, 8)
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.inputs, sb.inputs) and torch.equal(sa.index, sb.index)
        assert torch.equal(sa.targets, sb.targets)
    assert not torch.equal(a.train.inputs, c.train.inputs)


def test_problem_seed_fixes_teachers() -> None:
    suite = SyntheticGroups(num_tasks=2, train_per_task=50, test_per_task=20, problem_seed=11)
    a, b = suite.load(None, 0), suite.load(None, 1)
    x = torch.randn(100, 32)
    ta, tb = a.info["teachers"], b.info["teachers"]  # type: ignore[assignment]
    assert all(np.array_equal(p.labels(x), q.labels(x)) for p, q in zip(ta, tb))  # type: ignore[arg-type]
    assert not torch.equal(a.train.inputs, b.train.inputs)


def test_constructor_options_and_noise() -> None:
    suite = SyntheticGroups(
        num_tasks=6, num_groups=3, num_classes=3, dim=10, train_per_task=400, test_per_task=50, label_noise=0.3
    )
    data = suite.load(None, 0, val_fraction=0.0)
    assert data.info["groups"] == [0, 1, 2, 0, 1, 2] and data.input_shape == (10,) and data.num_classes == 3
    teachers: list[Teacher] = data.info["teachers"]  # type: ignore[assignment]
    x, y = task_xy(data.train, 0)
    wrong = (teachers[0].labels(x) != y).mean()
    assert 0.1 < wrong < 0.3  # about 0.3 * (1 - 1/3)
    xt, yt = task_xy(data.test, 0)
    np.testing.assert_array_equal(teachers[0].labels(xt), yt)  # test labels stay clean
    with pytest.raises(ValueError):
        SyntheticGroups(num_tasks=2, num_groups=3)


def test_learnable_by_small_mlp(data: SingleLabelData) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows = data.train.task_rows(0)
    for _ in range(2):
        for batch in rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))].split(32):
            x, y, _ = data.train.gather(batch)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    x, y, _ = data.test.gather(data.test.task_rows(0))
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.4  # chance is 0.25


def test_load_suite_and_registry() -> None:
    assert {"fmnist-mtl", "cifar100-superclass", "cifar100-alphabetical", "synthetic-groups"} <= set(suite_names())
    assert SingleLabelSuite.registry.get("synthetic-groups") is SyntheticGroups
    assert SyntheticGroups.gym_id == "routing_rl/SyntheticGroups-v0"
    data = load_suite("synthetic-groups", seed=1, val_fraction=0.2, num_tasks=2, train_per_task=50, test_per_task=10)
    assert data.num_tasks == 2 and len(data.val) == 20
    with pytest.raises(UnknownNameError) as info:
        load_suite("no-such-suite")
    assert "synthetic-groups" in str(info.value) and "fmnist-mtl" in str(info.value)
    with pytest.raises(ValueError, match="val_fraction"):
        load_suite("synthetic-groups", val_fraction=1.0)


def test_sizes_that_cannot_fit_are_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 20 * 10**9)
    with pytest.raises(DataError) as info:
        load_suite("synthetic-groups", num_tasks=1000, train_per_task=10**8)
    text = str(info.value)
    assert text == ("synthetic-groups: -e num_tasks=1000, -e train_per_task=100000000 with -e test_per_task=300, -e dim=32 needs about "
                    "45 TB of memory for its generated data; this machine has 20 GB available. Lower -e num_tasks, -e train_per_task.")
    with pytest.raises(ValueError, match="num_tasks is 99999999999, more than the 1000 tasks a run may have"):
        load_suite("synthetic-groups", num_tasks=99999999999)  # refused by the task bound before any size is computed
    with pytest.raises(DataError, match=r"-e train_per_task=10000000000000 with -e num_tasks=8, .* Lower -e train"):
        SyntheticGroups(train_per_task=10**13)

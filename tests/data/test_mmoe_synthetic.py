"""The MMoE paper's synthetic regression pair: correlation of the linear parts equals p."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from routing_rl.data.mmoe_synthetic import NOISE_STD, MMoESynthetic
from routing_rl.data import Suite, memory
from routing_rl.data.base import DataError


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9, -0.5])
def test_linear_parts_have_correlation_p(p: float) -> None:
    data = MMoESynthetic(correlation=p, num_train=10000, num_test=100).load(None, seed=0)
    w = data.info["weights"]
    linear = data.train.x.numpy().astype(np.float64) @ w.T
    assert np.corrcoef(linear[:, 0], linear[:, 1])[0, 1] == pytest.approx(p, abs=0.03)
    assert float(w[0] @ w[1]) == pytest.approx(p, abs=1e-9)  # c^2 p with c = 1


def test_generating_vectors_and_targets_follow_the_formula() -> None:
    suite = MMoESynthetic(correlation=0.3, input_dim=20, scale=2.0, num_sines=4, num_train=4000, num_test=500)
    data = suite.load(None, seed=1)
    w, alpha, beta = data.info["weights"], data.info["alpha"], data.info["beta"]
    assert np.linalg.norm(w, axis=1) == pytest.approx([2.0, 2.0])
    x = data.train.x.numpy().astype(np.float64)
    linear = x @ w.T
    clean = linear + np.sin(alpha[None, None] * linear[..., None] + beta[None, None]).sum(-1)
    residual = data.train.y.numpy()[:, :, 0] - clean
    assert residual.std() == pytest.approx(NOISE_STD, rel=0.05)
    assert abs(residual.mean()) < 0.01


def test_regression_layout_and_determinism() -> None:
    suite = Suite.registry.get("mmoe-synthetic")(num_train=500, num_test=100)
    a, b, c = suite.load(None, seed=0), suite.load(None, seed=0), suite.load(None, seed=1)
    assert a.problem == "regression" and a.labels_per_task == [1, 1]
    assert a.train.y.shape == (450, 2, 1) and a.input_dim == 100
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.y, c.train.y)
    with pytest.raises(ValueError, match="correlation"):
        MMoESynthetic(correlation=1.5)


def test_sizes_that_cannot_fit_are_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 20 * 10**9)
    with pytest.raises(DataError, match=r"^mmoe-synthetic: -e num_train=10000000000000 with -e num_test=2000, "
                       r"-e input_dim=100, -e num_sines=10 needs about \d+ PB of memory .* 20 GB available\. Lower -e num_train\.$"):
        MMoESynthetic(num_train=10**13)
    with pytest.raises(DataError, match=r"-e num_sines=10000000000 with -e num_train=10000, -e num_test=2000 "):
        MMoESynthetic(num_sines=10**10)

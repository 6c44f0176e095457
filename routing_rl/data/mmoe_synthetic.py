"""The synthetic two-task *regression* benchmark of the MMoE paper, with controlled task correlation.

Ma et al. 2018 (KDD), "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", section "Synthetic Data Generation": given the input dimension ``d``, a
scale ``c``, ``m`` sine terms and a correlation score ``p`` in [-1, 1],

1. draw two orthogonal unit vectors ``u1, u2`` in R^d;
2. ``w1 = c u1``, ``w2 = c (p u1 + sqrt(1 - p^2) u2)``;
3. draw ``x ~ N(0, I_d)``;
4. ``y_t = w_t . x + sum_{i=1..m} sin(alpha_i w_t . x + beta_i) + eps_t`` with ``alpha_i, beta_i ~
   N(0, 1)`` shared by both tasks and ``eps_t ~ N(0, 0.01)`` (variance 0.01, std 0.1).

The linear parts ``w1 . x`` and ``w2 . x`` then have Pearson correlation exactly ``p`` in
expectation (``cov = c^2 p``, ``var = c^2``); the sine terms make the label correlation a
monotone but non-linear function of ``p``, which is the point of the benchmark (task relatedness
that is hard to read off the labels). This is a **regression** problem: targets are
``[N, 2, 1]`` real values and ``problem == "regression"`` (use MSE, not MAP).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from routing_rl.core.seeding import numpy_rng, torch_generator
from routing_rl.data.memory import MemoryTerm, constructor_defaults, require_memory
from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit, MultiLabelSuite, split_rows

NOISE_STD = 0.1
"""Standard deviation of the label noise: the MMoE paper's N(0, 0.01) is a variance."""


class MMoESynthetic(MultiLabelSuite):
    """Two regression tasks whose linear parts have correlation ``correlation`` (the paper's p)."""

    name = "mmoe-synthetic"
    description = "MMoE paper's synthetic two-task regression with controlled correlation p"
    family = "regression"

    option_help = {
        "correlation": "correlation p between the two tasks' linear parts",
        "input_dim": "input features",
        "scale": "scale c of the tasks' weight vectors",
        "num_sines": "sine terms of each task's non-linear part",
        "num_train": "training examples (before the validation hold-out)",
        "num_test": "test examples",
    }

    def __init__(
        self,
        correlation: float = 0.5,
        input_dim: int = 100,
        scale: float = 1.0,
        num_sines: int = 10,
        num_train: int = 10000,
        num_test: int = 2000,
    ) -> None:
        if not -1.0 <= correlation <= 1.0:
            raise ValueError(f"correlation p must be in [-1, 1], got {correlation}")
        if input_dim < 2:
            raise ValueError(f"input_dim must be >= 2 to hold two orthogonal vectors, got {input_dim}")
        if num_sines < 0 or num_train <= 0 or num_test <= 0 or scale <= 0:
            raise ValueError("num_sines must be >= 0, sizes and scale positive")
        self.correlation = correlation
        self.input_dim = input_dim
        self.scale = scale
        self.num_sines = num_sines
        self.num_train = num_train
        self.num_test = num_test
        require_memory(
            self.name,
            self.memory_terms(),
            {name: getattr(self, name) for name in ("num_train", "num_test", "input_dim", "num_sines")},
            constructor_defaults(type(self)),
        )

    def memory_terms(self) -> list[MemoryTerm]:
        """Estimated peak bytes of :meth:`load`, by the options each part grows with.

        The float64 inputs stay alive while their float32 copy and the per-split copies are made;
        the sine terms ``[N, 2, num_sines]`` are float64 with two temporaries of the same size.
        """
        n = self.num_train + self.num_test
        return [
            (n * self.input_dim * 16, ("num_train", "num_test", "input_dim")),
            (n * 2 * self.num_sines * 24, ("num_train", "num_test", "num_sines")),
            (n * 2 * 8 * 4 + n * 16, ("num_train", "num_test")),
            (self.input_dim * 2 * 8 * 3, ("input_dim",)),
        ]

    def task_weights(self, rng: np.random.Generator) -> np.ndarray:
        """``[2, d]``: ``w1 = c u1``, ``w2 = c (p u1 + sqrt(1 - p^2) u2)`` for random orthonormal u1, u2."""
        q, _ = np.linalg.qr(rng.standard_normal((self.input_dim, 2)))
        u1, u2 = q[:, 0], q[:, 1]
        p = self.correlation
        return self.scale * np.stack([u1, p * u1 + np.sqrt(1.0 - p * p) * u2])

    def generate(self, seed: int) -> dict[str, np.ndarray]:
        """All examples: ``x [N, d]``, ``y [N, 2]`` and the generating ``weights``, ``alpha``, ``beta``."""
        rng = numpy_rng(seed)
        weights = self.task_weights(rng)
        alpha = rng.standard_normal(self.num_sines)
        beta = rng.standard_normal(self.num_sines)
        n = self.num_train + self.num_test
        x = rng.standard_normal((n, self.input_dim))
        linear = x @ weights.T  # [N, 2]
        sines = np.sin(alpha[None, None, :] * linear[:, :, None] + beta[None, None, :]).sum(axis=2)
        y = linear + sines + NOISE_STD * rng.standard_normal(linear.shape)
        return {"x": x, "y": y, "weights": weights, "alpha": alpha, "beta": beta}

    def load(self, data_dir: Path | None = None, seed: int = 0, val_fraction: float = 0.1) -> MultiLabelData:
        """Generate the data (``data_dir`` is unused: nothing is downloaded)."""
        g = self.generate(seed)
        x = torch.from_numpy(g["x"].astype(np.float32))
        y = torch.from_numpy(g["y"].astype(np.float32)).unsqueeze(-1)  # [N, 2, 1]
        train_rows, val_rows = split_rows(self.num_train, val_fraction, torch_generator(seed))
        test_rows = torch.arange(self.num_train, self.num_train + self.num_test)

        def make(rows: torch.Tensor) -> MultiLabelSplit:
            return MultiLabelSplit.from_dense(x[rows], y[rows])

        return MultiLabelData(
            name=self.name,
            task_names=["task1", "task2"],
            labels_per_task=[1, 1],
            input_dim=self.input_dim,
            train=make(train_rows),
            val=make(val_rows),
            test=make(test_rows),
            problem="regression",
            info={
                "correlation": self.correlation,
                "weights": g["weights"],
                "alpha": g["alpha"],
                "beta": g["beta"],
                "noise_std": NOISE_STD,
                "seed": seed,
            },
        )

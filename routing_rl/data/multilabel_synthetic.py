"""A synthetic multi-task multi-label problem with controllable task relatedness.

Stands in for YouTube8M in tests and quick experiments: no download, deterministic under the
seed, learnable in seconds on a CPU, and with the property SNR is about, tasks that are related
to different degrees. Generative model (all draws from ``numpy.random.default_rng(seed)``):

* inputs ``x ~ N(0, I_D)``; shared nonlinear features ``phi(x) = tanh(x A / sqrt(D))`` with
  ``A ~ N(0, 1)^{D x F}``;
* tasks are split round-robin into ``num_groups`` groups (task ``t`` is in group ``t mod G``);
  label ``c`` of task ``t`` has weight vector
  ``w_tc = sqrt(rho) g_{group(t), c} + sqrt(1 - rho) e_tc`` with ``g, e ~ N(0, I_F)``
  independent, so the noiseless scores of label ``c`` of two tasks of the same group have
  correlation about ``rho = relatedness`` and tasks of different groups are unrelated;
* score ``s_tc = phi(x) . w_tc / sqrt(F) + noise_std * N(0, 1)``; label ``c`` of task ``t`` is
  positive when its score exceeds its ``1 - prevalence_t`` quantile (over all generated
  examples), where ``prevalence_t`` goes linearly from ``max_prevalence`` (task 0) to
  ``min_prevalence`` (last task) so that tasks have different numbers of examples with a
  positive label, as YouTube8M's verticals do (which makes macro and micro MAP differ).

Tasks have different label counts (``labels_per_task``, by default cycling 10, 8, 6) to exercise
the label mask. The test split is generated with the training data and held apart; the
validation split is ``val_fraction`` of the training examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from routing_rl.core.seeding import numpy_rng, torch_generator
from routing_rl.core.records import MAX_TASKS
from routing_rl.data.memory import MemoryTerm, constructor_defaults, require_memory
from routing_rl.data.multilabel import MultiLabelData, MultiLabelSplit, MultiLabelSuite, split_rows


class MultiLabelSynthetic(MultiLabelSuite):
    """Tasks in groups sharing latent label directions; ``relatedness`` sets how much they share."""

    name = "multilabel-synthetic"
    description = "synthetic multi-task multi-label data with grouped, controllably related tasks"

    option_help = {
        "num_tasks": "number of tasks",
        "num_groups": "groups of related tasks",
        "relatedness": "how much the tasks of a group share their latent factors (0..1)",
        "labels_per_task": "labels of each task (default 10,8,6 repeated)",
        "input_dim": "input features",
        "latent_dim": "latent factors behind the labels",
        "num_train": "training examples (before the validation hold-out)",
        "num_test": "test examples",
        "noise_std": "standard deviation of the input noise",
        "max_prevalence": "largest fraction of examples positive for a label",
        "min_prevalence": "smallest fraction of examples positive for a label",
        "sparse_targets": "store targets as sparse positive lists (as youtube8m does)",
    }

    def __init__(
        self,
        num_tasks: int = 6,
        num_groups: int = 2,
        relatedness: float = 0.8,
        labels_per_task: Sequence[int] | None = None,
        input_dim: int = 32,
        latent_dim: int = 16,
        num_train: int = 4000,
        num_test: int = 1000,
        noise_std: float = 0.3,
        max_prevalence: float = 0.2,
        min_prevalence: float = 0.05,
        sparse_targets: bool = False,
    ) -> None:
        if num_tasks > MAX_TASKS:
            raise ValueError(f"num_tasks is {num_tasks}, more than the {MAX_TASKS} tasks a run may have")
        if num_tasks <= 0 or not 1 <= num_groups <= num_tasks:
            raise ValueError(f"need num_tasks > 0 and 1 <= num_groups <= num_tasks, got {num_tasks}, {num_groups}")
        if not 0.0 <= relatedness <= 1.0:
            raise ValueError(f"relatedness must be in [0, 1], got {relatedness}")
        if not 0.0 < min_prevalence <= max_prevalence < 1.0:
            raise ValueError(f"need 0 < min_prevalence <= max_prevalence < 1, got {min_prevalence}, {max_prevalence}")
        if labels_per_task is not None and (len(labels_per_task) != num_tasks or min(labels_per_task) <= 0):
            raise ValueError(f"labels_per_task needs {num_tasks} positive counts, got {list(labels_per_task)}")
        if min(input_dim, latent_dim, num_train, num_test) <= 0 or noise_std < 0:
            raise ValueError("sizes must be positive and noise_std >= 0")
        # Checked before the per-task lists below exist: with a huge num_tasks even they would not fit.
        max_labels = 10 if labels_per_task is None else max(int(c) for c in labels_per_task)
        options: dict[str, object] = {"num_tasks": num_tasks, "num_groups": num_groups}
        if labels_per_task is not None:
            options["labels_per_task"] = list(labels_per_task)
        options.update(num_train=num_train, num_test=num_test, input_dim=input_dim, latent_dim=latent_dim)
        require_memory(
            self.name,
            self.memory_terms(num_tasks, num_groups, max_labels, input_dim, latent_dim, num_train + num_test),
            options,
            constructor_defaults(type(self)),
        )
        if labels_per_task is None:
            labels_per_task = [(10, 8, 6)[t % 3] for t in range(num_tasks)]
        self.num_tasks = num_tasks
        self.num_groups = num_groups
        self.relatedness = relatedness
        self.labels_per_task = [int(c) for c in labels_per_task]
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.num_train = num_train
        self.num_test = num_test
        self.noise_std = noise_std
        self.prevalence = np.linspace(max_prevalence, min_prevalence, num_tasks)
        self.sparse_targets = sparse_targets

    @staticmethod
    def memory_terms(
        num_tasks: int, num_groups: int, max_labels: int, input_dim: int, latent_dim: int, num_examples: int
    ) -> list[MemoryTerm]:
        """Estimated peak bytes of :meth:`generate` plus :meth:`load`, by the options each part grows with.

        The scores ``[N, T, C_max]`` dominate: the clean scores, the noise, the noisy scores and
        their sorted copy are float64, the labels float32 (and copied once more into the splits);
        inputs and latent features are float64 with a float32 copy of the inputs per split.
        """
        n, labels = num_examples, "labels_per_task"
        return [
            (n * num_tasks * max_labels * 44, ("num_tasks", labels, "num_train", "num_test")),
            (n * input_dim * 16, ("num_train", "num_test", "input_dim")),
            (n * latent_dim * 16, ("num_train", "num_test", "latent_dim")),
            (num_tasks * max_labels * latent_dim * 24 + num_tasks * 200, ("num_tasks", labels, "latent_dim")),
            (num_groups * max_labels * latent_dim * 8, ("num_groups", labels, "latent_dim")),
            (input_dim * latent_dim * 8, ("input_dim", "latent_dim")),
        ]

    def task_groups(self) -> list[int]:
        """Group of each task (round-robin)."""
        return [t % self.num_groups for t in range(self.num_tasks)]

    def label_weights(self, rng: np.random.Generator) -> np.ndarray:
        """``w [T, C_max, F]``: ``sqrt(rho) * group direction + sqrt(1 - rho) * private direction``."""
        c_max = max(self.labels_per_task)
        shared = rng.standard_normal((self.num_groups, c_max, self.latent_dim))
        private = rng.standard_normal((self.num_tasks, c_max, self.latent_dim))
        groups = np.asarray(self.task_groups())
        return np.sqrt(self.relatedness) * shared[groups] + np.sqrt(1.0 - self.relatedness) * private

    def generate(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x [N, D], y [N, T, C_max], noiseless_scores [N, T, C_max])`` for all N examples."""
        rng = numpy_rng(seed)
        n = self.num_train + self.num_test
        projection = rng.standard_normal((self.input_dim, self.latent_dim))
        weights = self.label_weights(rng)
        x = rng.standard_normal((n, self.input_dim))
        features = np.tanh(x @ projection / np.sqrt(self.input_dim))
        clean = np.einsum("nf,tcf->ntc", features, weights) / np.sqrt(self.latent_dim)
        scores = clean + self.noise_std * rng.standard_normal(clean.shape)
        # Threshold of task t: the order statistic leaving a fraction prevalence_t of examples above.
        ranked = np.sort(scores, axis=0)
        cut = np.clip(np.floor((1.0 - self.prevalence) * n).astype(np.int64), 0, n - 1)
        thresholds = ranked[cut, np.arange(self.num_tasks)]
        y = (scores > thresholds[None]).astype(np.float32)
        y *= (np.arange(y.shape[2])[None, :] < np.asarray(self.labels_per_task)[:, None])[None]
        return x.astype(np.float32), y, clean

    def load(self, data_dir: Path | None = None, seed: int = 0, val_fraction: float = 0.1) -> MultiLabelData:
        """Generate the data (``data_dir`` is unused: nothing is downloaded)."""
        x_np, y_np, _ = self.generate(seed)
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        train_rows, val_rows = split_rows(self.num_train, val_fraction, torch_generator(seed))
        test_rows = torch.arange(self.num_train, self.num_train + self.num_test)

        def make(rows: torch.Tensor) -> MultiLabelSplit:
            return MultiLabelSplit.from_dense(x[rows], y[rows], sparse=self.sparse_targets)

        return MultiLabelData(
            name=self.name,
            task_names=[f"task{t}-group{g}" for t, g in enumerate(self.task_groups())],
            labels_per_task=list(self.labels_per_task),
            input_dim=self.input_dim,
            train=make(train_rows),
            val=make(val_rows),
            test=make(test_rows),
            problem="multilabel",
            info={
                "groups": self.task_groups(),
                "relatedness": self.relatedness,
                "prevalence": self.prevalence.tolist(),
                "seed": seed,
            },
        )

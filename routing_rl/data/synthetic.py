"""A synthetic multi-task problem whose task relatedness is known exactly.

Real benchmarks only hint at which tasks are related. Here the T tasks fall into G groups and every
group has its own random "teacher" network; all tasks of a group are labelled by the same teacher
(so sharing parameters inside a group helps), while teachers of different groups are drawn
independently (so sharing across groups hurts). A router that learns to route by group is doing
the right thing, and that can be checked. Nothing is read from disk and the data are fully
determined by the seed, so the suite also serves as a fast end-to-end test problem.

Group assignment is interleaved: task ``t`` is in group ``t % G``, so neighbouring task ids are in
different groups and an order-based router cannot find the groups by accident. The list is
exposed as ``SingleLabelData.info["groups"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from routing_rl.core.records import MAX_TASKS
from routing_rl.core.seeding import DataStream, numpy_rngs
from routing_rl.data.base import SingleLabelData, SingleLabelSuite
from routing_rl.data.memory import MemoryTerm, constructor_defaults, require_memory
from routing_rl.data.splitting import TaskRows, train_val_test


@dataclass(frozen=True)
class Teacher:
    """A random 2-layer tanh MLP whose argmax labels a group's tasks.

    The output biases are tuned on a reference sample so that all classes are about equally
    frequent (a raw random network tends to favour one or two classes).
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def logits(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Teacher logits ``[N, num_classes]``, computed in float64."""
        xs = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return np.tanh(xs.astype(np.float64) @ self.w1 + self.b1) @ self.w2 + self.b2

    def labels(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Teacher labels (argmax of the logits) as int64."""
        return self.logits(x).argmax(axis=1).astype(np.int64)

    @staticmethod
    def random(
        rng: np.random.Generator, dim: int, hidden: int, num_classes: int, gain: float = 1.0
    ) -> "Teacher":
        """Draw a teacher; ``gain`` scales the first layer (larger = more non-linear boundaries)."""
        w1 = rng.standard_normal((dim, hidden)) * gain / np.sqrt(dim)
        b1 = rng.standard_normal(hidden) * 0.5
        w2 = rng.standard_normal((hidden, num_classes)) * 3.0 / np.sqrt(hidden)
        teacher = Teacher(w1, b1, w2, np.zeros(num_classes))
        return teacher.balanced(rng.standard_normal((8192, dim)))

    def balanced(self, reference: np.ndarray, steps: int = 50) -> "Teacher":
        """Adjust the output biases until the classes are about equally frequent on ``reference``."""
        num_classes = self.w2.shape[1]
        hidden = np.tanh(reference @ self.w1 + self.b1) @ self.w2
        b2 = np.zeros(num_classes)
        for _ in range(steps):
            freq = np.bincount((hidden + b2).argmax(axis=1), minlength=num_classes) / reference.shape[0]
            b2 -= 0.5 * np.log((freq + 1e-3) * num_classes)
        return Teacher(self.w1, self.b1, self.w2, b2)


class SyntheticGroups(SingleLabelSuite):
    """``num_tasks`` classification tasks in ``num_groups`` groups of identical teachers.

    Inputs are standard Gaussian vectors of ``dim`` features (float32, not standardised further),
    drawn independently for every task and split; labels are the group teacher's argmax over
    ``num_classes`` classes. ``label_noise`` replaces that share of each task's *training* labels
    (including the validation hold-out) by uniformly random classes, drawn per task; test labels
    stay clean. ``problem_seed`` fixes the teachers independently of the sampling ``seed`` of
    :meth:`load` (default: the teachers also come from ``seed``).

    With the defaults (8 tasks, 2 groups, 4 classes, 32 features, teacher width 8, 1,000 training
    and 300 test samples per task) a width-64 two-hidden-layer MLP trained with Adam for two
    epochs per task (on its 900 rows left after the default validation hold-out) reaches about
    60 % test accuracy (55-70 % per task) against 25 % chance: learnable, with head-room left for
    sharing within a group.
    """

    name: ClassVar[str] = "synthetic-groups"
    gym_id: ClassVar[str] = "routing_rl/SyntheticGroups-v0"
    description: ClassVar[str] = "synthetic tasks in groups sharing a random teacher MLP (relatedness known)"
    needs_download: ClassVar[bool] = False

    option_help: ClassVar[dict[str, str]] = {
        "num_tasks": "number of tasks",
        "num_groups": "groups of tasks; task t is in group t mod num_groups and shares its teacher",
        "num_classes": "classes of every task",
        "dim": "input features",
        "hidden": "hidden units of each group's random teacher MLP",
        "train_per_task": "training samples per task (before the validation hold-out)",
        "test_per_task": "test samples per task",
        "label_noise": "fraction of training labels replaced by a random class",
        "problem_seed": "seed of the teachers (default: the run's --seed)",
    }

    size_options: ClassVar[tuple[str, ...]] = (
        "num_tasks", "train_per_task", "test_per_task", "dim", "num_groups", "hidden", "num_classes",
    )  # fmt: skip
    """The options the data size grows with, in the order a too-large-for-memory error names them."""

    def __init__(
        self,
        *,
        num_tasks: int = 8,
        num_groups: int = 2,
        num_classes: int = 4,
        dim: int = 32,
        hidden: int = 8,
        train_per_task: int = 1000,
        test_per_task: int = 300,
        label_noise: float = 0.0,
        problem_seed: int | None = None,
    ) -> None:
        if num_tasks > MAX_TASKS:
            raise ValueError(f"num_tasks is {num_tasks}, more than the {MAX_TASKS} tasks a run may have")
        if not 1 <= num_groups <= num_tasks:
            raise ValueError(f"need 1 <= num_groups <= num_tasks, got {num_groups} groups for {num_tasks} tasks")
        if num_classes < 2 or dim < 1 or hidden < 1:
            raise ValueError("need num_classes >= 2, dim >= 1 and hidden >= 1")
        if train_per_task < 1 or test_per_task < 1:
            raise ValueError("train_per_task and test_per_task must be positive")
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
        if problem_seed is not None and problem_seed < 0:
            raise ValueError(f"problem_seed must be a non-negative integer, got {problem_seed}")
        self.num_tasks = num_tasks
        self.num_groups = num_groups
        self.num_classes = num_classes
        self.dim = dim
        self.hidden = hidden
        self.train_per_task = train_per_task
        self.test_per_task = test_per_task
        self.label_noise = label_noise
        self.problem_seed = problem_seed
        require_memory(
            self.name,
            self.memory_terms(),
            {name: getattr(self, name) for name in self.size_options},
            constructor_defaults(type(self)),
        )

    def memory_terms(self) -> list[MemoryTerm]:
        """Estimated peak bytes of :meth:`load`, by the options each part grows with.

        Inputs are drawn in float64 and kept as float32 (the float64 copy of the larger split is
        the transient peak); the row tables hold a few int64 columns per row plus the copies the
        validation hold-out makes; every task and group also costs some Python objects.
        """
        train, test = self.num_tasks * self.train_per_task, self.num_tasks * self.test_per_task
        teacher = 8 * (self.dim * self.hidden + self.hidden * (self.num_classes + 1) + self.num_classes) + 600
        reference = 8 * 8192  # bytes per column of Teacher.balanced's float64 sample (one teacher at a time)
        return [
            ((train + test) * self.dim * 4 + max(train, test) * self.dim * 8,
             ("num_tasks", "train_per_task", "test_per_task", "dim")),
            ((train + test) * 64, ("num_tasks", "train_per_task", "test_per_task")),
            (self.num_tasks * 200, ("num_tasks",)),
            (reference * self.dim, ("dim",)),
            (self.num_groups * teacher + reference * (self.hidden + self.num_classes),
             ("num_groups", "dim", "hidden", "num_classes")),
        ]  # fmt: skip

    def groups(self) -> list[int]:
        """Group of every task: ``t % num_groups`` (interleaved)."""
        return [t % self.num_groups for t in range(self.num_tasks)]

    def teachers(self, seed: int) -> list[Teacher]:
        """One independent teacher per group, determined by ``problem_seed`` (or ``seed``)."""
        base = self.problem_seed if self.problem_seed is not None else seed
        rngs = numpy_rngs(base, self.num_groups, DataStream.SYNTHETIC_TEACHERS)
        return [Teacher.random(rng, self.dim, self.hidden, self.num_classes) for rng in rngs]

    def sample(
        self, teachers: list[Teacher], per_task: int, rng: np.random.Generator, noise: float
    ) -> tuple[np.ndarray, TaskRows]:
        """Inputs ``[T * per_task, dim]`` (float32) and their rows, task-major."""
        groups = self.groups()
        inputs = rng.standard_normal((self.num_tasks * per_task, self.dim)).astype(np.float32)
        targets = np.empty(inputs.shape[0], dtype=np.int64)
        for task in range(self.num_tasks):
            rows = slice(task * per_task, (task + 1) * per_task)
            labels = teachers[groups[task]].labels(inputs[rows])
            flip = rng.random(per_task) < noise
            labels[flip] = rng.integers(0, self.num_classes, size=int(flip.sum()))
            targets[rows] = labels
        tasks = np.repeat(np.arange(self.num_tasks, dtype=np.int64), per_task)
        return inputs, TaskRows(np.arange(inputs.shape[0], dtype=np.int64), targets, tasks)

    def load(self, data_dir: Path | None, seed: int, val_fraction: float = 0.1) -> SingleLabelData:
        """Generate the data (``data_dir`` is ignored); identical for identical arguments."""
        teachers = self.teachers(seed)
        rng_train, rng_test, rng_val = numpy_rngs(seed, 3, DataStream.SYNTHETIC_SAMPLES)
        train_x, train_rows = self.sample(teachers, self.train_per_task, rng_train, self.label_noise)
        test_x, test_rows = self.sample(teachers, self.test_per_task, rng_test, 0.0)
        train, val, test = train_val_test(
            torch.from_numpy(train_x), train_rows, torch.from_numpy(test_x), test_rows,
            val_fraction, rng_val, (0.0,), (1.0,),
        )  # fmt: skip
        return SingleLabelData(
            name=self.name,
            task_names=[f"task{t}-group{g}" for t, g in enumerate(self.groups())],
            num_classes=self.num_classes,
            input_shape=(self.dim,),
            train=train,
            val=val,
            test=test,
            augment=None,
            info={
                "groups": self.groups(),
                "teachers": teachers,
                "label_noise": self.label_noise,
                "chance": 1.0 / self.num_classes,
            },
        )

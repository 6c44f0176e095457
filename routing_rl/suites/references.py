"""Reference rows of a suite table: what a majority-class (or mean) guess and a linear model score.

A battery's verdict says whether routing beats the shared bottom; it does not say whether either is
any good. A researcher reading "0.74 accuracy" needs the floor (the training rows' majority class
or mean: what a network that learnt nothing scores) and the simplest model that learns (a linear
model per task). Both are fitted with scikit-learn on each seed's own training split, the split
every method of that seed trains on, and scored on its test split with the trainer's own metrics
(accuracy, MSE on the standardised targets, MAP@K; a mixed file's task score), so their rows
compare with the methods' rows seed for seed.

They are computed on demand for vector inputs (tables and feature vectors; a linear model of raw
pixels says little about an image suite) and cached in the suite directory (``references.json``,
keyed by each seed's data options), so a table is computed once per suite, not once per look.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from routing_rl.core.seeding import FIXED_SEED, DataStream, numpy_rng
from routing_rl.core.files import MANIFEST_LIMIT, FileCheckError, read_regular
from routing_rl.data.base import SingleLabelData
from routing_rl.data.scorers import nanmean
from routing_rl.data.multilabel import MultiLabelData
from routing_rl.metrics import map_at_k

REFERENCES = ("majority", "linear")
"""The reference rows, in table order: the floor, then the simplest learner."""

LABELS = {"majority": "reference: majority class / mean", "linear": "reference: linear model"}
"""How the table names each reference row."""

CACHE = "references.json"
"""The cache file in a suite directory."""

MAX_ROWS = 200_000
"""Training rows a linear reference is fitted on at most (a random subset past it): a reference,
not a method, must not cost more than the battery."""


def data_key(config: dict[str, Any]) -> str:
    """What fixes a seed's data: the suite, its options, the seed and the validation share."""
    identity = {key: config.get(key) for key in ("env", "env_options", "seed", "val_fraction")}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def reference_scores(data: SingleLabelData | MultiLabelData, map_k: int = 10) -> dict[str, dict[str, Any]] | None:
    """Per reference, ``{"per_task": [...], "mean": float}`` on the test split; None for image inputs."""
    if isinstance(data, SingleLabelData):
        if len(data.input_shape) != 1:
            return None
        return {name: _single_label(data, name) for name in REFERENCES}
    return {name: _multi_output(data, name, map_k) for name in REFERENCES}


def _rows(split: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    x, y, t = split.gather(torch.arange(len(split)))
    return x.reshape(len(split), -1).double().numpy(), y.numpy(), t.numpy()


def _classifier(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "majority" or np.unique(y).size < 2:
        return DummyClassifier(strategy="most_frequent").fit(x, y)
    x, y = _subset(x, y)
    with warnings.catch_warnings():  # a reference that stops at max_iter is still a reference
        warnings.simplefilter("ignore")
        return LogisticRegression(max_iter=500).fit(x, y)


def _regressor(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge

    if kind == "majority":
        return DummyRegressor(strategy="mean").fit(x, y)
    return Ridge(alpha=1.0).fit(*_subset(x, y))


def _subset(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[0] <= MAX_ROWS:
        return x, y
    keep = numpy_rng(FIXED_SEED, DataStream.REFERENCE_ROWS).choice(x.shape[0], MAX_ROWS, replace=False)
    return x[keep], y[keep]


def _single_label(data: SingleLabelData, kind: str) -> dict[str, Any]:
    train_x, train_y, train_t = _rows(data.train)
    test_x, test_y, test_t = _rows(data.test)
    per_task = []
    for task in range(data.num_tasks):
        model = _classifier(kind, train_x[train_t == task], train_y[train_t == task])
        rows = test_t == task
        per_task.append(float((model.predict(test_x[rows]) == test_y[rows]).mean()) if rows.any() else math.nan)
    return {"per_task": per_task, "mean": nanmean(per_task)}


def _multi_output(data: MultiLabelData, kind: str, map_k: int) -> dict[str, Any]:
    train_x, train_y = data.train.x.double().numpy(), data.train.y.double().numpy()
    test_x, test_y = data.test.x.double().numpy(), data.test.y.double().numpy()
    kinds = data.task_kinds or [data.problem] * data.num_tasks
    per_task, scores = [], []
    for task, (outputs, task_kind) in enumerate(zip(data.labels_per_task, kinds)):
        seen = ~np.isnan(train_y[:, task, :outputs]).any(axis=1)
        tested = ~np.isnan(test_y[:, task, :outputs]).any(axis=1)
        target, truth = train_y[seen, task, :outputs], test_y[tested, task, :outputs]
        if task_kind == "classification":
            model = _classifier(kind, train_x[seen], target.argmax(axis=1))
            value = float((model.predict(test_x[tested]) == truth.argmax(axis=1)).mean())
            scores.append(value)
        elif task_kind == "regression":
            model = _regressor(kind, train_x[seen], target)
            value = float(np.mean((model.predict(test_x[tested]).reshape(truth.shape) - truth) ** 2))
            scores.append(1.0 - value if data.problem == "mixed" else value)
        else:
            columns = [_label_scores(kind, train_x[seen], target[:, j], test_x[tested]) for j in range(outputs)]
            ranked = np.zeros((truth.shape[0], 1, outputs))
            ranked[:, 0] = np.stack(columns, axis=1)
            value = float(map_at_k(ranked, truth[:, None, :], map_k).per_task[0])
            scores.append(value)
        per_task.append(value)
    return {"per_task": per_task, "mean": nanmean(scores)}


def _label_scores(kind: str, x: np.ndarray, y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """One label's scores for ranking: the training frequency (majority) or a logistic model's probability."""
    if kind == "majority" or np.unique(y).size < 2:
        return np.full(test_x.shape[0], float(y.mean()))
    model = _classifier(kind, x, y.astype(int))
    return model.predict_proba(test_x)[:, 1]


def as_results(scores: dict[str, Any], metric: dict[str, Any], task_names: list[str], seed: int) -> dict[str, Any]:
    """A reference's scores in the shape of a finished trial's results.json, for the table's rows."""
    final = {"epoch": 0, "val_mean": math.nan, "test_mean": scores["mean"], "test_micro": scores["mean"], "test_per_task": scores["per_task"]}
    return {"status": "complete", "metric": metric, "env": {"task_names": task_names}, "config": {"seed": seed},
            "final": {"last": final, "best_val": dict(final)}, "epochs": []}  # fmt: skip


def suite_references(baseline_trials: list[dict[str, Any]], directory: Path, results_of: dict[int, dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """The reference rows' results by seed for the seeds of ``baseline_trials`` (a suite's trials of
    one run, one per seed, each ``{"seed", "config"}`` with the trial's options as a dict), read
    from the cache in ``directory`` or computed and cached there.

    ``results_of`` maps a seed to a finished trial's results of that seed (its metric and task names
    label the reference's); seeds without one are skipped. Empty for image inputs.
    """
    from routing_rl.data import load_from
    from routing_rl.training.records.io import write_text
    from routing_rl.training.setup.composition import suite_class

    cache_path = directory / CACHE
    try:  # a cache that is not a plain, readable file is recomputed, never trusted
        cache: dict[str, Any] = json.loads(read_regular(cache_path, MANIFEST_LIMIT, "references cache", follow=False)) if cache_path.exists() else {}
    except (OSError, ValueError, FileCheckError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    rows: dict[str, dict[int, dict[str, Any]]] = {LABELS[name]: {} for name in REFERENCES}
    changed = False
    for trial in baseline_trials:
        seed, config = int(trial["seed"]), trial["config"]
        finished = results_of.get(seed)
        if finished is None:
            continue
        key = data_key(config)
        if key not in cache:
            suite = suite_class(config["env"])
            data = load_from(suite(**config.get("env_options", {})), config["env"], config.get("data_dir"), seed, config.get("val_fraction", 0.1))
            cache[key] = reference_scores(data, config.get("map_k", 10))
            changed = True
        if cache[key] is None:
            return {}
        for name in REFERENCES:
            rows[LABELS[name]][seed] = as_results(cache[key][name], finished["metric"], finished["env"]["task_names"], seed)
    if changed and directory.is_dir():
        write_text(cache_path, json.dumps(cache, indent=1))
    return rows

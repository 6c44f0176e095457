"""Suite-wide settings: one intra-op thread, since the tests' networks are tiny and thread
hand-offs dominate their cost on a small or busy machine (results do not depend on it)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def results_document(
    test_mean: float = 0.9,
    *,
    status: str = "complete",
    tasks: int = 2,
    env: str = "synthetic-groups",
    epochs: int = 1,
    metric: str = "accuracy",
    higher_is_better: bool = True,
    best_val_test_mean: float | None = None,
    routing: dict | None = None,
    per_task: list[float] | None = None,
    task_metrics: list[dict] | None = None,
    parameters: int = 10,
) -> dict:
    """A minimal results.json of the current schema (what readers of runs may rely on).

    ``per_task`` gives each task's test score (default: ``test_mean`` for each of ``tasks``);
    ``task_metrics`` is the optional ``metric.tasks`` list of suites that mix task kinds."""
    per_task = list(per_task) if per_task is not None else [test_mean] * tasks
    tasks = len(per_task)
    score = {"per_task": per_task, "mean": test_mean, "micro": test_mean, "loss": 0.1}
    record = {"epoch": epochs, "train_loss": 0.1, "train_seconds": 1.0, "eval_seconds": 0.25, "val": score, "test": score,
              "parameters": {"train": parameters, "serving": parameters}}  # fmt: skip
    if routing is not None:
        record["routing"] = routing
    best = test_mean if best_val_test_mean is None else best_val_test_mean
    return {
        "schema_version": 1,
        "status": status,
        "config": {"agent": "fixed-random", "env": env, "epochs": epochs, "env_options": {}},
        "provenance": {},
        "env": {"name": env, "family": "single-label", "task_names": [f"task{t}" for t in range(tasks)]},
        "learner": {"kind": "router", "routed_layers": ["fc1"]},
        "metric": {"name": metric, "higher_is_better": higher_is_better, **({"tasks": task_metrics} if task_metrics is not None else {})},
        "epochs": [record],
        "final": {
            "metric": metric, "higher_is_better": higher_is_better, "epoch": epochs,
            "last": {"epoch": epochs, "val_mean": test_mean, "test_mean": test_mean, "test_micro": test_mean, "test_per_task": per_task},
            "best_val": {"epoch": epochs, "val_mean": best, "test_mean": best, "test_micro": best,
                         "test_per_task": per_task if best_val_test_mean is None else [best] * tasks},
            "mean_train_seconds_per_epoch": 1.0, "parameters": {"train": parameters, "serving": parameters},
        },
    }  # fmt: skip


@pytest.fixture
def write_results():
    """``write_results(directory, **fields)`` writes :func:`results_document` as ``directory/results.json``."""
    import json

    def write(directory, *args, **kwargs):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "results.json").write_text(json.dumps(results_document(*args, **kwargs)))
        return directory

    return write

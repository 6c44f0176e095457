"""The table's reference rows: a majority-class (or mean) guess and a linear model, fitted on each seed's training split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from routing_rl.data import load_suite
from routing_rl.suites.references import CACHE, LABELS, data_key, reference_scores, suite_references
from routing_rl.suites.spec import load_suite_file


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return pd.DataFrame({"a": a, "b": b, "side": np.where(a > 0, "right", "left"),  # linear in a: a linear model is exact
                         "mostly": np.where(rng.random(n) < 0.8, "yes", "no"),  # noise: 80% yes
                         "mass": 2 * a + 0.01 * rng.standard_normal(n)})  # fmt: skip


def test_majority_and_linear_on_classification_tasks(tmp_path):
    table().to_csv(tmp_path / "t.csv", index=False)
    data = load_suite("files", seed=0, path=str(tmp_path / "t.csv"), tasks="side,mostly", features="a,b")
    scores = reference_scores(data)
    test_rows = data.test.gather(__import__("torch").arange(len(data.test)))
    y, t = test_rows[1].numpy(), test_rows[2].numpy()
    train = data.train.gather(__import__("torch").arange(len(data.train)))
    majority_side = np.bincount(train[1].numpy()[train[2].numpy() == 0]).argmax()
    assert scores["majority"]["per_task"][0] == pytest.approx(float((y[t == 0] == majority_side).mean()))
    assert scores["linear"]["per_task"][0] >= 0.95  # the side is a threshold on a
    assert scores["majority"]["mean"] == pytest.approx(np.mean(scores["majority"]["per_task"]))


def test_a_mixed_table_scores_regression_by_mse_and_the_mean_guess_costs_the_test_variance(tmp_path):
    table().to_csv(tmp_path / "t.csv", index=False)
    data = load_suite("files", seed=0, path=str(tmp_path / "t.csv"), tasks="side,mass", features="a,b")
    assert data.problem == "mixed"
    scores = reference_scores(data)
    truth = data.test.y[:, 1, 0].double().numpy()
    train_mean = data.train.y[:, 1, 0].double().numpy().mean()
    assert scores["majority"]["per_task"][1] == pytest.approx(float(np.mean((truth - train_mean) ** 2)))
    assert scores["linear"]["per_task"][1] < 0.01  # mass is linear in a
    side, mse = scores["linear"]["per_task"]
    assert scores["linear"]["mean"] == pytest.approx((side + 1 - mse) / 2)  # the task score: 1 - MSE for regression


def test_image_inputs_have_no_reference(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "i.npz", x=rng.integers(0, 255, (40, 8, 8)).astype(np.uint8), y=rng.integers(0, 2, 40))
    assert reference_scores(load_suite("files", seed=0, path=str(tmp_path / "i.npz"), tasks="y")) is None


def test_references_are_computed_once_per_seed_and_cached_in_the_suite_directory(tmp_path):
    table().to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.toml").write_text('[suite]\nname = "s"\nseeds = [0, 1]\nbaseline = "sb"\n[defaults]\nenv = "files"\nepochs = 1\n'
                                      'env_options = { path = "t.csv", tasks = "side", features = "a,b" }\n[runs.sb]\nagent = "shared-bottom"\n')
    trials = [{"seed": t.seed, "config": t.config.to_dict()} for t in load_suite_file(tmp_path / "s.toml").trials()]
    finished = {t["seed"]: {"metric": {"name": "accuracy", "higher_is_better": True}, "env": {"task_names": ["side"]}} for t in trials}
    out = tmp_path / "runs"
    out.mkdir()
    linear = suite_references(trials, out, finished)[LABELS["linear"]]
    assert sorted(linear) == [0, 1] and linear[0]["final"]["last"]["test_mean"] >= 0.9
    cache = json.loads((out / CACHE).read_text())
    assert set(cache) == {data_key(t["config"]) for t in trials}
    cache[data_key(trials[0]["config"])]["linear"]["mean"] = 0.123  # a cached value is what the next table reads
    (out / CACHE).write_text(json.dumps(cache))
    assert suite_references(trials, out, finished)[LABELS["linear"]][0]["final"]["last"]["test_mean"] == 0.123
    (out / CACHE).write_text("{ not json")  # a damaged cache is recomputed
    assert suite_references(trials, out, finished)[LABELS["linear"]][0]["final"]["last"]["test_mean"] >= 0.9

"""End to end: the RL routers train through the real Trainer on synthetic-groups and resume exactly."""

from __future__ import annotations

import json
import math

import pytest
import torch

from routing_rl.analysis.report import analyze_runs
from routing_rl.data import load_suite
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose

SMALL = {"num_tasks": 4, "num_groups": 2, "train_per_task": 64, "test_per_task": 32}



@pytest.fixture(scope="module")
def data():
    return load_suite("synthetic-groups", seed=0, **SMALL)


def run(data, logdir, epochs=2, resume=False, **overrides):
    cfg = RunConfig(**{
        "env": "synthetic-groups", "agent": "wpl", "epochs": epochs, "batch_size": 32, "router_lr": 0.02,
        "device": "cpu", "logdir": str(logdir), **overrides,
    })  # fmt: skip
    trainer = Trainer(compose(cfg), data)
    trainer.prepare_run_dir(resume=resume)
    return trainer, trainer.fit()


@pytest.mark.parametrize(
    ("agent", "options"),
    [("wpl", {}), ("wpl", {"parameterization": "softmax"}), ("reinforce", {}), ("qlearning", {"td_lambda": 1.0})],
)
def test_rl_router_trains_through_the_trainer(data, tmp_path, agent, options):
    trainer, results = run(data, tmp_path, agent=agent, agent_options=options)
    assert results["status"] == "complete"
    last = results["epochs"][-1]
    assert math.isfinite(last["router_loss"]) and last["router_loss"] != 0.0
    policies = torch.tensor(last["routing"]["policy"])  # [L, T, M]
    assert policies.shape == (3, 4, 4)
    assert torch.allclose(policies.sum(dim=-1), torch.ones(3, 4), atol=1e-5)
    assert (policies >= 0).all()
    if agent != "qlearning":  # stochastic policies moved away from uniform
        assert not torch.allclose(policies, torch.full_like(policies, 0.25), atol=1e-3)
    assert results["final"]["routes"] == trainer.learner.router.routes().tolist()


def test_public_code_wpl_freezes_in_the_trainer(data, tmp_path):
    """The first update drives the public-code table to extremes; the corrected one stays spread out."""
    _, public = run(data, tmp_path / "public", epochs=1, agent_options={"variant": "public-code"})
    _, clip = run(data, tmp_path / "clip", epochs=1)
    public_min = min(p for layer in public["epochs"][-1]["routing"]["policy"] for row in layer for p in row)
    clip_min = min(p for layer in clip["epochs"][-1]["routing"]["policy"] for row in layer for p in row)
    assert public_min < 1e-5  # frozen at an extreme after the first update
    assert clip_min > 0.05


def test_wpl_resumes_exactly_and_feeds_the_analysis(data, tmp_path):
    _, straight = run(data, tmp_path / "straight", epochs=2)
    run(data, tmp_path / "resumed", epochs=1)
    _, resumed = run(data, tmp_path / "resumed", epochs=2, resume=True)
    assert resumed["epochs"][-1]["routing"]["policy"] == straight["epochs"][-1]["routing"]["policy"]
    assert resumed["epochs"][-1]["test"]["per_task"] == straight["epochs"][-1]["test"]["per_task"]
    report = analyze_runs([tmp_path / "straight", tmp_path / "resumed" / "results.json"], samples=20)
    assert report["runs"][0]["groups"] == data.info["groups"]
    whole_route = next(p for p in report["pairs"] if p["layer"] is None)
    assert whole_route["route_ari"] == 1.0  # identical runs route identically
    json.dumps(report)  # JSON-able as the CLI prints it

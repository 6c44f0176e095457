"""The PettingZoo view: API conformance, one agent per task, rewards from each agent's own prediction."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test

from routing_rl.data import load_suite
from routing_rl.envs.multiagent import MultiTaskRoutingEnv, parallel_env
from routing_rl.core.contracts import RoutingDecision


@pytest.fixture(scope="module")
def data():
    return load_suite("synthetic-groups", seed=0, num_tasks=4, num_groups=2, train_per_task=20, test_per_task=10)


@pytest.mark.parametrize("observe_hidden", [False, True])
def test_parallel_api(data, observe_hidden):
    env = parallel_env(data=data, blocks=3, observe_hidden=observe_hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the API test reports soft problems as warnings
        parallel_api_test(env, num_cycles=10)


def test_one_agent_per_task_and_an_episode_per_routed_layer(data):
    env = MultiTaskRoutingEnv(data=data, blocks=3)
    assert env.possible_agents == ["task_0", "task_1", "task_2", "task_3"]
    obs, infos = env.reset(seed=3)
    assert [obs[a]["task"] for a in env.agents] == [0, 1, 2, 3]
    layers = env.network.num_routed
    for depth in range(layers):
        assert all(o["depth"] == depth for o in obs.values())
        obs, rewards, terms, truncs, infos = env.step(dict.fromkeys(env.agents, 1))
    assert env.agents == [] and all(terms.values()) and not any(truncs.values())
    assert set(rewards.values()) <= {1.0, -1.0}
    for task, agent in enumerate(env.possible_agents):
        assert infos[agent]["route"] == [1] * layers
        hit = infos[agent]["prediction"] == infos[agent]["label"]
        assert rewards[agent] == (1.0 if hit else -1.0)


def test_rewards_match_the_network_on_the_same_samples(data):
    env = MultiTaskRoutingEnv(data=data, blocks=3, reward="neg-loss")
    _, infos = env.reset(seed=0)
    rows = torch.tensor([infos[a]["row"] for a in env.possible_agents])
    route = [(d + 2) % 3 for d in range(env.network.num_routed)]
    for block in route:
        _, rewards, _, _, _ = env.step(dict.fromkeys(env.agents, block))
    x, y, tasks = data.test.gather(rows)
    with torch.no_grad():
        logits = env.network(x, tasks, [RoutingDecision(torch.full((4,), block)) for block in route])
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert [rewards[a] for a in env.possible_agents] == pytest.approx((-loss).tolist(), abs=1e-5)


def test_same_seed_same_episode(data):
    a, b = MultiTaskRoutingEnv(data=data, blocks=3), MultiTaskRoutingEnv(data=data, blocks=3)
    assert a.reset(seed=5)[1] == b.reset(seed=5)[1]
    for _ in range(a.network.num_routed):
        out_a = a.step(dict.fromkeys(a.agents, 2))
        out_b = b.step(dict.fromkeys(b.agents, 2))
    assert out_a[1] == out_b[1] and out_a[4] == out_b[4]


def test_bad_actions_are_refused(data):
    env = MultiTaskRoutingEnv(data=data, blocks=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="block index"):
        env.step(dict.fromkeys(env.agents, 3))
    with pytest.raises(ValueError, match="missing actions"):
        env.step({"task_0": 0})
    for _ in range(env.network.num_routed):
        env.step(dict.fromkeys(env.agents, 0))
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_hidden_observations_and_state(data):
    env = MultiTaskRoutingEnv(data=data, blocks=3, observe_hidden=True)
    obs, _ = env.reset(seed=1)
    assert obs["task_2"]["hidden"].shape == (env.hidden_dim,)
    assert env.observation_space("task_2").contains(obs["task_2"])
    env.step(dict.fromkeys(env.agents, 1))
    state = env.state()
    assert state[0] == 1 and list(state[1:].reshape(4, -1)[:, 0]) == [1, 1, 1, 1]


def test_missing_pettingzoo_names_the_extra(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "pettingzoo", None)  # makes `import pettingzoo` fail
    monkeypatch.delitem(sys.modules, "routing_rl.envs.multiagent")
    with pytest.raises(ImportError, match=r"pip install routing-rl\[multiagent\]"):
        importlib.import_module("routing_rl.envs.multiagent")

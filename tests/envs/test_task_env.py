"""The per-task routing env is a real Gymnasium env: check_env, gymnasium.make, episode structure."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import routing_rl.envs  # noqa: F401  (registers the Gymnasium ids)
from routing_rl.data import load_suite
from routing_rl.envs import TaskRoutingEnv


@pytest.fixture(scope="module")
def small_data():
    return load_suite("synthetic-groups", seed=0, num_tasks=4, num_groups=2, train_per_task=60, test_per_task=30)


@pytest.mark.parametrize("observe_hidden", [False, True])
def test_check_env_passes(small_data, observe_hidden):
    env = TaskRoutingEnv(data=small_data, task=1, routed="fc", blocks=3, observe_hidden=observe_hidden)
    check_env(env, skip_render_check=True)


def test_check_env_passes_on_a_conv_network():
    from routing_rl.data import SingleLabelData, Split
    import torch

    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    split = Split(images, torch.arange(20), torch.randint(2, (20,)), torch.arange(20) % 2)
    data = SingleLabelData("images", ["a", "b"], 2, (1, 28, 28), split, split, split)
    env = TaskRoutingEnv(data=data, task=0, routed="conv1,2,3", blocks=2, observe_hidden=True)
    check_env(env, skip_render_check=True)


def test_episode_has_one_step_per_routed_layer_and_terminates(small_data):
    env = TaskRoutingEnv(data=small_data, task=0, routed="fc1,fc3", blocks=4)
    obs, info = env.reset(seed=3)
    assert obs == {"task": 0, "depth": 0} and "label" in info
    obs, reward, terminated, truncated, _ = env.step(np.int64(2))
    assert (obs["depth"], reward, terminated, truncated) == (1, 0.0, False, False)
    obs, reward, terminated, truncated, info = env.step(1)
    assert terminated and not truncated and reward in (1.0, -1.0)
    assert info["route"] == [2, 1]
    assert reward == (1.0 if info["prediction"] == info["label"] else -1.0)


def test_neg_loss_reward(small_data):
    env = TaskRoutingEnv(data=small_data, task=2, routed="fc1", blocks=2, reward="neg-loss")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(0)
    assert terminated and reward == pytest.approx(-info["loss"]) and reward < 0


def test_invalid_action_is_rejected(small_data):
    env = TaskRoutingEnv(data=small_data, task=0, routed="fc1", blocks=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"block index in \[0, 2\)"):
        env.step(5)


def test_gymnasium_make_by_registered_id():
    env = gym.make(
        "routing_rl/SyntheticGroups-v0", task=1, routed="fc2", blocks=3,
    )
    obs, _ = env.reset(seed=0)
    assert obs["task"] == 1 and env.action_space.n == 3
    env.close()


def test_every_single_label_suite_has_a_registered_id():
    from routing_rl.data import SingleLabelSuite, Suite

    single = [suite for _, suite in Suite.registry.items() if issubclass(suite, SingleLabelSuite)]
    assert {s.name for s in single} >= {"fmnist-mtl", "cifar100-superclass", "cifar100-alphabetical", "synthetic-groups"}
    for suite in single:
        assert suite.gym_id.startswith("routing_rl/") and suite.gym_id in gym.registry


@pytest.mark.parametrize(
    "code",
    [
        "import routing_rl, gymnasium; gymnasium.make('routing_rl/SyntheticGroups-v0')",
        "import gymnasium; gymnasium.make('routing_rl:routing_rl/SyntheticGroups-v0')",
    ],
)
def test_importing_the_package_registers_the_gym_ids(code):
    """In a fresh interpreter: ``import routing_rl`` (or the module syntax of gymnasium.make) is enough."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

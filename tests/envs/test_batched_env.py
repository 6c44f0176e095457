"""The batched env plays a mini-batch as a batch of episodes and keeps the graph for training."""

from __future__ import annotations

import torch

from routing_rl.core.contracts import RoutingDecision, RoutingObservation
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.envs.collaboration import CollaborationReward
from routing_rl.network import build_network


def test_batch_of_episodes_matches_network_forward():
    net = build_network((10,), num_tasks=3, num_classes=2, routed="fc1,fc3", blocks=3, seed=0)
    x, y, t = torch.randn(12, 10), torch.randint(2, (12,)), torch.randint(3, (12,))
    choices = [torch.randint(3, (12,)) for _ in range(2)]
    seen: list[RoutingObservation] = []

    def policy(obs):
        seen.append(obs)
        return RoutingDecision(choices[obs.depth])

    episodes = BatchedRoutingEnv(net).run(x, y, t, policy)
    assert [o.depth for o in seen] == [0, 1] and episodes.num_steps == 2
    torch.testing.assert_close(episodes.logits, net(x, t, [RoutingDecision(c) for c in choices]))
    hit = episodes.logits.argmax(1) == y
    assert torch.equal(episodes.final_reward, torch.where(hit, 1.0, -1.0))
    episodes.loss.mean().backward()
    assert net.layers[0].layer.blocks[int(choices[0][0])][0].weight.grad is not None


def test_returns_apply_the_discount():
    net = build_network((4,), num_tasks=1, num_classes=2, routed="all", blocks=2, seed=0)
    env = BatchedRoutingEnv(net, step_rewards=[lambda obs, d: torch.full((2,), float(obs.depth + 1))])
    ep = env.run(torch.randn(2, 4), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long),
                 lambda obs: RoutingDecision(torch.zeros(2, dtype=torch.long)))
    g = ep.returns(discount=0.5)
    final = ep.final_reward
    # steps rewarded 1, 2, 3, then the final reward after step 3
    torch.testing.assert_close(g[2], 3 + final)
    torch.testing.assert_close(g[1], 2 + 0.5 * (3 + final))
    torch.testing.assert_close(g[0], 1 + 0.5 * (2 + 0.5 * (3 + final)))


def test_collaboration_reward_counts_recent_choices_once():
    reward = CollaborationReward(rho=0.5, window=4)
    obs = RoutingObservation(torch.zeros(4, dtype=torch.long), depth=0)
    first = reward(obs, RoutingDecision(torch.tensor([1, 1, 1, 0])))
    assert torch.equal(first, torch.zeros(4))
    second = reward(obs, RoutingDecision(torch.tensor([1, 0, 2, 2])))
    torch.testing.assert_close(second, torch.tensor([0.5 * 3 / 4, 0.5 * 1 / 4, 0.0, 0.0]))
    assert reward.history[0].tolist() == [1, 0, 2, 2]

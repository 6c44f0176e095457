"""WPL learns bandits; the public-code mode reproduces the shipped code's collapse and sign reversal.

Bandit toys are routing episodes with one routed layer built by hand: the router acts, a reward
table scores the chosen blocks, and the router is optimised on ``router.loss`` followed by its
``after_update`` hook, exactly as the trainer does.
"""

from __future__ import annotations

import math
import typing

import pytest
import torch

from routing_rl.agents import Router, RouterConfigError
from routing_rl.agents._wpl_parts import clip_projection, public_code_projection
from routing_rl.agents.wpl import WPLRouter
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation


def episodes(obs: list[RoutingObservation], decisions: list[RoutingDecision], final: torch.Tensor) -> EpisodeBatch:
    b = final.shape[0]
    return EpisodeBatch(obs, decisions, [torch.zeros(b)] * len(obs), final, torch.zeros(b), torch.zeros(b, 2), torch.zeros(b, dtype=torch.long))


def bandit_batch(router: Router, mean_reward: torch.Tensor, batch: int, noise: torch.Generator | None = None) -> EpisodeBatch:
    """Tasks ``0..T-1`` in turn; reward +1 with probability ``(1 + mean) / 2`` else -1 (deterministic without ``noise``)."""
    tasks = torch.arange(batch) % mean_reward.shape[0]
    obs = RoutingObservation(tasks, 0)
    decision = router.act(obs, explore=True)
    mean = mean_reward[tasks, decision.blocks]
    if noise is None:
        reward = mean
    else:
        reward = torch.where(torch.rand(batch, generator=noise) < (1 + mean) / 2, 1.0, -1.0)
    return episodes([obs], [decision], reward)


def train_bandit(router: WPLRouter, mean_reward: torch.Tensor, steps: int, batch: int, optimizer: torch.optim.Optimizer, noise_seed: int | None = None) -> None:
    noise = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
    for _ in range(steps):
        loss = router.loss(bandit_batch(router, mean_reward, batch, noise))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        router.after_update()


FOUR_ARMS = torch.tensor([[1.0, -1.0, -1.0, -1.0]])  # one task; only arm 0 is rewarded


def test_registered_with_typed_options():
    assert Router.registry.get("wpl") is WPLRouter
    types = {k: o.annotation for k, o in WPLRouter.options().items()}
    assert all(o.help for o in WPLRouter.options().values())
    assert typing.get_args(types["variant"]) == ("wpl", "public-code", "public-code-corrected")
    assert typing.get_args(types["update"]) == ("sampled", "all-actions")
    assert typing.get_args(types["parameterization"]) == ("table", "softmax")
    assert types["discount"] is float and types["per_sample_loss"] is bool


@pytest.mark.parametrize("parameterization", ["table", "softmax"])
def test_initial_policy_is_uniform(parameterization):
    router = WPLRouter(3, 2, 4, parameterization=parameterization)
    for depth in range(2):
        assert torch.allclose(router.policy(depth), torch.full((3, 4), 0.25))


@pytest.mark.parametrize("variant", ["public-code", "public-code-corrected"])
def test_public_code_variants_need_the_sampled_update_and_the_shipped_one_the_table(variant):
    if variant == "public-code":
        with pytest.raises(RouterConfigError, match="parameterization=table"):
            WPLRouter(2, 1, 2, variant=variant, parameterization="softmax")
    else:  # the paper's "separate optimizers" row: the corrected code with a softmax policy layer
        assert torch.allclose(WPLRouter(2, 1, 2, variant=variant, parameterization="softmax").policy(0), torch.full((2, 2), 0.5))
    with pytest.raises(RouterConfigError, match="update=sampled"):
        WPLRouter(2, 1, 2, variant=variant, update="all-actions")


def test_projections():
    raw = torch.tensor([[0.7, 0.5, -0.2], [-1.0, -2.0, -0.5], [0.2, 0.2, 0.2]])
    clipped = clip_projection(raw)
    assert torch.allclose(clipped[0], torch.tensor([0.7 / 1.2, 0.5 / 1.2, 0.0]))
    assert torch.allclose(clipped[1], torch.full((3,), 1 / 3))  # everything clipped away: uniform
    assert torch.allclose(clipped[2], torch.full((3,), 1 / 3))
    public = public_code_projection(raw)
    assert torch.allclose(public.sum(dim=1), torch.ones(3))
    assert public[0, 2] < 1e-5  # the row minimum always gets ~1e-6 / sum


def test_act_uses_the_router_generator_and_greedy_at_eval():
    router = WPLRouter(2, 1, 4, seed=3)
    with torch.no_grad():
        router.policy_param[0, 0] = torch.tensor([0.1, 0.6, 0.2, 0.1])
    obs = RoutingObservation(torch.zeros(256, dtype=torch.long), 0)
    router.reseed(7)
    first = router.act(obs).blocks
    router.reseed(7)
    assert torch.equal(router.act(obs).blocks, first)
    assert 0.5 < first.eq(1).float().mean() < 0.7
    greedy = router.act(obs, explore=False)
    assert greedy.blocks.eq(1).all() and torch.allclose(greedy.log_probs, torch.log(torch.tensor(0.6)))


def test_sgd_step_is_the_wpl_step():
    """One SGD step at rate eta: pi(a) += eta * delta * (1 - pi(a)) for delta > 0, eta * delta * pi(a) otherwise."""
    router = WPLRouter(1, 1, 2, per_sample_loss=True)
    with torch.no_grad():
        router.policy_param[0, 0] = torch.tensor([0.6, 0.4])
    obs = RoutingObservation(torch.zeros(2, dtype=torch.long), 0)
    batch = episodes([obs], [RoutingDecision(torch.tensor([0, 1]))], torch.tensor([1.0, -1.0]))
    eta = 0.01
    loss = router.loss(batch)
    assert torch.allclose(router.values[0, 0], torch.tensor([0.1, -0.1]))  # Q updated first: 0 + 0.1 * (G - 0)
    loss.backward()
    torch.optim.SGD(router.parameters(), lr=eta).step()
    value = 0.6 * 0.1 + 0.4 * -0.1  # V = sum_a pi(a) Q(a) = 0.02
    delta = torch.tensor([0.1 - value, -0.1 - value])  # Q(a) - V: +0.08 for block 0, -0.12 for block 1
    expected = torch.tensor([0.6 + eta * delta[0] * (1 - 0.6), 0.4 + eta * delta[1] * 0.4])
    assert torch.allclose(router.policy_param[0, 0], expected)
    router.after_update()
    assert torch.allclose(router.policy(0)[0], expected / expected.sum())


def test_per_sample_loss_sums_and_batch_mean_averages():
    obs = RoutingObservation(torch.zeros(4, dtype=torch.long), 0)
    batch = episodes([obs], [RoutingDecision(torch.tensor([0, 1, 0, 1]))], torch.tensor([1.0, -1.0, 1.0, 1.0]))
    summed = WPLRouter(1, 1, 2, per_sample_loss=True).loss(batch)
    mean = WPLRouter(1, 1, 2, per_sample_loss=False).loss(batch)
    assert torch.allclose(summed, 4 * mean)


def test_after_update_keeps_the_table_on_the_simplex():
    router = WPLRouter(2, 2, 3)
    with torch.no_grad():
        router.policy_param.add_(torch.randn(2, 2, 3, generator=torch.Generator().manual_seed(0)))
    router.after_update()
    table = router.policy_param.detach()
    assert (table >= 0).all() and (table <= 1).all()
    assert torch.allclose(table.sum(dim=-1), torch.ones(2, 2))


@pytest.mark.parametrize("parameterization", ["table", "softmax"])
def test_wpl_finds_the_better_block_of_each_task(parameterization):
    """Two tasks, two blocks, noisy +1/-1 rewards: P(+1) is 0.8 on the better block (1 for task 0, 0 for task 1), 0.3 on the other."""
    mean = torch.tensor([[-0.4, 0.6], [0.6, -0.4]])
    router = WPLRouter(2, 1, 2, seed=0, parameterization=parameterization)
    train_bandit(router, mean, steps=120, batch=32, optimizer=torch.optim.Adam(router.parameters(), lr=0.05), noise_seed=0)
    policy = router.policy(0)
    assert policy[0, 1] > 0.9 and policy[1, 0] > 0.9, policy
    assert router.routes().tolist() == [[1], [0]]


@pytest.mark.parametrize("reward", [1.0, -1.0])
def test_public_code_projection_collapses_the_policy_on_the_first_update(reward):
    """Appendix A.1: uniform start -> d log pi / d table = 5e5 -> one SGD step at lr 9e-4 freezes an extreme policy.

    Two blocks, Q = 1/2, so delta = reward - 1/2 and w = 2 - delta (reward +1) or 1 + delta (-1).
    The mse term's slope in log pi(a) is 2 (1 - w) log(1/2), times (1 - 1/M) / 1e-6 = 5e5 through
    the min-shift projection: 3.5e5 for reward +1, 1.0e6 for reward -1. The rewarded block drops to
    ~1e-9, the unrewarded one rises to 1 - 1e-9 (the sign reversal on top of the explosion).
    """
    delta = reward - 0.5
    w = 1.0 + delta if delta < 0 else 2.0 - delta
    grad_size = abs(2 * (1 - w) * math.log(0.5) * 0.5 / 1e-6)
    public = WPLRouter(1, 1, 2, seed=0, variant="public-code")
    batch = bandit_batch(public, torch.tensor([[reward, reward]]), batch=1)
    chosen = int(batch.decisions[0].blocks[0])
    public.loss(batch).backward()
    grad = public.policy_param.grad[0, 0]
    assert abs(float(grad[chosen])) == pytest.approx(grad_size, rel=0.01)
    optimizer = torch.optim.SGD(public.parameters(), lr=9e-4)
    optimizer.step()
    after = public.policy(0)[0]
    if reward > 0:
        assert float(after[chosen]) < 1e-6  # measured 3.2e-9
    else:
        assert float(after[1 - chosen]) < 1e-6  # measured 1.1e-9: the unrewarded block takes everything
    frozen = after.clone()
    train_bandit(public, torch.tensor([[1.0, -1.0]]), steps=30, batch=16, optimizer=optimizer)
    assert torch.allclose(public.policy(0)[0], frozen, atol=1e-6)  # no exploration after the first update

    clip = WPLRouter(1, 1, 2, seed=0)
    batch = bandit_batch(clip, torch.tensor([[reward, reward]]), batch=1)
    clip.loss(batch).backward()
    assert float(clip.policy_param.grad.abs().max()) <= 0.05  # measured 0.025
    torch.optim.SGD(clip.parameters(), lr=9e-4).step()
    clip.after_update()
    assert torch.allclose(clip.policy(0)[0], torch.full((2,), 0.5), atol=1e-3)


def test_public_code_target_reverses_the_sign_of_the_update():
    """Away from the uniform start (no exploding gradient), a rewarded block loses probability in public-code mode.

    Return 0.5 with Q = 0: delta = 0.5, so the public target is 1.5 * log pi(a), below log pi(a).
    """
    start = torch.tensor([0.4, 0.3, 0.2, 0.1])
    obs = RoutingObservation(torch.zeros(8, dtype=torch.long), 0)
    batch = episodes([obs], [RoutingDecision(torch.zeros(8, dtype=torch.long))], torch.full((8,), 0.5))
    moved = {}
    for projection in ("wpl", "public-code"):
        router = WPLRouter(1, 1, 4, variant=projection, per_sample_loss=projection != "wpl")  # both average over the batch
        with torch.no_grad():
            router.policy_param[0, 0] = start
            router.values.zero_()
        before = float(router.policy(0)[0, 0])
        router.loss(batch).backward()
        torch.optim.SGD(router.parameters(), lr=1e-2).step()
        router.after_update()
        moved[projection] = float(router.policy(0)[0, 0]) - before
    assert moved["wpl"] > 5e-5  # measured +1.1e-4 (Q(a) = 0.05 after one value update, so delta is small)
    assert moved["public-code"] < -1e-3  # measured -1.9e-2


def test_public_code_wpl_abandons_the_rewarded_arm_and_corrected_wpl_finds_it():
    """4-armed bandit rewarding arm 0 (+1, others -1), three seeds each."""
    public, corrected = [], []
    for seed in range(3):
        router = WPLRouter(1, 1, 4, seed=seed, variant="public-code")
        train_bandit(router, FOUR_ARMS, steps=60, batch=32, optimizer=torch.optim.SGD(router.parameters(), lr=9e-4))
        public.append(float(router.policy(0)[0, 0]))
        router = WPLRouter(1, 1, 4, seed=seed)
        train_bandit(router, FOUR_ARMS, steps=60, batch=32, optimizer=torch.optim.Adam(router.parameters(), lr=0.02))
        corrected.append(float(router.policy(0)[0, 0]))
    assert all(p < 1e-3 for p in public), public  # measured: 1.1e-9 in 3 of 3 seeds (1.4e-6 with Adam)
    assert all(p > 0.95 for p in corrected), corrected  # measured: 1.000 in 3 of 3 seeds


def hand_made_batch() -> EpisodeBatch:
    """One task, two routed layers, three episodes: blocks and final rewards chosen by hand."""
    obs = [RoutingObservation(torch.zeros(3, dtype=torch.long), d) for d in range(2)]
    decisions = [RoutingDecision(torch.tensor([0, 2, 0])), RoutingDecision(torch.tensor([1, 1, 2]))]
    return episodes(obs, decisions, torch.tensor([1.0, -1.0, 1.0]))


TABLE = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]]])
VALUES = torch.tensor([[[0.2, -0.4, 0.1], [0.3, 0.5, -0.6]]])


def expected_public_loss(probs: torch.Tensor) -> torch.Tensor:
    """The shipped WPL._loss per step written out by hand: mse on log pi towards w log pi, plus mse of Q."""
    blocks = [[0, 2, 0], [1, 1, 2]]
    returns = [1.0, -1.0, 1.0]
    per_episode = torch.zeros(3)
    for i in range(3):
        for d in range(2):
            a = blocks[d][i]
            log_pi = math.log(max(float(probs[d, a]), torch.finfo(torch.float32).eps))
            q = float(VALUES[0, d, a])
            delta = returns[i] - q
            w = 1 + delta if delta < 0 else 2 - delta
            per_episode[i] += (log_pi - w * log_pi) ** 2 + (q - returns[i]) ** 2
    return per_episode


def test_public_code_loss_matches_the_shipped_formula_on_a_hand_made_batch():
    """cd4e9af: min-shift projection, Categorical log-probs, mse terms summed per episode, mean over the batch."""
    router = WPLRouter(1, 2, 3, variant="public-code")
    with torch.no_grad():
        router.policy_param.copy_(TABLE)
        router.values.copy_(VALUES)
    shifted = TABLE[0] - TABLE[0].min(dim=-1, keepdim=True).values + 1e-6
    probs = shifted / shifted.sum(dim=-1, keepdim=True)
    loss = router.loss(hand_made_batch())
    assert float(loss.detach()) == pytest.approx(float(expected_public_loss(probs).mean()), rel=1e-5)


def test_corrected_public_code_loss_clips_and_sums_over_the_batch():
    """The paper's minimal fix: Algorithm 3's clip projection and no mean over the batch; the loss is otherwise the shipped one."""
    router = WPLRouter(1, 2, 3, variant="public-code-corrected")
    table = TABLE.clone()
    table[0, 1, 0] = -0.2  # clipped to 0: the Categorical clamp at float32 epsilon takes over
    with torch.no_grad():
        router.policy_param.copy_(table)
        router.values.copy_(VALUES)
    clipped = table[0].clamp(0, 1)
    probs = clipped / clipped.sum(dim=-1, keepdim=True)
    loss = router.loss(hand_made_batch())
    assert float(loss.detach()) == pytest.approx(float(expected_public_loss(probs).sum()), rel=1e-5)
    public = WPLRouter(1, 2, 3, variant="public-code")
    with torch.no_grad():
        public.policy_param.copy_(table)
        public.values.copy_(VALUES)
    assert float(public.loss(hand_made_batch()).detach()) != pytest.approx(float(loss.detach()))


@pytest.mark.parametrize("update", ["sampled", "all-actions"])
def test_wpl_step_on_a_hand_made_batch(update):
    """Minus the gradient of the loss is the WPL step: delta(b) = Q(b) - sum pi Q, weighted by 1 - pi(b)
    (delta > 0) or pi(b); for the sampled block of each visit only, or for every block of each visited state."""
    router = WPLRouter(1, 2, 3, update=update, value_rate=1.0)
    with torch.no_grad():
        router.policy_param.copy_(TABLE)
    batch = hand_made_batch()
    router.loss(batch).backward()
    q = router.values[0]  # after the value update (rate 1: the batch mean return of each visited block)
    assert q.tolist() == [[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]]
    pi = TABLE[0]
    delta = q - (pi * q).sum(dim=-1, keepdim=True)
    step = delta * torch.where(delta > 0, 1 - pi, pi)
    if update == "all-actions":
        expected = 3 * step  # each layer's state is visited by all three episodes
    else:
        counts = torch.tensor([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])  # visits of each block
        expected = counts * step
    assert torch.allclose(-router.policy_param.grad[0], expected, atol=1e-6)


def test_all_actions_wpl_learns_the_bandit():
    corrected = []
    for seed in range(3):
        router = WPLRouter(1, 1, 4, seed=seed, update="all-actions")
        train_bandit(router, FOUR_ARMS, steps=60, batch=32, optimizer=torch.optim.Adam(router.parameters(), lr=0.02))
        corrected.append(float(router.policy(0)[0, 0]))
    assert all(p > 0.95 for p in corrected), corrected


def test_corrected_public_code_with_a_softmax_policy_layer_on_a_hand_made_batch():
    """The "separate optimizers" row's learner: the corrected loss with log pi from softmax(logits)."""
    router = WPLRouter(1, 2, 3, variant="public-code-corrected", parameterization="softmax")
    with torch.no_grad():
        router.policy_param.copy_(TABLE)
        router.values.copy_(VALUES)
    loss = router.loss(hand_made_batch())
    assert float(loss.detach()) == pytest.approx(float(expected_public_loss(torch.softmax(TABLE[0], dim=-1)).sum()), rel=1e-5)


def test_at_the_suites_settings_the_corrected_public_code_still_misses_the_rewarded_arm():
    """SGD at lr 1e-2 and batches of 128 (the Table 2 suite's public-code and corrected rows), 4-armed
    bandit rewarding arm 0, 20 steps, seeds 0-2: the shipped code kills the arm (probability 0); the
    corrected code no longer explodes, but its log-pi target still pushes the rewarded arm down (0.15,
    0.39 and 0.0 measured; one seed collapses onto an unrewarded arm); this project's WPL finds it (0.92-0.93)."""
    final = {"public-code": [], "public-code-corrected": [], "wpl": []}
    for seed in range(3):
        for variant in final:
            router = WPLRouter(1, 1, 4, seed=seed, variant=variant)
            train_bandit(router, FOUR_ARMS, steps=20, batch=128, optimizer=torch.optim.SGD(router.parameters(), lr=1e-2))
            final[variant].append(float(router.policy(0)[0, 0]))
    assert all(p < 1e-6 for p in final["public-code"]), final
    assert all(p < 0.5 for p in final["public-code-corrected"]), final
    assert all(p > 0.9 for p in final["wpl"]), final


def test_every_option_value_names_a_learner_form_or_update_rule():
    """The options' types are what the command line parses; each value must select exactly one class or rule."""
    from routing_rl.agents._wpl_parts import POLICY_FORMS, UPDATE_RULES
    from routing_rl.agents.wpl import WPL_LEARNERS

    types = {k: o.annotation for k, o in WPLRouter.options().items()}
    assert typing.get_args(types["variant"]) == tuple(WPL_LEARNERS)
    assert typing.get_args(types["parameterization"]) == tuple(POLICY_FORMS)
    assert typing.get_args(types["update"]) == tuple(UPDATE_RULES)
    for variant, learner in WPL_LEARNERS.items():
        assert type(WPLRouter(1, 1, 2, variant=variant).learner) is learner

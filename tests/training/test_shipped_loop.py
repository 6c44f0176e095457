"""The public routing code's learning problem and training loop, piece by piece, on hand-made cases:
its gradient clip, the epochs in which its optimizers step, its rate schedule, its module loss, its
collaboration reward, its loss reduction and the corrected learner without an in-place projection."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from routing_rl.agents.wpl import WPLRouter
from routing_rl.cli import main
from routing_rl.core.contracts import RoutingDecision, RoutingObservation
from routing_rl.core.objectives import ClassificationObjective, mse_one_hot
from routing_rl.envs import BatchedRoutingEnv
from routing_rl.envs.collaboration import CollaborationReward
from routing_rl.network import build_network
from routing_rl.training import RunConfig, Trainer
from routing_rl.training.setup.composition import compose
from routing_rl.training.loop.clipping import clip_weight_gradients
from routing_rl.training.loop.trainer import set_epoch_learning_rates


def grads(*values: list[float]) -> list[torch.nn.Parameter]:
    params = []
    for v in values:
        p = torch.nn.Parameter(torch.zeros(len(v)))
        p.grad = torch.tensor(v)
        params.append(p)
    return params


def test_public_code_clip_lists_each_weight_twice():
    """clip_grad_norm_(params + params, 40): the norm is sqrt(2) * 13 and each gradient is scaled twice."""
    params = grads([3.0, 4.0], [12.0])  # ||g|| = 13
    total = clip_weight_gradients(params, 10.0, "public-code")
    coef = 10.0 / (13.0 * math.sqrt(2) + 1e-6)
    assert float(total) == pytest.approx(13.0 * math.sqrt(2))
    assert params[0].grad.tolist() == pytest.approx([3.0 * coef**2, 4.0 * coef**2], rel=1e-6)
    assert params[1].grad.tolist() == pytest.approx([12.0 * coef**2], rel=1e-6)
    plain = grads([3.0, 4.0], [12.0])
    clip_weight_gradients(plain, 10.0, "norm")
    assert plain[1].grad.tolist() == pytest.approx([12.0 * 10.0 / (13.0 + 1e-6)], rel=1e-6)


@pytest.mark.parametrize(("norm", "clipped"), [(28.0, False), (29.0, True)])
def test_public_code_clip_starts_at_the_value_over_sqrt_two(norm, clipped):
    params = grads([norm])
    clip_weight_gradients(params, 40.0, "public-code")
    expected = norm * (40.0 / (norm * math.sqrt(2) + 1e-6)) ** 2 if clipped else norm
    assert float(params[0].grad[0]) == pytest.approx(expected, rel=1e-6)
    untouched = grads([norm])
    clip_weight_gradients(untouched, 40.0, "norm")
    assert float(untouched[0].grad[0]) == norm  # below 40: the ordinary clip leaves it


def test_per_milestone_factors_give_the_later_public_schedule():
    """{0: 3e-3, 5: 1e-3, 10: 3e-4} (0-based), the router at 0.3x: 9e-4, 3e-4, 9e-5."""
    weights, router = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [weights], "lr": 3e-3}, {"params": [router], "lr": 9e-4}])
    rates = {}
    for epoch in (1, 5, 6, 10, 11, 50):
        set_epoch_learning_rates([optimizer], epoch, [5, 10], [1 / 3, 0.3])
        rates[epoch] = [g["lr"] for g in optimizer.param_groups]
    assert rates[1] == rates[5] == [3e-3, 9e-4]
    assert rates[6] == pytest.approx([1e-3, 3e-4]) and rates[10] == rates[6]
    assert rates[11] == pytest.approx([3e-4, 9e-5]) and rates[50] == rates[11]
    with pytest.raises(ValueError, match="--lr-decay gives 1 factors for 2 --lr-milestones"):
        RunConfig(lr_milestones=[5, 10], lr_decay=[0.5]).check()


def test_optimizers_step_only_in_the_step_epochs(tmp_path):
    config = RunConfig(agent="fixed-random", env="synthetic-groups", epochs=3, batch_size=32, threads=1, step_epochs=[1, 3],
                       env_options={"num_tasks": 2, "train_per_task": 64, "test_per_task": 16}, logdir=str(tmp_path))  # fmt: skip
    trainer = Trainer(parts := compose(config), parts.load_data())
    snapshots = [torch.cat([p.detach().flatten().clone() for p in trainer.learner.weight_parameters])]
    for epoch in (1, 2, 3):
        trainer.train_epoch(epoch)
        snapshots.append(torch.cat([p.detach().flatten().clone() for p in trainer.learner.weight_parameters]))
    assert not torch.equal(snapshots[0], snapshots[1])  # epoch 1 steps
    assert torch.equal(snapshots[1], snapshots[2])  # epoch 2 plays its batches but steps nothing
    assert not torch.equal(snapshots[2], snapshots[3])  # epoch 3 steps again
    with pytest.raises(ValueError, match="--step-epochs must be distinct epochs"):
        RunConfig(step_epochs=[0]).check()
    with pytest.raises(ValueError, match="in increasing order, got \\[6, 1\\]"):
        RunConfig(step_epochs=[6, 1]).check()


def test_mse_one_hot_is_the_summed_squared_error_to_one_hot_targets():
    outputs = torch.tensor([[0.5, -0.5], [2.0, 1.0]])
    targets = torch.tensor([0, 1])
    assert mse_one_hot(outputs, targets).tolist() == pytest.approx([0.25 + 0.25, 4.0 + 0.0])
    objective = ClassificationObjective("neg-loss", "mse-one-hot")
    loss = objective.loss(outputs, targets, targets)
    assert objective.reward(outputs, targets, targets, loss).tolist() == pytest.approx([-0.5, -4.0])  # NegLossReward: -SSE


def test_public_code_collaboration_counts_the_current_batch_and_squares_rho():
    reward = CollaborationReward(rho=0.3, window=4, form="public-code", layers=3)
    obs = RoutingObservation(torch.zeros(3, dtype=torch.long), depth=0)
    first = reward(obs, RoutingDecision(torch.tensor([0, 0, 1])))
    torch.testing.assert_close(first, 0.09 * torch.tensor([2 / 3, 2 / 3, 1 / 3]) / 3)
    second = reward(obs, RoutingDecision(torch.tensor([1, 2, 1])))  # window: 0, 1, 1, 2, 1 -> last 4: 1, 1, 2, 1
    torch.testing.assert_close(second, 0.09 * torch.tensor([3 / 4, 1 / 4, 3 / 4]) / 3)
    assert reward.scaled_by_final and not CollaborationReward(0.3).scaled_by_final


def test_env_scales_the_public_collaboration_by_the_final_reward_magnitude():
    """Loss._get_rl_loss_tuple_map: r_t = rho^2 f_t / L * |R| for every step, plus R at the last."""
    net = build_network((4,), num_tasks=1, num_classes=2, routed="all", blocks=2, seed=0)
    collab = CollaborationReward(rho=0.3, form="public-code", layers=net.num_routed)
    env = BatchedRoutingEnv(net, step_rewards=[collab], objective=ClassificationObjective("neg-loss", "mse-one-hot"))
    x, y, t = torch.randn(4, 4), torch.tensor([0, 1, 0, 1]), torch.zeros(4, dtype=torch.long)
    blocks = [torch.tensor([0, 0, 1, 0]), torch.tensor([1, 1, 1, 0]), torch.tensor([0, 1, 0, 1])]
    ep = env.run(x, y, t, lambda obs: RoutingDecision(blocks[obs.depth]))
    magnitude = ep.final_reward.abs()
    for depth, chosen in enumerate(blocks):
        share = torch.tensor([float((chosen == c).sum()) / 4 for c in chosen])
        torch.testing.assert_close(ep.step_rewards[depth], 0.09 * share / 3 * magnitude)
    returns = ep.returns(discount=1.0)  # the final reward comes after the last step
    torch.testing.assert_close(returns[2], ep.step_rewards[2] + ep.final_reward)
    assert bool((ep.final_reward <= 0).all())  # minus a squared error


def test_loss_reduction_sum_is_the_sum_over_the_batch(tmp_path):
    options = dict(agent="fixed-random", env="synthetic-groups", epochs=1, batch_size=16, threads=1,
                   env_options={"num_tasks": 2, "train_per_task": 32, "test_per_task": 8})  # fmt: skip
    losses = {}
    for reduction in ("mean", "sum"):
        trainer = Trainer(parts := compose(RunConfig(**options, loss_reduction=reduction, logdir=str(tmp_path / reduction))), parts.load_data())
        trainer.learner.begin_epoch(1, 0)
        rows = next(iter(trainer.data.train.batches(16, torch.Generator().manual_seed(0), shuffle=True)))
        batch = trainer.family.gather(trainer.data.train, rows, trainer.device, torch.Generator().manual_seed(0))
        losses[reduction] = float(trainer.learner.train_step(batch, 1).task_loss.detach())
    assert losses["sum"] == pytest.approx(16 * losses["mean"], rel=1e-5)


def test_corrected_learner_projects_only_in_the_forward_pass():
    table = torch.tensor([[[1.2, -0.1, 0.3]]])
    batch_obs = [RoutingObservation(torch.zeros(2, dtype=torch.long), 0)]
    from routing_rl.core.contracts import EpisodeBatch

    episodes = EpisodeBatch(batch_obs, [RoutingDecision(torch.tensor([0, 2]))], [torch.zeros(2)], torch.tensor([1.0, -1.0]),
                            torch.zeros(2), torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))  # fmt: skip
    shipped_fix = WPLRouter(1, 1, 3, variant="public-code-corrected")
    extra = WPLRouter(1, 1, 3, variant="public-code-corrected", in_place_projection=True)
    for router in (shipped_fix, extra):
        with torch.no_grad():
            router.policy_param.copy_(table)
        router.loss(episodes)
        router.after_update()
    assert torch.equal(shipped_fix.policy_param.detach(), table)  # left as it is, read through clip(pi) / sum
    assert extra.policy_param.detach()[0, 0].tolist() == pytest.approx([1 / 1.3, 0.0, 0.3 / 1.3])
    torch.testing.assert_close(shipped_fix.probabilities(), extra.probabilities())
    with pytest.raises(Exception, match="in_place_projection applies to variant=public-code-corrected"):
        WPLRouter(1, 1, 3, variant="public-code", in_place_projection=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr-decay", "0.5,x"], "--lr-decay"),
        (["--lr-decay", "2"], "--lr-decay must be in (0, 1]"),
        (["--lr-milestones", "10,5", "--lr-decay", "0.5,0.2"], "--lr-milestones must be in increasing order"),
        (["--step-epochs", "0"], "--step-epochs"),
        (["--lr-milestones", "5", "--lr-decay", "0.5,0.5"], "--lr-decay gives 2 factors for 1 --lr-milestones"),
        (["--agent", "mmoe", "--env", "multilabel-synthetic", "--module-loss", "mse-one-hot"], "only appl"),
        (["--env", "multilabel-synthetic", "--module-loss", "mse-one-hot"], "--module-loss mse-one-hot applies to single-label suites"),
    ],
)
def test_shipped_loop_options_refuse_bad_values_in_one_line(args, message, tmp_path):
    result = CliRunner().invoke(main, ["run", *args, "--epochs", "1", "--logdir", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output


def test_milestones_out_of_order_are_refused_alike_by_the_command_line_and_suite_files(tmp_path):
    """Each milestone pairs with its factor: sorting one list and not the other would change the
    schedule, so neither the command line nor a suite file reorders them; both refuse."""
    from routing_rl.suites import SuiteError, load_suite_file

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "s"\nseeds = [0]\n[runs.a]\nagent = "wpl"\nlr_milestones = [10, 5]\nlr_decay = [0.5, 0.2]\n')
    with pytest.raises(SuiteError, match="--lr-milestones must be in increasing order"):
        load_suite_file(suite)

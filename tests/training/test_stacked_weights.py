"""Stacked weights: a population of FC routed networks trains one ``[P, ...]`` tensor per layer.

The population tests (``test_population.py``) check members against their runs alone end to end;
here the parts are checked on hand-made gradients: the masked Adam step against torch's Adam on
each block's own parameters (a block without samples is not stepped and gets no state), each
member's gradient clipping against the trainer's, the path being the one populations of FC
networks take, and the members that cannot take it named with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from routing_rl.network.routed_layer import linear_kind
from routing_rl.network.stacked_population import layer_blocks
from routing_rl.training.loop.clipping import clip_weight_gradients
from routing_rl.training.loop.population import Population
from routing_rl.training.loop.stacked_weights import StackedWeights, stacked_weights_problem, weight_group
from tests.training.test_population import float64, relative, tensors, trainer  # noqa: F401  (float64: a fixture)


def linears(trainer, layer: int) -> list[torch.nn.Linear]:
    """The member's linear blocks of stacked layer ``layer``, in block order."""
    return list(linear_kind(layer_blocks(trainer.learner.network)[layer])[0])


def flat_part(weights: StackedWeights, flat: torch.Tensor, layer: int, name: str) -> torch.Tensor:
    """Stacked layer ``layer``'s ``name`` (weight or bias) part of a flat buffer, shaped as that tensor."""
    view = weights.views[layer][name][1]
    offset = (view.data_ptr() - weights.grad.data_ptr()) // weights.grad.element_size()
    return flat[offset : offset + view.numel()].view(view.shape)


def hand_gradients(weights: StackedWeights, reference: list, grad: torch.Tensor, used: list[torch.Tensor]) -> None:
    """The used blocks' parts of ``grad`` as the stacked gradient (zero elsewhere, as no sample
    reached them) and as the reference members' own blocks' ``.grad`` (None elsewhere, as torch leaves them)."""
    weights.zero_grad()
    for i, (layer, mask) in enumerate(zip(weights.network.stacked, used)):
        for p, member in enumerate(reference):
            for b, linear in enumerate(linears(member, i)):
                for name, cut in (("weight", layer.weight_of), ("bias", layer.bias_of)):
                    part = cut(flat_part(weights, grad, i, name), p, b)
                    if bool(mask[p, b]):
                        cut(weights.views[i][name][1], p, b).copy_(part)
                    getattr(linear, name).grad = part.clone() if bool(mask[p, b]) else None


def test_the_masked_adam_step_is_torchs_adam_on_each_blocks_own_parameters(tmp_path, float64):
    """Three steps of random gradients on random blocks (member 0 never uses block 0 of the second
    layer), stacked and by each member's own optimizer on its own blocks: the same weights, moments
    and step counts, and no state for the block that never stepped."""
    options = {"agent": "wpl", "lr": 0.01}
    stacked = [trainer(tmp_path / "a", seed, **options) for seed in (0, 1, 2)]
    reference = [trainer(tmp_path / "b", seed, **options) for seed in (0, 1, 2)]
    never = linears(stacked[0], 1)[0]
    before = never.weight.detach().clone()
    weights = StackedWeights(stacked)
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        grad = torch.randn(weights.grad.shape, generator=generator)
        used = [torch.rand(len(stacked), layer.blocks, generator=generator) < 0.7 for layer in weights.network.stacked]
        used[1][0, 0] = False
        hand_gradients(weights, reference, grad, used)
        weights.step(used)
        for member in reference:
            weight_group(member)[0].step()
    weights.write_back()
    for a, b in zip(reference, stacked):
        mine = dict(tensors(b.learner.network.state_dict()))
        for path, tensor in tensors(a.learner.network.state_dict()):
            assert relative(tensor, mine[path]) <= 1e-12, path
        state_a, state_b = (weight_group(t)[0].state_dict()["state"] for t in (a, b))
        assert set(state_a) == set(state_b)
        for key in state_a:
            for name in ("step", "exp_avg", "exp_avg_sq"):
                assert relative(state_a[key][name], state_b[key][name]) <= 1e-12, (key, name)
    assert all(p not in weight_group(stacked[0])[0].state for p in never.parameters())
    assert torch.equal(never.weight, before)


def test_each_member_clips_its_own_gradients_as_the_trainer_does(tmp_path, float64):
    choices = [{"grad_clip": 0.5}, {"grad_clip": 0.5, "grad_clip_mode": "public-code"}, {}]
    stacked = [trainer(tmp_path / "a", seed, agent="wpl", **c) for seed, c in enumerate(choices)]
    reference = [trainer(tmp_path / "b", seed, agent="wpl", **c) for seed, c in enumerate(choices)]
    weights = StackedWeights(stacked)
    used = [torch.ones(len(stacked), layer.blocks, dtype=torch.bool) for layer in weights.network.stacked]
    hand_gradients(weights, reference, 3 * torch.randn(weights.grad.shape, generator=torch.Generator().manual_seed(1)), used)
    unclipped = weights.grad.clone()
    weights.clip_gradients()
    for member, c in zip(reference, choices):
        if c:
            clip_weight_gradients(member.learner.weight_parameters, c["grad_clip"], c.get("grad_clip_mode", "norm"))
    for i, layer in enumerate(weights.network.stacked):
        for p, member in enumerate(reference):
            for b, linear in enumerate(linears(member, i)):
                assert relative(linear.weight.grad, layer.weight_of(weights.views[i]["weight"][1], p, b)) <= 1e-12
                assert relative(linear.bias.grad, layer.bias_of(weights.views[i]["bias"][1], p, b)) <= 1e-12
    scale = (weights.grad / unclipped)[weights._member_of == 0]
    assert float(scale.max()) < 0.1  # the norm was far over 0.5: clipping did act
    assert torch.equal(weights.grad[weights._member_of == 2], unclipped[weights._member_of == 2])


@pytest.mark.parametrize("options", [{"agent": "wpl"}, {"agent": "hard-concrete"}, {"agent": "shared-bottom", "routed": "none"},
                                     {"agent": "no-sharing", "routed": "all"}])  # fmt: skip
def test_populations_of_fc_networks_train_stacked_weights(tmp_path, float64, monkeypatch, options):
    """Every training step of a population of FC networks is a stacked one; ``stack_weights=False``
    keeps the members' own modules, to the same numbers."""
    calls = []
    step = StackedWeights.step
    monkeypatch.setattr(StackedWeights, "step", lambda self, used: (calls.append(len(used)), step(self, used)))
    stacked = [trainer(tmp_path / "a", seed, **dict(options)) for seed in (0, 1)]
    assert stacked_weights_problem(stacked) is None
    Population(stacked).fit()
    batches = max(len(range(0, len(t.data.train), t.config.batch_size)) for t in stacked)
    assert len(calls) == batches * stacked[0].config.epochs
    own = [trainer(tmp_path / "b", seed, **dict(options)) for seed in (0, 1)]
    Population(own, stack_weights=False).fit()
    assert len(calls) == batches * stacked[0].config.epochs
    for a, b in zip(own, stacked):
        for x, y in zip(a.results["epochs"], b.results["epochs"], strict=True):
            assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-9)


def test_members_that_cannot_stack_their_weights_are_named_with_the_reason(tmp_path, fmnist_writer):
    fmnist_writer(tmp_path / "data", per_class=4, seed=1)
    conv = [trainer(tmp_path / "conv", s, env="fmnist-mtl", data_dir=tmp_path / "data", agent="wpl", routed="conv3,fc", blocks=3,
                    channels_last=False, batch_size=16) for s in (0, 1)]  # fmt: skip
    assert stacked_weights_problem(conv) == "their layers are convolutions"
    sgd = [trainer(tmp_path / "sgd", s, agent="wpl", optimizer="sgd") for s in (0, 1)]
    assert stacked_weights_problem(sgd) == "the stacked step supports plain Adam only"
    mixed = [trainer(tmp_path / "clip", 0, agent="wpl"), trainer(tmp_path / "clip", 1, agent="wpl", optimizer="sgd")]
    assert "Adam" in stacked_weights_problem(mixed)

"""Hard concrete gates checked against the formulas of SNR / Louizos et al. (2017), not against themselves."""

from __future__ import annotations

import math

import pytest
import torch

from routing_rl.network.hard_concrete import HardConcreteGate

LN11 = math.log(11.0)


def reference_z(u: float, log_alpha: float, beta: float = 2 / 3, gamma: float = -0.1, zeta: float = 1.1) -> float:
    """The paper's sampling formula in plain Python floats."""
    s = 1.0 / (1.0 + math.exp(-((math.log(u) - math.log(1.0 - u) + log_alpha) / beta)))
    return min(1.0, max(0.0, s * (zeta - gamma) + gamma))


def gate_with(values: list[float], **kwargs: float) -> HardConcreteGate:
    gate = HardConcreteGate(len(values), **kwargs)
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor(values))
    return gate


def test_transform_matches_the_paper_formula() -> None:
    u = [0.5, 0.9, 0.2, 0.3, 0.7]
    log_alpha = [0.0, 1.0, -0.5, 0.2, -1.3]
    gate = gate_with(log_alpha)
    z = gate.transform(torch.tensor(u))
    expected = [reference_z(a, b) for a, b in zip(u, log_alpha)]
    assert torch.allclose(z, torch.tensor(expected), atol=1e-6)
    # hand-computed: u = 0.5, log_alpha = 0 -> s = 0.5 -> s_bar = 0.5 * 1.2 - 0.1 = 0.5
    assert z[0].item() == pytest.approx(0.5, abs=1e-7)
    # u = 0.3, log_alpha = 0.2: (ln(3/7) + 0.2) / (2/3) = -0.97095 -> s = 0.27469 -> 0.22963
    assert z[3].item() == pytest.approx(0.22963, abs=1e-4)
    assert z[1].item() == 1.0 and z[2].item() == 0.0


def test_beta_divides_noise_and_log_alpha_together() -> None:
    gate = gate_with([1.0], beta=0.5, gamma=-0.5, zeta=1.5)
    z = gate.transform(torch.tensor([0.3])).item()
    # (ln(0.3/0.7) + 1) / 0.5 = 0.30535 -> s = 0.57575 -> s_bar = 0.57575 * 2 - 0.5 = 0.65150
    assert z == pytest.approx(0.65150, abs=1e-4)
    assert z == pytest.approx(reference_z(0.3, 1.0, 0.5, -0.5, 1.5), abs=1e-6)


def test_samples_lie_in_unit_interval_with_mass_at_exact_0_and_1() -> None:
    gate = gate_with([0.0] * 200_000)
    z = gate.sample(generator=torch.Generator().manual_seed(0)).detach()
    assert float(z.min()) == 0.0 and float(z.max()) == 1.0
    # P(z = 0) = P(z = 1) = 1 - sigmoid(beta * ln 11) = 0.1682 at log_alpha = 0 (symmetric)
    expected = 1.0 - torch.sigmoid(torch.tensor(2 / 3 * LN11)).item()
    assert float((z == 0).float().mean()) == pytest.approx(expected, abs=0.005)
    assert float((z == 1).float().mean()) == pytest.approx(expected, abs=0.005)
    assert bool(((z > 0) & (z < 1)).any())


def test_expected_l0_is_the_sigmoid_probability_of_a_nonzero_gate() -> None:
    gate = gate_with([0.0])
    # sigmoid(0 - (2/3) ln(0.1 / 1.1)) = sigmoid(1.5986) = 0.8318
    assert 2 / 3 * math.log(1.1 / 0.1) == pytest.approx(1.5986, abs=1e-4)
    assert gate.expected_l0().item() == pytest.approx(0.8318, abs=1e-4)
    values = [-2.0, -0.5, 0.0, 1.0, 2.5]
    gate = gate_with(values)
    expected = sum(1 / (1 + math.exp(-(a + 2 / 3 * LN11))) for a in values)
    assert gate.expected_l0().item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("log_alpha", [-2.0, 0.0, 1.5])
def test_expected_l0_agrees_with_sampled_nonzero_frequency(log_alpha: float) -> None:
    gate = gate_with([log_alpha] * 100_000)
    z = gate.sample(generator=torch.Generator().manual_seed(1)).detach()
    assert float((z != 0).float().mean()) == pytest.approx(gate.prob_nonzero()[0].item(), abs=0.006)


def test_serving_estimator_thresholds_at_plus_minus_ln11() -> None:
    gate = gate_with([-LN11 - 1e-3, -LN11 + 1e-2, 0.0, LN11 - 1e-2, LN11 + 1e-3, -10.0, 10.0])
    gate.eval()
    z_hat = gate()
    assert z_hat[0].item() == 0.0 and z_hat[5].item() == 0.0
    assert 0.0 < z_hat[1].item() < 0.01
    assert z_hat[2].item() == pytest.approx(0.5, abs=1e-6)  # sigmoid(0) * 1.2 - 0.1
    assert 0.99 < z_hat[3].item() < 1.0
    assert z_hat[4].item() == 1.0 and z_hat[6].item() == 1.0
    closed, opened = gate.log_alpha_thresholds()
    assert closed == pytest.approx(-LN11) and opened == pytest.approx(LN11)
    assert gate.serving_mask().tolist() == [False, True, True, True, True, False, True]


def test_train_mode_samples_and_eval_mode_is_deterministic() -> None:
    gate = gate_with([0.0] * 50)
    gate.train()
    a, b = gate(), gate()
    assert not torch.equal(a, b), "training draws fresh noise on every call"
    gate.eval()
    assert torch.equal(gate(), gate())
    assert gate(batch_size=3).shape == (3, 50)


def test_one_sample_per_call_or_one_per_example() -> None:
    gate = HardConcreteGate((2, 3), log_alpha_init=0.0)
    assert gate().shape == (2, 3)
    per_example = gate(batch_size=64)
    assert per_example.shape == (64, 2, 3)
    assert not torch.equal(per_example[0], per_example[1])


def test_noise_is_not_a_parameter_and_generator_reproduces_samples() -> None:
    gate = HardConcreteGate((3, 4), log_alpha_init=0.0)
    assert [name for name, _ in gate.named_parameters()] == ["log_alpha"]
    assert list(gate.buffers()) == []
    a = gate.sample(generator=torch.Generator().manual_seed(7))
    b = gate.sample(generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    seeded = HardConcreteGate((3, 4), log_alpha_init=0.0, generator=torch.Generator().manual_seed(3))
    again = HardConcreteGate((3, 4), log_alpha_init=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(seeded(), again())


def test_gradients_reach_log_alpha() -> None:
    gate = gate_with([0.0] * 1000)
    gate.sample(generator=torch.Generator().manual_seed(0)).sum().backward()
    grad = gate.log_alpha.grad
    assert grad is not None and bool((grad > 0).any())
    # clamped samples (exactly 0 or 1) get no gradient, the others a positive one
    gate.log_alpha.grad = None
    gate.expected_l0().backward()
    p = torch.sigmoid(torch.tensor(2 / 3 * LN11))
    assert torch.allclose(gate.log_alpha.grad, (p * (1 - p)).expand(1000), atol=1e-6)


def test_strong_l0_penalty_alone_closes_every_gate_exactly() -> None:
    gate = HardConcreteGate((4, 5))  # starts open (log_alpha = 3)
    gate.eval()
    assert bool((gate() == 1).all())
    gate.train()
    opt = torch.optim.Adam(gate.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        (10.0 * gate.expected_l0()).backward()
        opt.step()
    gate.eval()
    assert bool((gate() == 0).all())
    assert not gate.serving_mask().any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 0.2}, "gamma"),
        ({"zeta": 1.0}, "zeta"),
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
    ],
)
def test_invalid_hyper_parameters_are_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HardConcreteGate(3, **kwargs)


def test_paper_search_range_is_accepted() -> None:
    for beta, gamma, zeta in [(0.5, -1.0, 2.0), (0.9, -0.1, 1.1)]:
        gate = HardConcreteGate(2, beta=beta, gamma=gamma, zeta=zeta)
        z = gate.sample()
        assert bool(((z >= 0) & (z <= 1)).all())

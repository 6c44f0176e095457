"""Hard concrete gates: binary coding variables ``z`` that gradient descent can learn.

SNR (Ma et al., "SNR: Sub-Network Routing for Flexible Parameter Sharing in Multi-task
Learning", section "Learning the Architecture with Latent Variables") decides which sub-network
connections exist with binary coding variables ``z``. They are relaxed with the hard concrete
distribution of Louizos, Welling & Kingma (2017, "Learning Sparse Neural Networks through L0
Regularization") so that ``log(alpha)`` is trained by back-propagation together with the weights:

* training sample (reparameterisation trick, ``u`` is parameter-free noise)::

      u ~ U(0, 1)
      s = sigmoid((log(u) - log(1 - u) + log(alpha)) / beta)
      s_bar = s * (zeta - gamma) + gamma
      z = min(1, max(0, s_bar))

* expected L0 norm (the sparsity penalty, probability that each gate is non-zero)::

      E ||z||_0 = sum_j 1 - Q(s_j < 0) = sum_j sigmoid(log(alpha_j) - beta * log(-gamma / zeta))

* serving estimator (deterministic; exact zeros prune connections)::

      z_hat = min(1, max(0, sigmoid(log(alpha)) * (zeta - gamma) + gamma))

Because the stretched interval ``(gamma, zeta)`` sticks out of ``[0, 1]`` on both sides, the
clamp puts non-zero probability mass on exactly 0 and exactly 1. With the defaults
(beta = 2/3, gamma = -0.1, zeta = 1.1) ``z_hat`` is exactly 0 for ``log_alpha <= -ln 11`` and
exactly 1 for ``log_alpha >= ln 11``.

Known pitfalls that this module avoids (and its tests check): ``u`` is fresh noise each call and
never a parameter; the noise *and* ``log(alpha)`` are divided by ``beta`` together; the L0 term
goes through the sigmoid (it is a probability, not ``log(alpha)`` itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

DEFAULT_BETA = 2.0 / 3.0
DEFAULT_GAMMA = -0.1
DEFAULT_ZETA = 1.1

DEFAULT_LOG_ALPHA_INIT = 3.0
"""Initial ``log(alpha)``: gates start open.

At 3.0 the serving estimator is exactly 1 (3.0 > ln 11 = 2.398), so an untrained SNR model is
the fully connected (shared-bottom-like) network, and a training sample is exactly 1 with
probability ``1 - sigmoid(beta * ln 11 - 3.0) = 0.80`` while the other 20% of samples fall in the
open interval where ``log(alpha)`` receives gradient. Starting half-open (``log(alpha) = 0``)
would instead drop 17% of the connections of every mini-batch from the first step on.
"""


class HardConcreteGate(nn.Module):
    """A tensor of hard concrete coding variables with a learnable ``log_alpha`` of a given shape.

    ``train()`` mode samples (one ``u`` per call, i.e. per mini-batch, as SNR does; pass
    ``batch_size`` for one sample per example); ``eval()`` mode returns the deterministic serving
    estimator ``z_hat``. ``generator`` (constructor or call) makes the noise reproducible.
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        beta: float = DEFAULT_BETA,
        gamma: float = DEFAULT_GAMMA,
        zeta: float = DEFAULT_ZETA,
        log_alpha_init: float = DEFAULT_LOG_ALPHA_INIT,
        init_std: float = 0.0,
        eps: float = 1e-6,
        generator: torch.Generator | None = None,
    ) -> None:
        """``init_std`` > 0 adds N(0, init_std^2) jitter to the constant ``log_alpha_init``.

        ``eps`` clamps ``u`` to ``[eps, 1 - eps]`` so that ``log(u)`` and ``log(1 - u)`` are finite.
        """
        super().__init__()
        _check_hyper_parameters(beta, gamma, zeta, eps)
        self.shape: tuple[int, ...] = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"gate shape must have positive sizes, got {self.shape}")
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.zeta = float(zeta)
        self.eps = float(eps)
        self.generator = generator
        init = torch.full(self.shape, float(log_alpha_init))
        if init_std > 0:
            init = init + init_std * torch.randn(self.shape, generator=generator)
        self.log_alpha = nn.Parameter(init)
        self.given_noise: Tensor | None = None
        """Noise ``u`` for the next training sample instead of a draw: a population of models draws
        each member's noise from its own generator (:meth:`draw_noise`) before their mapped forward."""

    def extra_repr(self) -> str:
        return f"shape={self.shape}, beta={self.beta:.4g}, gamma={self.gamma:.4g}, zeta={self.zeta:.4g}"

    def forward(self, batch_size: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Gates: a training sample in ``train()`` mode, the serving estimator in ``eval()`` mode.

        Shape ``self.shape``, or ``[batch_size, *self.shape]`` when ``batch_size`` is given (in
        training that draws an independent sample per example; in eval the estimator is repeated).
        """
        if self.training:
            return self.sample(batch_size, generator)
        z_hat = self.serving_gates()
        return z_hat if batch_size is None else z_hat.expand(batch_size, *self.shape)

    def sample(self, batch_size: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw fresh ``u ~ U(0, 1)`` and return ``z = transform(u)`` (differentiable in log_alpha)."""
        if self.given_noise is not None:
            return self.transform(self.given_noise)
        return self.transform(self.draw_noise(batch_size, generator))

    def draw_noise(self, batch_size: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """The uniform noise of one training sample (shape ``self.shape``, or ``[batch_size, *self.shape]``)."""
        shape = self.shape if batch_size is None else (batch_size, *self.shape)
        gen = generator if generator is not None else self.generator
        device = gen.device if gen is not None else self.log_alpha.device
        return torch.rand(shape, generator=gen, dtype=self.log_alpha.dtype, device=device).to(self.log_alpha.device)

    def transform(self, u: Tensor, log_alpha: Tensor | None = None) -> Tensor:
        """The reparameterisation ``z = g(h(log_alpha, u))`` for given uniform noise ``u``.

        ``u`` has shape ``self.shape`` or ``[B, *self.shape]``; it is clamped to ``[eps, 1-eps]``.
        ``log_alpha`` (default: this gate's) may be any tensor that broadcasts with ``u``: the
        logits of several gates of these hyper-parameters stacked, transformed in one pass.
        """
        log_alpha = self.log_alpha if log_alpha is None else log_alpha
        u = u.clamp(self.eps, 1.0 - self.eps)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / self.beta)
        s_bar = s * (self.zeta - self.gamma) + self.gamma
        return s_bar.clamp(0.0, 1.0)

    def prob_nonzero(self) -> Tensor:
        """Per-gate ``P(z != 0) = 1 - Q(s < 0) = sigmoid(log_alpha - beta * log(-gamma / zeta))``."""
        return torch.sigmoid(self.log_alpha - self.beta * math.log(-self.gamma / self.zeta))

    def expected_l0(self) -> Tensor:
        """Expected number of non-zero gates, the L0 penalty of SNR (sum of :meth:`prob_nonzero`)."""
        return self.prob_nonzero().sum()

    def serving_gates(self) -> Tensor:
        """``z_hat = min(1, max(0, sigmoid(log_alpha) * (zeta - gamma) + gamma))``, exact zeros included."""
        return (torch.sigmoid(self.log_alpha) * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def serving_mask(self) -> Tensor:
        """Boolean tensor: which gates survive pruning (``z_hat != 0``)."""
        with torch.no_grad():
            return self.serving_gates() != 0

    def log_alpha_thresholds(self) -> tuple[float, float]:
        """``(closed, open)``: ``z_hat == 0`` iff log_alpha <= closed, ``z_hat == 1`` iff >= open.

        Solves ``sigmoid(a) * (zeta - gamma) + gamma = 0`` and ``= 1``: closed = logit(-gamma /
        (zeta - gamma)), open = logit((1 - gamma) / (zeta - gamma)); +-ln 11 for the defaults.
        """
        width = self.zeta - self.gamma
        return _logit(-self.gamma / width), _logit((1.0 - self.gamma) / width)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _check_hyper_parameters(beta: float, gamma: float, zeta: float, eps: float) -> None:
    """Reject values for which the distribution is not a hard concrete (no mass at exactly 0 or 1)."""
    if not beta > 0:
        raise ValueError(f"hard concrete temperature beta must be > 0 (SNR searches [0.5, 0.9]), got {beta}")
    if not gamma < 0:
        raise ValueError(
            f"hard concrete stretch gamma must be < 0 so that z can be exactly 0 (SNR searches [-1, -0.1]), got {gamma}"
        )
    if not zeta > 1:
        raise ValueError(
            f"hard concrete stretch zeta must be > 1 so that z can be exactly 1 (SNR searches [1.1, 2]), got {zeta}"
        )
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")

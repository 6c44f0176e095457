"""The hard-concrete gate as a differentiable router: SNR's coding variables inside a routing network.

SNR (Ma et al.) connects sub-networks through binary coding variables ``z`` relaxed with the hard
concrete distribution (Louizos et al. 2017) and prunes them with an expected-L0 penalty. Routing
networks route samples through function blocks chosen per task. Put together: every task ``t``
holds one gate ``z[t, d, m]`` per routed layer ``d`` and block ``m``, and a sample of task ``t``
reads

    h_out = sum_m z[t, d, m] * block_m(h_in)

which is a *soft* :class:`~routing_rl.network.routed_layer.RoutingDecision`: the task loss
back-propagates through the block outputs into the gate values and from there, by the
reparameterisation trick, into ``log_alpha``. No reinforcement signal is needed; the trainer simply
adds :meth:`HardConcreteRouter.loss` (``lambda * E||z||_0``) to the task loss and lets Adam
optimise ``log_alpha`` with the weights. Gates whose serving value ``z_hat`` is exactly 0 prune
their block for that task: the dispatcher skips zero weights, so a closed block is never run.

Unlike SNR the sum is not normalised (SNR-Aver does not normalise either): a gate is an on/off
switch for a connection, not a mixture weight, and normalising would make one open gate look like
all of them open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from routing_rl.agents.base import Router, RouterConfigError
from routing_rl.core.contracts import EpisodeBatch, RoutingDecision, RoutingObservation
from routing_rl.network.hard_concrete import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    DEFAULT_LOG_ALPHA_INIT,
    DEFAULT_ZETA,
    HardConcreteGate,
)

DEFAULT_L0_LAMBDA = 1e-3
"""Default weight of the expected-L0 penalty.

The routing trainer's task loss is a per-sample mean cross-entropy (order 1), while SNR's lambda
grid (1e-5 .. 1e-3) was tuned against a sum of per-task BCE losses; 1e-3 keeps the penalty a
gentle push towards sparsity (each open gate costs 1e-3) that only closes gates the task loss
does not defend. Raise it (e.g. 0.05) to prune aggressively.
"""


class HardConcreteRouter(Router):
    """Per-task hard concrete gates over the blocks of every routed layer, trained by back-propagation.

    ``log_alpha`` has shape ``[num_tasks, num_layers, num_blocks]`` (one :class:`HardConcreteGate`
    of shape ``[T, M]`` per routed layer). While training (``explore`` and ``train()`` mode) gates
    are sampled with fresh uniform noise from the router's generator: one sample per mini-batch
    for every (task, layer), as SNR does, or one per example with ``per_example=True`` (less
    correlated noise, more variance per step). Evaluation uses the deterministic serving values
    ``z_hat``, which are exactly 0 or 1 outside ``(-ln 11, ln 11)`` with the default stretch.
    ``beta``, ``gamma``, ``zeta`` and ``log_alpha_init`` are the hard concrete hyper-parameters
    (see :mod:`routing_rl.network.hard_concrete`).
    """

    name = "hard-concrete"
    description = "differentiable per-task hard-concrete gates over all blocks (SNR-style), L0-regularised"
    family = "router: differentiable gates"
    routes_soft = True
    option_help = {
        "l0_lambda": "weight of the expected-L0 penalty (each open gate costs this much loss)",
        "beta": "hard concrete temperature",
        "gamma": "lower end of the stretched interval (< 0)",
        "zeta": "upper end of the stretched interval (> 1)",
        "log_alpha_init": "initial gate logit (larger: gates start open)",
        "per_example": "draw gate noise per example instead of once per mini-batch",
    }

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        num_blocks: int,
        *,
        seed: int = 0,
        l0_lambda: float = DEFAULT_L0_LAMBDA,
        beta: float = DEFAULT_BETA,
        gamma: float = DEFAULT_GAMMA,
        zeta: float = DEFAULT_ZETA,
        log_alpha_init: float = DEFAULT_LOG_ALPHA_INIT,
        per_example: bool = False,
    ) -> None:
        super().__init__(num_tasks, num_layers, num_blocks, seed=seed)
        if l0_lambda < 0:
            raise RouterConfigError(f"l0_lambda must be >= 0, got {l0_lambda}")
        self.l0_lambda = float(l0_lambda)
        self.per_example = per_example
        try:
            self.gates = nn.ModuleList(
                HardConcreteGate((num_tasks, num_blocks), beta, gamma, zeta, log_alpha_init) for _ in range(num_layers)
            )
        except ValueError as exc:  # bad beta/gamma/zeta: report it as a router option error
            raise RouterConfigError(str(exc)) from None

    # ---- gates -------------------------------------------------------------------------------
    def gate(self, depth: int) -> HardConcreteGate:
        """The gate of routed layer ``depth`` (``[num_tasks, num_blocks]``)."""
        return cast(HardConcreteGate, self.gates[depth])

    @property
    def log_alpha(self) -> torch.Tensor:
        """All gate logits as one ``[num_tasks, num_layers, num_blocks]`` tensor (a stacked view, for inspection)."""
        if self.num_layers == 0:
            return torch.zeros(self.num_tasks, 0, self.num_blocks)
        return torch.stack([self.gate(d).log_alpha for d in range(self.num_layers)], dim=1)

    def serving_gates(self, depth: int) -> torch.Tensor:
        """``z_hat`` of every task and block at layer ``depth``, ``[T, M]``, exact zeros included."""
        return self.gate(depth).serving_gates()

    def expected_l0(self) -> torch.Tensor:
        """Expected number of open gates over all tasks, layers and blocks (differentiable)."""
        if self.num_layers == 0:
            return torch.zeros(())
        return torch.stack([self.gate(d).expected_l0() for d in range(self.num_layers)]).sum()

    # ---- Router hooks ------------------------------------------------------------------------
    def act(self, obs: RoutingObservation, explore: bool = True) -> RoutingDecision:
        """A soft decision over all blocks; the weights are the gate values of each sample's task."""
        gate = self.gate(obs.depth)
        tasks = obs.task_ids
        batch = obs.batch_size
        if explore and self.training:
            if self.per_example:
                z_all = gate.sample(batch_size=batch, generator=self.generator)  # [B, T, M]
                weights = z_all[torch.arange(batch, device=z_all.device), tasks]
            else:
                weights = gate.sample(generator=self.generator)[tasks]  # one draw per (task, layer)
        else:
            weights = gate.serving_gates()[tasks]
        blocks = torch.arange(self.num_blocks, device=weights.device).expand(batch, -1)
        return RoutingDecision(blocks, weights)

    @classmethod
    def act_together(cls, routers: Sequence[Router], observations: Sequence[RoutingObservation]) -> list[RoutingDecision]:
        """:meth:`Router.act_together`: each router draws its gates' noise from its own generator, and
        the gates of routers of one temperature and stretch are transformed in one pass (the values,
        and the gradients each router's gates get, are those of its own act)."""
        gates = [cast(HardConcreteRouter, r).gate(obs.depth) for r, obs in zip(routers, observations)]
        kinds = {(g.beta, g.gamma, g.zeta, g.eps, g.log_alpha.dtype, g.log_alpha.device) for g in gates}
        drawn_apart = any(g.given_noise is not None for g in gates) or any(cast(HardConcreteRouter, r).per_example or not r.training for r in routers)
        if len(kinds) > 1 or drawn_apart:
            return super().act_together(routers, observations)
        noise = torch.stack([gate.draw_noise(generator=router.generator) for gate, router in zip(gates, routers)])
        z = gates[0].transform(noise, torch.stack([gate.log_alpha for gate in gates]))
        blocks = torch.arange(routers[0].num_blocks, device=z.device)
        return [RoutingDecision(blocks.expand(obs.batch_size, -1), z[p][obs.task_ids]) for p, obs in enumerate(observations)]

    def loss(self, episodes: EpisodeBatch) -> torch.Tensor | None:
        """``l0_lambda * E||z||_0``; the task loss reaches ``log_alpha`` through the soft decisions."""
        if self.num_layers == 0:
            return None
        return self.l0_lambda * self.expected_l0()

    def policy(self, depth: int) -> torch.Tensor:
        """Each task's serving gate values, normalised to sum to 1: ``[T, M]``.

        A task whose gates at this layer are all closed gets the uniform row: it reads nothing
        from the layer, and a probability row is still needed for perplexity logging. Perplexity
        therefore reads M both for "all blocks equally open" and "all closed"; the raw gates are
        in :meth:`serving_gates`.
        """
        with torch.no_grad():
            z_hat = self.serving_gates(depth)
            total = z_hat.sum(dim=1, keepdim=True)
            uniform = torch.full_like(z_hat, 1.0 / self.num_blocks)
            return torch.where(total > 0, z_hat / total.clamp_min(torch.finfo(z_hat.dtype).tiny), uniform)

"""The collaboration reward of routing networks (Rosenbaum et al. 2018): a per-step bonus for
choosing blocks that other decisions at the same layer chose recently, which pushes tasks to share."""

from __future__ import annotations

import torch

from routing_rl.envs.episodes import RoutingObservation
from routing_rl.network.routed_layer import RoutingDecision


class CollaborationReward:
    """``rho * frequency of the chosen block among the layer's last `window` decisions``.

    The frequency is measured before the current batch is added, so a sample is not rewarded for
    its own choice. ``rho`` is applied once (the original public code multiplies it in twice).
    Soft decisions count their highest-weight block.
    """

    def __init__(self, rho: float, window: int = 256) -> None:
        if window < 1:
            raise ValueError(f"collaboration window must be >= 1, got {window}")
        self.rho = rho
        self.window = window
        self.history: dict[int, torch.Tensor] = {}

    def reset(self) -> None:
        """Forget the history (the trainer does this every epoch, so a resumed run replays exactly)."""
        self.history.clear()

    def __call__(self, obs: RoutingObservation, decision: RoutingDecision) -> torch.Tensor:
        chosen = decision.blocks if decision.is_hard else decision.blocks.gather(
            1, decision.weights.argmax(dim=1, keepdim=True)  # type: ignore[union-attr]
        ).squeeze(1)
        chosen = chosen.detach()
        past = self.history.get(obs.depth)
        if past is None or past.numel() == 0:
            reward = torch.zeros(chosen.shape[0], device=chosen.device)
        else:
            size = int(max(int(chosen.max()), int(past.max())) + 1)
            counts = torch.bincount(past, minlength=size).float()
            reward = self.rho * counts[chosen] / past.numel()
        combined = chosen if past is None else torch.cat([past, chosen])
        self.history[obs.depth] = combined[-self.window :]
        return reward

"""The collaboration reward of routing networks (Rosenbaum et al. 2018): a per-step bonus for
choosing blocks that other decisions at the same layer chose recently, which pushes tasks to share."""

from __future__ import annotations

import torch

from routing_rl.core.contracts import RoutingDecision, RoutingObservation


class CollaborationReward:
    """The collaboration bonus of the chosen block, in one of two forms (``--collab-form``).

    * ``once`` (this project's): ``rho * f``, with ``f`` the frequency of the chosen block among the
      layer's last ``window`` decisions measured before the current batch is added, so a sample is
      not rewarded for its own choice;
    * ``public-code`` (cle-ros/RoutingNetworks, ``CollaborationReward.get_reward`` and
      ``Loss._get_rl_loss_tuple_map``): ``rho * rho * f / L * |R|``: the shipped reward multiplies
      ``rho`` in twice, ``Loss`` divides every per-step reward by the trajectory's length ``L`` (the
      number of routed layers) and scales it by the magnitude of the episode's final reward ``R``
      (``normalize_per_action_rewards``); ``f`` is measured when the loss is computed, after the
      whole batch's decisions were registered, so the window includes the current batch. The
      ``|R|`` factor is known only at the end of an episode: :attr:`scaled_by_final` tells the env
      to apply it there.

    The history is forgotten at every epoch (:meth:`reset`) so that a resumed run replays exactly;
    the shipped code keeps it for the whole run and also registers evaluation passes. Soft
    decisions count their highest-weight block.
    """

    def __init__(self, rho: float, window: int = 256, form: str = "once", layers: int = 1) -> None:
        if window < 1:
            raise ValueError(f"collaboration window must be >= 1, got {window}")
        if form not in ("once", "public-code"):
            raise ValueError(f"--collab-form must be once or public-code, got {form!r}")
        self.rho = rho
        self.window = window
        self.form = form
        self.layers = max(layers, 1)
        self.history: dict[int, torch.Tensor] = {}

    @property
    def scaled_by_final(self) -> bool:
        """Whether this term is multiplied by ``|final reward|`` at the end of the episode."""
        return self.form == "public-code"

    def reset(self) -> None:
        """Forget the history (the trainer does this every epoch, so a resumed run replays exactly)."""
        self.history.clear()

    def __call__(self, obs: RoutingObservation, decision: RoutingDecision) -> torch.Tensor:
        chosen = decision.blocks if decision.is_hard else decision.blocks.gather(
            1, decision.weights.argmax(dim=1, keepdim=True)  # type: ignore[union-attr]
        ).squeeze(1)
        chosen = chosen.detach()
        past = self.history.get(obs.depth)
        combined = chosen if past is None else torch.cat([past, chosen])
        window = combined[-self.window :]
        self.history[obs.depth] = window
        if self.form == "public-code":
            counts = torch.bincount(window, minlength=int(window.max()) + 1).float()
            return self.rho * self.rho * (counts[chosen] / window.numel()) / self.layers
        if past is None or past.numel() == 0:
            return torch.zeros(chosen.shape[0], device=chosen.device)
        size = int(max(int(chosen.max()), int(past.max())) + 1)
        counts = torch.bincount(past, minlength=size).float()
        return self.rho * counts[chosen] / past.numel()

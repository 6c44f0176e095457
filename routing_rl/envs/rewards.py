"""Rewards of a routing episode: a final reward from the prediction, plus optional per-step terms
(defined with every objective in :mod:`routing_rl.core.objectives`)."""

from __future__ import annotations

from routing_rl.core.objectives import (
    FINAL_REWARDS,
    ClassificationObjective,
    EpisodeObjective,
    FinalRewardKind,
    StepReward,
    final_reward,
    mse_one_hot,
)

__all__ = ["FINAL_REWARDS", "ClassificationObjective", "EpisodeObjective", "FinalRewardKind", "StepReward", "final_reward", "mse_one_hot"]

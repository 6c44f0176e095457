"""Delta-m matches a two-task case computed by hand (one accuracy, one MSE)."""

from __future__ import annotations

import pytest

from routing_rl.analysis.delta_m import delta_m


def test_delta_m_of_an_accuracy_and_an_mse_task_by_hand():
    # accuracy 0.90 over 0.80: +0.10 / 0.80 = +0.125; MSE 0.30 over 0.25 (worse): -(0.05 / 0.25) = -0.20
    assert delta_m([0.90, 0.30], [0.80, 0.25], [True, False]) == pytest.approx(100 / 2 * (0.125 - 0.20))  # -3.75
    # MSE 0.20 over 0.25 (better): -(-0.05 / 0.25) = +0.20
    assert delta_m([0.90, 0.20], [0.80, 0.25], [True, False]) == pytest.approx(16.25)
    assert delta_m([0.80, 0.25], [0.80, 0.25], [True, False]) == 0.0


def test_a_baseline_score_of_zero_is_refused_by_task():
    with pytest.raises(ValueError, match="task 1: the baseline's score is 0"):
        delta_m([0.9, 0.1], [0.8, 0.0], [True, False])
    with pytest.raises(ValueError, match="one direction per task"):
        delta_m([0.9], [0.8, 0.1], [True, False])

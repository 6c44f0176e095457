"""The tabular routers' shared helpers against their defining formulas on hand-made batches."""

from __future__ import annotations

import pytest
import torch

from routing_rl.agents._policy_tables import cell_means, moving_average_


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rate", [1.0, 0.1])
def test_moving_average_moves_visited_cells_towards_their_batch_mean_and_leaves_the_rest(dtype, rate):
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(3, 2, generator=gen, dtype=dtype)
    table[2, 1] = -0.0  # an unvisited cell keeps even the sign of its zero
    values = torch.randn(4, 5, generator=gen)
    index = torch.randint(0, 4, (4, 5), generator=gen)  # cells 0..3 of 6; 4 and 5 unvisited
    index[0, 0] = 3
    expected = table.clone().view(-1)
    for cell in range(6):
        hit = index == cell
        if hit.any():
            mean = values[hit].float().mean()
            expected[cell] = expected[cell] + rate * (mean - expected[cell])
    moving_average_(table, values, index, rate)
    assert torch.allclose(table.view(-1), expected, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-7)
    assert torch.equal(table.view(-1)[4:], expected[4:]) and str(float(table[2, 1])) == "-0.0"
    if rate == 1.0:  # rate 1 replaces a visited cell by its batch mean
        assert torch.allclose(table.view(-1)[3], values[index == 3].mean().to(dtype), atol=1e-6)


def test_cell_means_are_each_cells_sum_over_its_count():
    values = torch.tensor([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    index = torch.tensor([[0, 2, 2], [0, 3, 2]])
    means, counts = cell_means(values, index, 5)
    assert counts.tolist() == [2.0, 0.0, 3.0, 1.0, 0.0]
    assert torch.equal(means, torch.tensor([4.5, 0.0, 38.0 / 3, 16.0, 0.0]))

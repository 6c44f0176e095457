"""Suite-wide settings: one intra-op thread, since the tests' networks are tiny and thread
hand-offs dominate their cost on a small or busy machine (results do not depend on it)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

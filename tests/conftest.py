"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Tiny models run much faster on one intra-op thread than on an oversubscribed pool."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

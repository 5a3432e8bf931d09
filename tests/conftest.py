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


def train_with_amal(meta, opt, loader, epochs, start=0):
    """The quick-start loop: a sweep when the schedule says so, then λ-weighted SGD steps."""
    for epoch in range(start, start + epochs):
        meta.start_epoch(epoch, loader)
        for batch in loader:
            loss, _ = meta.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.fixture
def fit():
    return train_with_amal

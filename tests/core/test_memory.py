"""The last_layer engine must never form per-instance C×D gradients (docs/method.md): its memory is
O(|V|·|B| + |B|·(D + K·C)), independent of C·D."""

import os

import pytest
import torch
from torch import nn

from amal.core.engines import Chunk, EngineContext, ValSample, make_engine

C, D, K = 1000, 2048, 2
BATCH, FIT, VAL = 128, 3, 1000
N = BATCH * FIT
BUDGET_MB = 200
# Materialising per-instance head gradients, as the authors do, would need
# N * C * D * 4 bytes = 384 * 1000 * 2048 * 4 ≈ 3.1 GB for this single chunk.
NAIVE_BYTES = N * C * D * 4

CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    with open(CLEAR_REFS, "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def peak_extra_mb(fn):
    """Run ``fn`` and return (its result, peak resident memory above the starting RSS, in MB)."""
    _reset_peak()
    rss0 = _status_kb("VmRSS")
    out = fn()
    return out, (_status_kb("VmHWM") - rss0) / 1024


def _can_measure():
    if not os.path.exists(CLEAR_REFS) or not os.access(CLEAR_REFS, os.W_OK):
        return False
    try:
        _reset_peak()
    except OSError:
        return False
    return True


def _inputs(seed=0, n=N, c=C, d=D, m=VAL):
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(d, c)
    chunk = Chunk(
        idx=torch.arange(n),
        inv_b=torch.full((n,), 1.0 / BATCH),
        features=torch.rand(n, d, generator=g),
        deltas=torch.randn(n, K, c, generator=g) * 0.01,
    )
    val = ValSample(
        y=torch.randint(0, c, (m,), generator=g),
        features=torch.rand(m, d, generator=g),
        logits=torch.randn(m, c, generator=g),
    )
    lam = torch.full((n, K), 0.5, dtype=torch.float64)
    return EngineContext(nn.Sequential(head), head, []), chunk, val, lam


def _run(ctx, chunk, val, lam, steps=5):
    objective = make_engine("last_layer").make_objective(ctx, chunk, val, 0.1)
    for _ in range(steps):
        grad, loss = objective(lam)
        lam = lam - 1.0 * grad.to(lam.dtype)
    return grad, loss


def test_last_layer_chunk_memory_is_independent_of_c_times_d():
    if not _can_measure():
        pytest.skip(f"{CLEAR_REFS} is not writable: cannot reset the peak-RSS counter")
    assert NAIVE_BYTES / 1e9 == pytest.approx(3.15, abs=0.01)
    _run(*_inputs(n=6, c=5, d=7, m=4))  # load the kernels' code pages before measuring
    ctx, chunk, val, lam = _inputs()
    (grad, loss), extra = peak_extra_mb(lambda: _run(ctx, chunk, val, lam))
    assert grad.shape == (N, K) and torch.isfinite(grad).all() and torch.isfinite(loss)
    assert extra < BUDGET_MB, f"peak extra memory {extra:.0f} MB for one chunk (budget {BUDGET_MB} MB)"

"""Synthetic rule-denoising data where the right answer is known: features, a linear true rule, and LFs of
chosen coverage and accuracy that are all *wrong* on a known region of input space.

Used by the convergence tests (AMAL must give the label-model term, and each LF's term, lower weight in that
region) and by ``amal bench rules --dataset synthetic`` (an end-to-end check that needs no data files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class SyntheticRules:
    x: Tensor  # [n, dim]
    y: np.ndarray  # [n] true class
    L: np.ndarray  # [n, m] LF votes (-1 = abstain)
    region: np.ndarray  # [n] bool: where every LF votes a wrong class
    accuracy: np.ndarray  # [m] LF accuracy outside the region
    coverage: np.ndarray  # [m]
    names: list[str]


def synthetic_rules(n: int = 3000, *, n_classes: int = 2, dim: int = 10, n_lfs: int = 8,
                    coverage: tuple[float, float] = (0.3, 0.6), accuracy: tuple[float, float] = (0.75, 0.9),
                    region_threshold: float = 0.9, seed: int = 0) -> SyntheticRules:
    """``y = argmax(x W)``; LF j fires on a random ``coverage_j`` share of the examples and votes the true class
    with probability ``accuracy_j`` (otherwise a uniformly chosen other class) — except in the region
    ``x[:, 0] > region_threshold`` (about 18 % of the examples at the default), where every vote is wrong."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    w = rng.standard_normal((dim, n_classes))
    y = (x @ w).argmax(axis=1)
    cov = rng.uniform(*coverage, size=n_lfs)
    acc = rng.uniform(*accuracy, size=n_lfs)
    region = x[:, 0] > region_threshold
    L = np.full((n, n_lfs), -1, dtype=np.int64)
    for j in range(n_lfs):
        fires = rng.random(n) < cov[j]
        right = (rng.random(n) < acc[j]) & ~region
        other = (y + rng.integers(1, n_classes, size=n)) % n_classes
        L[fires, j] = np.where(right, y, other)[fires]
    return SyntheticRules(torch.from_numpy(x), y.astype(np.int64), L, region, acc, cov,
                          [f"lf{j}" for j in range(n_lfs)])

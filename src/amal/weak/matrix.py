"""Checks and small helpers for LF matrices (n × m, ``-1`` = abstain, classes ``0..C-1``).

Every label model and rule recipe validates its inputs here, so a malformed matrix fails early with one line
that says what is wrong, instead of as a silent index error deep inside a fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amal.errors import AmalError

ABSTAIN = -1


def check_lf_matrix(L: Any, n_classes: int | None = None, *, n_lfs: int | None = None, n_rows: int | None = None,
                    what: str = "LF matrix") -> np.ndarray:
    """``L`` as an int64 array after checking its shape and values (``-1`` or a class in ``[0, n_classes)``)."""
    if hasattr(L, "detach"):  # a torch tensor
        L = L.detach().cpu().numpy()
    arr = np.asarray(L)
    if arr.ndim != 2:
        raise AmalError(f"{what} must be 2-D (examples × LFs), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise AmalError(f"{what} has no LF columns")
    if n_lfs is not None and arr.shape[1] != n_lfs:
        raise AmalError(f"{what} has {arr.shape[1]} LF columns, expected {n_lfs}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise AmalError(f"{what} has {arr.shape[0]} rows, expected {n_rows}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise AmalError(f"{what} must hold integers (-1 = abstain, 0..C-1 = class); found non-integer values")
    elif arr.dtype.kind not in "iu":
        raise AmalError(f"{what} must hold integers (-1 = abstain, 0..C-1 = class), got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    low = arr < ABSTAIN
    high = arr >= n_classes if n_classes is not None else np.zeros_like(low)
    if low.any() or high.any():
        i, j = (int(v[0]) for v in np.nonzero(low | high))
        allowed = f"-1 or 0..{n_classes - 1}" if n_classes is not None else "-1 or a class index >= 0"
        raise AmalError(f"{what}[{i}, {j}] = {arr[i, j]}: values must be {allowed}")
    return arr


def check_scores(S: Any, L: np.ndarray, what: str = "LF scores") -> np.ndarray:
    """Continuous LF scores: same shape as ``L``, finite, in [0, 1]."""
    if hasattr(S, "detach"):
        S = S.detach().cpu().numpy()
    arr = np.asarray(S, dtype=np.float64)
    if arr.shape != L.shape:
        raise AmalError(f"{what} have shape {arr.shape} but the LF matrix has {L.shape}")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise AmalError(f"{what}[{i}, {j}] = {arr[i, j]}: scores must be finite and in [0, 1]")
    return arr


def check_labels(y: Any, n_classes: int, n_rows: int, what: str = "labels") -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.shape != (n_rows,):
        raise AmalError(f"{what} have shape {arr.shape}, expected ({n_rows},)")
    if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= n_classes):
        raise AmalError(f"{what} must be class indices in [0, {n_classes}), got values "
                        f"{np.unique(arr)[:5].tolist()}")
    return arr.astype(np.int64)


def covered(L: np.ndarray) -> np.ndarray:
    """``[n]`` bool: at least one LF voted."""
    return (L != ABSTAIN).any(axis=1)


def uncovered_error(L: np.ndarray, what: str = "LF matrix") -> AmalError:
    rows = np.flatnonzero(~covered(L))
    return AmalError(f"{what}: {rows.size} row(s) where every LF abstains (first: row {int(rows[0])}); drop them "
                     "(uncovered='drop') or use a label model that handles them")


def vote_counts(L: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """``[n, C]``: (weighted) number of votes for each class."""
    n, m = L.shape
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.zeros((n, n_classes))
    for j in range(m):
        fired = L[:, j] != ABSTAIN
        np.add.at(out, (np.flatnonzero(fired), L[fired, j]), w[j])
    return out


def lf_classes(L: np.ndarray, n_classes: int, declared: list[tuple[int, ...] | None] | None = None) -> np.ndarray:
    """``[m, C]`` bool: the classes each LF can vote for — declared ones, else those it voted in ``L``."""
    m = L.shape[1]
    out = np.zeros((m, n_classes), dtype=bool)
    for j in range(m):
        d = declared[j] if declared is not None and j < len(declared) else None
        if d is not None:
            bad = [c for c in d if not 0 <= c < n_classes]
            if bad:
                raise AmalError(f"LF {j} declares classes {bad} outside 0..{n_classes - 1}")
            out[j, list(d)] = True
        else:
            seen = np.unique(L[:, j][L[:, j] != ABSTAIN])
            out[j, seen] = True
    return out

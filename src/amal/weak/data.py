"""Seeded splits for rule denoising: a small labelled set L, a validation set V, a test set T and the
unlabelled rest U, each with features and its LF matrix.

Splits are stratified by class (the spam data sets are imbalanced), exact duplicate texts are dropped first by
default (both data sets repeat messages, which would otherwise leak between L/U and T), and unlabelled rows on
which no LF fires are dropped by default (they carry no rule signal; the count is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from amal.errors import AmalError
from amal.weak.lf import LabelingFunction, LFOutput, apply_lfs
from amal.weak.matrix import check_labels, check_lf_matrix, check_scores, covered, uncovered_error

SPLITS = ("labelled", "unlabelled", "val", "test")
UNCOVERED = ("drop", "keep", "error")


@dataclass
class RuleData:
    """Everything the rule recipes consume. ``y["unlabelled"]`` is the hidden gold label of U: no method
    reads it; it is kept for the analysis (label-model correctness, per-LF accuracy on U)."""

    name: str
    class_names: list[str]
    x: dict[str, Tensor]
    y: dict[str, np.ndarray]
    lf: dict[str, LFOutput]
    texts: dict[str, list[str]] | None = None
    n_duplicates: int = 0
    n_uncovered_dropped: int = 0
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # per-row arrays by split (analysis)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def lf_names(self) -> list[str]:
        return self.lf["labelled"].names

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x["labelled"].shape[1:])

    def sizes(self) -> dict[str, int]:
        return {s: int(self.y[s].shape[0]) for s in SPLITS}


def split_indices(y: np.ndarray, *, n_labelled: int, n_val: int, n_test: int, seed: int,
                  stratify: bool = True) -> dict[str, np.ndarray]:
    """Disjoint index sets: test, then validation, then labelled, the rest unlabelled (each drawn with the
    class proportions of the whole set when ``stratify``)."""
    n = int(y.shape[0])
    for key, v in (("n_labelled", n_labelled), ("n_val", n_val), ("n_test", n_test)):
        if v < 1:
            raise AmalError(f"{key} must be >= 1, got {v}")
    if n_labelled + n_val + n_test >= n:
        raise AmalError(f"n_labelled + n_val + n_test = {n_labelled + n_val + n_test} leaves no unlabelled data "
                        f"out of {n} examples")
    rng = np.random.default_rng(seed)
    rest = rng.permutation(n)
    out: dict[str, np.ndarray] = {}
    for name, k in (("test", n_test), ("val", n_val), ("labelled", n_labelled)):
        take = _stratified(y[rest], k, rng) if stratify else np.arange(k)
        out[name] = np.sort(rest[take])
        rest = np.delete(rest, take)
    out["unlabelled"] = np.sort(rest)
    return {s: out[s] for s in SPLITS}


def _stratified(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` positions of ``y`` with the class proportions of ``y`` (largest remainders), at least one per class
    when ``k`` allows."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts / counts.sum() * k
    take = np.floor(exact).astype(int)
    if k >= len(classes):
        take = np.maximum(take, 1)
    while take.sum() > k:
        take[np.argmax(take)] -= 1
    for c in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if take.sum() >= k:
            break
        take[c] += 1
    picks = [rng.permutation(np.flatnonzero(y == c))[: min(t, cnt)] for c, t, cnt in zip(classes, take, counts)]
    return np.sort(np.concatenate(picks))


def _dedupe(texts: Sequence[str]) -> np.ndarray:
    seen: set[str] = set()
    keep = []
    for i, t in enumerate(texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _assemble(name: str, class_names: list[str], idx: dict[str, np.ndarray], y: np.ndarray, lf: LFOutput,
              x: dict[str, Tensor], uncovered: str, texts: list[str] | None, n_duplicates: int,
              extra: dict[str, np.ndarray] | None = None) -> RuleData:
    if uncovered not in UNCOVERED:
        raise AmalError(f"uncovered must be one of {list(UNCOVERED)}, got {uncovered!r}")
    u = idx["unlabelled"]
    cov = covered(lf.L[u])
    dropped = 0
    if uncovered == "error" and not cov.all():
        raise uncovered_error(lf.L[u], "unlabelled LF matrix")
    if uncovered == "drop":
        dropped = int((~cov).sum())
        if dropped == len(u):
            raise AmalError("no LF fires on any unlabelled example: nothing to learn from the rules")
        idx = {**idx, "unlabelled": u[cov]}
        x = {**x, "unlabelled": x["unlabelled"][torch.from_numpy(np.flatnonzero(cov))]}
    return RuleData(
        name=name, class_names=class_names, x=x, y={s: y[idx[s]] for s in SPLITS},
        lf={s: lf.rows(idx[s]) for s in SPLITS},
        texts=None if texts is None else {s: [texts[i] for i in idx[s]] for s in SPLITS},
        n_duplicates=n_duplicates, n_uncovered_dropped=dropped,
        extra={k: {s: np.asarray(v)[idx[s]] for s in SPLITS} for k, v in (extra or {}).items()},
    )


def rule_data_from_texts(name: str, texts: Sequence[str], labels: np.ndarray, lfs: Sequence[LabelingFunction],
                         class_names: Sequence[str], *, features: Any, n_labelled: int = 100, n_val: int = 300,
                         n_test: int = 1000, seed: int = 0, dedupe: bool = True, uncovered: str = "drop",
                         stratify: bool = True, progress: bool | None = None) -> RuleData:
    """Dedupe, apply the LFs, split, fit ``features`` (e.g. :class:`~amal.weak.features.TfidfFeatures`) on the
    labelled and unlabelled texts only, and featurise every split."""
    texts = list(texts)
    labels = check_labels(labels, len(class_names), len(texts), "text labels")
    n_dup = 0
    if dedupe:
        keep = _dedupe(texts)
        n_dup = len(texts) - len(keep)
        texts, labels = [texts[i] for i in keep], labels[keep]
    lf = apply_lfs(lfs, texts, n_classes=len(class_names), progress=progress)
    idx = split_indices(labels, n_labelled=n_labelled, n_val=n_val, n_test=n_test, seed=seed, stratify=stratify)
    features.fit([texts[i] for i in np.concatenate([idx["labelled"], idx["unlabelled"]])])
    x = {s: features.transform([texts[i] for i in idx[s]]) for s in SPLITS}
    return _assemble(name, list(class_names), idx, labels, lf, x, uncovered, texts, n_dup)


def rule_data_from_arrays(name: str, x: Tensor, y: np.ndarray, L: np.ndarray, *, S: np.ndarray | None = None,
                          class_names: Sequence[str] | None = None, lf_names: Sequence[str] | None = None,
                          n_labelled: int = 100, n_val: int = 300, n_test: int = 1000, seed: int = 0,
                          uncovered: str = "drop", stratify: bool = True,
                          extra: dict[str, np.ndarray] | None = None) -> RuleData:
    """The same splits for data that already has features ``x`` [N, D] and an LF matrix ``L`` [N, m];
    ``extra`` per-row arrays (e.g. a known region) are split alongside."""
    x = torch.as_tensor(x, dtype=torch.float32)
    n = int(x.shape[0])
    C = len(class_names) if class_names is not None else int(np.max(y)) + 1
    y = check_labels(y, C, n, "labels")
    L = check_lf_matrix(L, C, n_rows=n)
    S = check_scores(S, L) if S is not None else np.where(L >= 0, 1.0, 0.0)
    m = L.shape[1]
    names = list(lf_names) if lf_names is not None else [f"lf{j}" for j in range(m)]
    lf = LFOutput(L, S, names, np.zeros(m, dtype=bool), [None] * m)
    idx = split_indices(y, n_labelled=n_labelled, n_val=n_val, n_test=n_test, seed=seed, stratify=stratify)
    xs = {s: x[torch.from_numpy(idx[s])] for s in SPLITS}
    names_c = list(class_names) if class_names is not None else [str(c) for c in range(C)]
    return _assemble(name, names_c, idx, y, lf, xs, uncovered, None, 0, extra)

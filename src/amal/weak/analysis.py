"""The LF analysis table: how often each LF fires, overlaps and conflicts with the others, and how often it
is right where gold labels are known — the first thing to look at before trusting a set of rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amal.errors import AmalError
from amal.weak.matrix import ABSTAIN, check_labels, check_lf_matrix


@dataclass
class LFAnalysis:
    """``rows``: one dict per LF (``name``, ``polarity``, ``coverage``, ``overlaps``, ``conflicts``, ``n_gold``,
    ``correct``, ``accuracy``); ``overall``: the same figures for the set (``coverage`` = share of examples with
    at least one vote, ``overlaps`` = with two or more, ``conflicts`` = with disagreeing votes, ``accuracy`` =
    share of correct votes among all votes on gold-labelled examples)."""

    rows: list[dict[str, Any]]
    overall: dict[str, Any]
    n: int
    n_gold: int
    class_names: list[str] | None = None
    extra_accuracy: dict[str, list[float | None]] = field(default_factory=dict)

    def to_markdown(self, digits: int = 3) -> str:
        extra = list(self.extra_accuracy)
        gold = self.n_gold > 0  # gold columns only when this analysis had gold labels
        head = ["LF", "polarity", "coverage", "overlaps", "conflicts",
                *(["votes on gold", "accuracy (gold)"] if gold else []), *[f"accuracy ({k})" for k in extra]]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, r in enumerate([*self.rows, self.overall]):
            vals = [r["name"] if i < len(self.rows) else "**all LFs**", self._polarity(r["polarity"]),
                    _f(r["coverage"], digits), _f(r["overlaps"], digits), _f(r["conflicts"], digits),
                    *([str(r["n_gold"]), _f(r["accuracy"], digits)] if gold else []),
                    *[_f(self.extra_accuracy[k][i], digits) for k in extra]]
            lines.append("| " + " | ".join(vals) + " |")
        return "\n".join(lines)

    def _polarity(self, pol: list[int]) -> str:
        if self.class_names is None:
            return ",".join(map(str, pol)) or "—"
        return ",".join(self.class_names[c] for c in pol) or "—"


def _f(v: float | None, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def lf_analysis(L: Any, y: Any | None = None, *, names: Sequence[str] | None = None, n_classes: int | None = None,
                class_names: Sequence[str] | None = None) -> LFAnalysis:
    """Per-LF and overall coverage, overlaps, conflicts and — where ``y`` gives gold labels (``-1`` = unknown)
    — empirical accuracy. ``L`` may mix labelled and unlabelled rows."""
    if n_classes is None and class_names is not None:
        n_classes = len(class_names)
    L = check_lf_matrix(L, n_classes)
    n, m = L.shape
    names = list(names) if names is not None else [f"lf{j}" for j in range(m)]
    if len(names) != m:
        raise AmalError(f"{len(names)} LF names for {m} LF columns")
    raw = np.asarray(y) if y is not None else None
    if raw is not None and raw.size and raw.dtype.kind not in "iu":
        raise AmalError(f"gold labels must be integers (-1 = unknown), got dtype {raw.dtype}")
    gold = np.full(n, -1, dtype=np.int64) if raw is None else raw.astype(np.int64)
    if gold.shape != (n,):
        raise AmalError(f"gold labels have shape {gold.shape}, expected ({n},)")
    known = gold >= 0
    if n_classes is not None and known.any():
        check_labels(gold[known], n_classes, int(known.sum()), "gold labels")
    fired = L != ABSTAIN
    n_fired = fired.sum(axis=1)
    # a row conflicts when two fired LFs disagree: its fired votes have more than one distinct value
    lo = np.where(fired, L, np.iinfo(np.int64).max).min(axis=1)
    hi = np.where(fired, L, -2).max(axis=1)
    row_conflict = (n_fired > 1) & (lo != hi)
    rows = []
    for j in range(m):
        f = fired[:, j]
        others_disagree = (fired & (L != L[:, [j]])).any(axis=1)
        g = f & known
        correct = int((L[g, j] == gold[g]).sum())
        rows.append({
            "name": names[j], "polarity": sorted(np.unique(L[f, j]).tolist()),
            "coverage": float(f.mean()) if n else 0.0,
            "overlaps": float((f & (n_fired > 1)).mean()) if n else 0.0,
            "conflicts": float((f & others_disagree).mean()) if n else 0.0,
            "n_gold": int(g.sum()), "correct": correct,
            "accuracy": correct / int(g.sum()) if g.any() else None,
        })
    votes_on_gold = fired & known[:, None]
    total_correct = int(((L == gold[:, None]) & votes_on_gold).sum())
    overall = {
        "name": "all", "polarity": sorted(np.unique(L[fired]).tolist()),
        "coverage": float((n_fired > 0).mean()) if n else 0.0,
        "overlaps": float((n_fired > 1).mean()) if n else 0.0,
        "conflicts": float(row_conflict.mean()) if n else 0.0,
        "n_gold": int(votes_on_gold.sum()), "correct": total_correct,
        "accuracy": total_correct / int(votes_on_gold.sum()) if votes_on_gold.any() else None,
    }
    return LFAnalysis(rows, overall, n, int(known.sum()), list(class_names) if class_names else None)


def lf_accuracies(L: np.ndarray, y: np.ndarray, n_classes: int | None = None) -> list[float | None]:
    """Per-LF accuracy on rows with gold labels, then the overall vote accuracy (as in :class:`LFAnalysis`)."""
    a = lf_analysis(L, y, n_classes=n_classes)
    return [r["accuracy"] for r in a.rows] + [a.overall["accuracy"]]


def rule_lf_table(data: Any, accuracy_on: dict[str, str]) -> LFAnalysis:
    """The LF analysis of a :class:`~amal.weak.data.RuleData`: coverage, overlaps and conflicts on the unlabelled
    set; accuracy on each split of ``accuracy_on`` (column label -> split name)."""
    unl = data.lf["unlabelled"].L
    a = lf_analysis(unl, None, names=data.lf_names, n_classes=data.n_classes, class_names=data.class_names)
    for label, split in accuracy_on.items():
        a.extra_accuracy[label] = lf_accuracies(data.lf[split].L, data.y[split], data.n_classes)
    return a

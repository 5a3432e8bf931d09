"""What Λ learned in a rule-denoising run: λ against label-model correctness, LF agreement, teacher
correctness and each LF's own correctness on the unlabelled rows (whose gold labels the methods never saw).

Reads a student folder written by ``amal rules train`` / ``amal bench rules``: ``lambda.pt``, ``instances.pt``
(gold labels, teacher 1's logits) and ``rules.pt`` (LF votes, label-model posterior, labelled mask).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from amal.analysis.stats import auc


@dataclass
class RuleRun:
    """One run's Λ with everything needed to judge it, restricted to the unlabelled rows."""

    columns: list[str]
    values: np.ndarray  # [n_u, K] final Λ on U
    learned: np.ndarray  # [n_u, K] bool
    lf: np.ndarray  # [n_u, m]
    lf_names: list[str]
    gold: np.ndarray  # [n_u] (hidden from every method)
    lm_label: np.ndarray  # [n_u] the label model's hard label (the students' training label on U)
    teacher_pred: np.ndarray | None  # [n_u] teacher 1's prediction
    region: np.ndarray | None = None  # synthetic data: where every LF is wrong

    @property
    def lm_right(self) -> np.ndarray:
        return self.lm_label == self.gold

    def agreement(self) -> np.ndarray:
        """Share of the fired LFs that vote the label model's label (1 = unanimous, NaN = none fired)."""
        fired = self.lf >= 0
        agree = (self.lf == self.lm_label[:, None]) & fired
        n = fired.sum(1)
        return np.where(n > 0, agree.sum(1) / np.maximum(n, 1), np.nan)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(values, mask)`` of a column over U: its λ and where it was learned."""
        k = self.columns.index(name)
        return self.values[:, k], self.learned[:, k]


def _load(path: str) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_rule_run(student_dir: str) -> RuleRun | None:
    """``None`` when the folder is not a rule-denoising run with learned Λ."""
    paths = {k: os.path.join(student_dir, f"{k}.pt") for k in ("lambda", "instances", "rules")}
    if not all(os.path.isfile(p) for p in paths.values()):
        return None
    lam, inst, rules = (_load(paths[k]) for k in ("lambda", "instances", "rules"))
    unl = ~rules["labelled"].bool().numpy()
    values = lam["values"].float().numpy()
    frozen = lam.get("frozen")
    learned = ~frozen.bool().numpy() if isinstance(frozen, torch.Tensor) else np.ones_like(values, dtype=bool)
    teacher = inst.get("teacher_logits") or []
    return RuleRun(
        columns=[str(c) for c in lam["columns"]], values=values[unl], learned=learned[unl],
        lf=rules["lf"].long().numpy()[unl], lf_names=[str(n) for n in rules["lf_names"]],
        gold=inst["clean_y"].long().numpy()[unl], lm_label=inst["y"].long().numpy()[unl],
        teacher_pred=teacher[0].argmax(1).numpy()[unl] if teacher else None,
        region=rules["region"].bool().numpy()[unl] if "region" in rules else None,
    )


def trust_rows(run: RuleRun) -> list[dict[str, Any]]:
    """Per learned column: mean λ where its signal is right vs wrong on U, and AUC(right > wrong).

    ``lm``/``lm_soft``: right = the label model's label is the gold label; ``kd``: teacher 1's prediction is;
    ``lf:<name>``: that LF's vote is (rows where it fires). With a known region (synthetic data) another row
    compares λ outside versus inside it."""
    out = []
    for col in run.columns:
        values, mask = run.column(col)
        if not mask.any():
            continue
        if col in ("lm", "lm_soft", "entropy", "kl_lm"):
            right, what = run.lm_right, "label model right"
        elif col == "kd" and run.teacher_pred is not None:
            right, what = run.teacher_pred == run.gold, "teacher 1 right"
        elif col.startswith("lf:") and col[3:] in run.lf_names:
            right, what = run.lf[:, run.lf_names.index(col[3:])] == run.gold, "LF right"
        else:
            continue
        out.append(_trust(col, what, values[mask], right[mask], run.gold[mask]))
        if run.region is not None:
            out.append(_trust(col, "outside the wrong region", values[mask], ~run.region[mask], run.gold[mask]))
    return out


def _trust(col: str, what: str, values: np.ndarray, right: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    """``auc_within_class``: the AUC inside each gold class, averaged over the classes where it is defined —
    it separates "λ follows the signal's correctness" from "λ follows the class" (on imbalanced data a wrong
    signal is often simply the minority class, which the meta-objective may upweight as a whole)."""
    per_class = [auc(values[gold == c], right[gold == c]) for c in np.unique(gold)]
    per_class = [a for a in per_class if not np.isnan(a)]
    return {"column": col, "criterion": what, "n": int(values.size), "share_right": float(right.mean()),
            "mean_right": float(values[right].mean()) if right.any() else float("nan"),
            "mean_wrong": float(values[~right].mean()) if (~right).any() else float("nan"),
            "auc": auc(values, right), "auc_within_class": float(np.mean(per_class)) if per_class else float("nan")}


def class_rows(run: RuleRun, class_names: list[str] | None = None) -> list[dict[str, Any]]:
    """Mean λ of every learned column on U by gold class."""
    out = []
    for col in run.columns:
        values, mask = run.column(col)
        if not mask.any():
            continue
        for c in np.unique(run.gold[mask]):
            sel = mask & (run.gold == c)
            out.append({"column": col, "class": class_names[c] if class_names else str(c), "n": int(sel.sum()),
                        "mean": float(values[sel].mean())})
    return out


# ---------------------------------------------------------------------------------------------- figures
def plot_lm_lambda(runs: list[tuple[str, RuleRun]], column: str = "lm") -> bytes | None:
    """Left: λ_column histogram by label-model correctness; right: mean λ against LF agreement."""
    from amal.analysis.plots import BAD, GOOD, _new_figure, _png, _split_hist

    runs = [(lab, r) for lab, r in runs if column in r.columns and r.column(column)[1].any()]
    if not runs:
        return None
    fig, axes = _new_figure(2)
    vals = np.concatenate([r.column(column)[0][r.column(column)[1]] for _, r in runs])
    wrong = np.concatenate([~r.lm_right[r.column(column)[1]] for _, r in runs])
    _split_hist(axes[0][0], vals, wrong, "label model right", "label model wrong", f"final λ_{column} on U")
    axes[0][0].set_title(f"λ_{column} by label-model correctness", fontsize=10)
    ax = axes[0][1]
    agree = np.concatenate([r.agreement()[r.column(column)[1]] for _, r in runs])
    edges = np.linspace(0, 1, 6)
    centers = (edges[:-1] + edges[1:]) / 2
    for right, color, name in ((True, GOOD, "label model right"), (False, BAD, "label model wrong")):
        sel = ~wrong if right else wrong
        ys = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            upper = agree <= hi if hi >= 1.0 else agree < hi
            s = sel & (agree >= lo) & upper
            ys.append(vals[s].mean() if s.sum() >= 5 else np.nan)
        ax.plot(centers, ys, marker="o", color=color, label=name)
    ax.set_xlabel("share of the fired LFs that vote the label model's label")
    ax.set_ylabel(f"mean final λ_{column} (bins with ≥ 5 rows)")
    ax.set_title("λ against LF agreement", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_lf_trust(rows: list[dict[str, Any]], title: str) -> bytes | None:
    """Per-LF mean λ where the LF is right versus wrong (one pair of bars per LF)."""
    from amal.analysis.plots import BAD, GOOD, _new_figure, _png

    rows = [r for r in rows if r["column"].startswith("lf:") and r["criterion"] == "LF right"]
    if not rows:
        return None
    fig, axes = _new_figure(1, width=max(6.0, 0.45 * len(rows)), height=3.6)
    ax = axes[0][0]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["mean_right"] for r in rows], 0.4, color=GOOD, label="LF right")
    ax.bar(x + 0.2, [r["mean_wrong"] for r in rows], 0.4, color=BAD, label="LF wrong")
    ax.set_xticks(x, [r["column"][3:] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean final λ where the LF fires")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _png(fig)

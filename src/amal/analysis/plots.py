"""The report's figures, each returned as PNG bytes. Drawn with matplotlib's object-oriented API on the Agg
canvas (no pyplot, no global backend switch), so it works headless and inside other programs alike."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from amal.errors import AmalError

GOOD, BAD = "tab:blue", "tab:red"
MAX_OVERLAID = 8  # histograms drawn on top of each other; the heat map below shows every snapshot
MAX_SCATTER = 4000


def _new_figure(n_panels: int, rows: int = 1, width: float = 4.6, height: float = 3.4) -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise AmalError("the report needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width * n_panels, height * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, n_panels, squeeze=False)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _pick(n: int, k: int) -> list[int]:
    """At most ``k`` indices of ``range(n)``, evenly spread, always the first and the last."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def accuracy_curves(curves: Sequence[dict[str, Any]]) -> bytes:
    """``curves``: one dict per run with ``label``, ``epochs``, ``val``, ``test`` (lists; None = missing),
    ``best_epoch`` (or None)."""
    panels = [("val", "validation accuracy")]
    if any(v is not None for c in curves for v in c["test"]):
        panels.append(("test", "test accuracy"))
    fig, axes = _new_figure(len(panels))
    for ax, (key, title) in zip(axes[0], panels):
        for i, c in enumerate(curves):
            pts = [(e, v) for e, v in zip(c["epochs"], c[key]) if v is not None and math.isfinite(v)]
            if not pts:
                continue
            xs, ys = zip(*pts)
            (line,) = ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, ms=3, lw=1.6, label=c["label"],
                              color=f"C{i % 10}")
            best = c.get("best_epoch")
            if best in xs:
                ax.plot([best], [ys[xs.index(best)]], marker="*", ms=12, color=line.get_color(), mec="black",
                        mew=0.6, ls="none")
        ax.set_title(title + " (★ best-validation epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def lambda_histograms(states: Sequence[tuple[str, np.ndarray]], columns: Sequence[str],
                      bounds: tuple[float, float] | None, run_label: str) -> bytes:
    """One panel per Λ column: overlaid histograms of up to ``MAX_OVERLAID`` snapshots (colour = time) and,
    with several snapshots, a heat map with one row per snapshot (all of them)."""
    import matplotlib as mpl

    k = len(columns)
    heat = len(states) > 1
    fig, axes = _new_figure(k, rows=2 if heat else 1, width=4.8, height=3.3)
    cmap = mpl.colormaps["viridis"]
    all_vals = np.concatenate([v.ravel() for _, v in states])
    all_vals = all_vals[np.isfinite(all_vals)]  # NaN marks entries a recipe froze
    if all_vals.size == 0:
        all_vals = np.zeros(1)
    lo, hi = (float(all_vals.min()), float(all_vals.max())) if bounds is None else bounds
    lo, hi = min(lo, float(all_vals.min())), max(hi, float(all_vals.max()))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 41)
    shown = _pick(len(states), MAX_OVERLAID)
    for j, name in enumerate(columns):
        ax = axes[0][j]
        for rank, i in enumerate(shown):
            label, vals = states[i]
            col = vals[:, j][np.isfinite(vals[:, j])]
            if col.size == 0:
                continue
            color = cmap(rank / max(len(shown) - 1, 1))
            ax.hist(col, bins=edges, weights=np.full(col.shape, 1.0 / col.size), histtype="step", lw=1.4,
                    color=color, label=label)
        ax.set_title(f"λ_{name}  ({run_label})")
        ax.set_xlabel(f"λ_{name}")
        ax.set_ylabel("fraction of instances")
        ax.grid(alpha=0.3)
        per_sweep = any(lab.startswith("epoch") for lab, _ in states)
        ax.legend(fontsize=7, loc="upper right", title="after the sweep before" if per_sweep else None,
                  title_fontsize=7)
        if heat:
            ax2 = axes[1][j]
            grid = np.stack([np.histogram(c, bins=edges)[0] / max(c.size, 1)
                             for c in (v[:, j][np.isfinite(v[:, j])] for _, v in states)])
            img = ax2.pcolormesh(edges, np.arange(len(states) + 1) - 0.5, np.log10(grid + 1e-4), cmap="magma",
                                 vmin=-4, vmax=0, shading="flat")
            ticks = _pick(len(states), 10)
            ax2.set_yticks(ticks, [states[i][0] for i in ticks], fontsize=7)
            ax2.set_xlabel(f"λ_{name}")
            ax2.set_title("every snapshot (colour: log10 fraction)", fontsize=9)
            fig.colorbar(img, ax=ax2, fraction=0.05)
    return _png(fig)


def _split_hist(ax: Any, values: np.ndarray, mask_bad: np.ndarray, good: str, bad: str, xlabel: str) -> None:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 31)
    for sel, name, color in ((~mask_bad, good, GOOD), (mask_bad, bad, BAD)):
        if sel.any():
            v = values[sel]
            ax.hist(v, bins=edges, density=True, alpha=0.45, color=color,
                    label=f"{name}: n={int(sel.sum())}, mean {v.mean():.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")


def _means_over_time(ax: Any, states: Sequence[tuple[str, np.ndarray]], mask_bad: np.ndarray, good: str, bad: str,
                     ylabel: str) -> None:
    x = np.arange(len(states))
    for sel, name, color in ((~mask_bad, good, GOOD), (mask_bad, bad, BAD)):
        if sel.any():
            ax.plot(x, [v[sel].mean() for _, v in states], marker="o", ms=3, color=color, label=name)
    ticks = _pick(len(states), 8)
    ax.set_xticks(ticks, [states[i][0] for i in ticks], rotation=30, fontsize=7)
    ax.set_xlabel("snapshot (after the sweep before)")
    ax.set_ylabel(ylabel)
    ax.set_title("mean over sweeps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def kd_vs_teacher(column: str, lam: np.ndarray, wrong: np.ndarray, confidence: np.ndarray,
                  history: Sequence[tuple[str, np.ndarray]], run_label: str) -> bytes:
    """λ of one KD column against its teacher: split by teacher correctness (on clean labels), against the
    teacher's confidence (max softmax probability), and (with several snapshots) over time."""
    n_panels = 3 if len(history) > 1 else 2
    fig, axes = _new_figure(n_panels)
    ax = axes[0][0]
    _split_hist(ax, lam, wrong, "teacher right", "teacher wrong", f"final λ_{column}")
    ax.set_title(f"λ_{column} by teacher correctness ({run_label})", fontsize=10)

    ax = axes[0][1]
    idx = np.arange(lam.size)
    if idx.size > MAX_SCATTER:
        idx = np.sort(np.random.default_rng(0).choice(idx, MAX_SCATTER, replace=False))
    for sel, name, color in ((~wrong[idx], "teacher right", GOOD), (wrong[idx], "teacher wrong", BAD)):
        if sel.any():
            ax.scatter(confidence[idx][sel], lam[idx][sel], s=6, alpha=0.35, color=color, label=name,
                       rasterized=True, linewidths=0)
    qs = np.unique(np.quantile(confidence, np.linspace(0, 1, 11)))
    if qs.size > 1:
        which = np.clip(np.searchsorted(qs, confidence, side="right") - 1, 0, qs.size - 2)
        cx, cy = [], []
        for b in range(qs.size - 1):
            sel = which == b
            if sel.any():
                cx.append(confidence[sel].mean())
                cy.append(lam[sel].mean())
        ax.plot(cx, cy, color="black", marker="s", ms=4, lw=1.8, label="binned mean (deciles)")
    ax.set_xlabel("teacher confidence (max softmax probability)")
    ax.set_ylabel(f"final λ_{column}")
    ax.set_title(f"λ_{column} against teacher confidence", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if n_panels == 3:
        _means_over_time(axes[0][2], [(lab, v) for lab, v in history], wrong, "teacher right", "teacher wrong",
                         f"mean λ_{column}")
    return _png(fig)


def ce_vs_noise(column: str, lam: np.ndarray, noisy: np.ndarray, history: Sequence[tuple[str, np.ndarray]],
                run_label: str) -> bytes:
    """λ of the CE column on instances whose training label was flipped versus clean ones."""
    n_panels = 2 if len(history) > 1 else 1
    fig, axes = _new_figure(n_panels)
    ax = axes[0][0]
    _split_hist(ax, lam, noisy, "clean label", "noisy label", f"final λ_{column}")
    ax.set_title(f"λ_{column} on clean vs noisy labels ({run_label})", fontsize=10)
    if n_panels == 2:
        _means_over_time(axes[0][1], history, noisy, "clean label", "noisy label", f"mean λ_{column}")
    return _png(fig)

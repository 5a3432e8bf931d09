"""Reading a student run folder for the report: metric rows (required), summary, Λ snapshots, the final Λ and
the per-instance record (all optional). Problems with optional files become notes, never exceptions."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from amal.errors import AmalError

METRICS = "metrics.jsonl"
_METHOD_ORDER = {"ce": 0, "kd": 1, "amal": 2}


@dataclass
class Lambda:
    """One Λ state: column names and an N × K float array (plus the clamp bounds when known)."""

    columns: list[str]
    values: np.ndarray
    bounds: tuple[float, float] | None = None
    frozen: np.ndarray | None = None  # [N, K] bool: entries a recipe fixed (never learned)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def learned(self, name: str) -> np.ndarray:
        """``[N]`` bool: the entries of column ``name`` that Λ learning could move."""
        if self.frozen is None:
            return np.ones(self.values.shape[0], dtype=bool)
        return ~self.frozen[:, self.columns.index(name)]

    def learned_columns(self) -> list[str]:
        return [c for c in self.columns if self.learned(c).any()]

    def masked(self) -> np.ndarray:
        """The values with frozen entries set to NaN (plots skip them)."""
        return self.values if self.frozen is None else np.where(self.frozen, np.nan, self.values)

    @property
    def varies(self) -> bool:
        return bool(self.values.size) and bool((self.values.max(0) - self.values.min(0)).max() > 1e-12)


@dataclass
class Instances:
    """Per training instance: given labels, clean labels, the noise mask and each teacher's logits."""

    y: np.ndarray
    clean_y: np.ndarray
    noise_mask: np.ndarray
    teacher_logits: list[np.ndarray]

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


@dataclass
class RunData:
    student_dir: str
    folder: str  # the run's folder name (the parent's name for a ``student/`` folder)
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    snapshots: list[tuple[int, Lambda]] = field(default_factory=list)  # (epoch, Λ after the sweep before it)
    final: Lambda | None = None
    instances: Instances | None = None
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def method(self) -> str | None:
        m = self.summary.get("method")
        return m if isinstance(m, str) else None

    @property
    def learned(self) -> bool:
        """Whether Λ was learned in this run (anything to analyse beyond the accuracy curves)."""
        return bool(self.snapshots) or (self.final is not None and self.final.varies)

    def lambda_states(self) -> list[tuple[str, Lambda]]:
        """Λ over time for the plots: every sweep snapshot, or the final Λ alone when none were written."""
        if self.snapshots:
            return [(f"epoch {e}", lam) for e, lam in self.snapshots]
        if self.final is not None and self.final.varies:
            return [("final", self.final)]
        return []

    def last_lambda(self) -> Lambda | None:
        if self.final is not None:
            return self.final
        return self.snapshots[-1][1] if self.snapshots else None


def expand_run_dirs(run_dirs: str | list[str]) -> list[str]:
    """Student folders for the given paths: a student folder itself (``metrics.jsonl``), a run folder with
    ``student/``, or a folder whose sub-folders are student folders (``amal demo``'s ``runs/demo``)."""
    paths = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not paths:
        raise AmalError("no run folder given")
    out: list[str] = []
    for p in map(str, paths):
        if not os.path.isdir(p):
            raise AmalError(f"run folder not found: {p}")
        if os.path.isfile(os.path.join(p, METRICS)):
            out.append(p)
        elif os.path.isfile(os.path.join(p, "student", METRICS)):
            out.append(os.path.join(p, "student"))
        else:
            subs = [d for d in glob.glob(os.path.join(p, "*")) if os.path.isfile(os.path.join(d, METRICS))
                    and not re.fullmatch(r"teacher\d+", os.path.basename(d))]  # teachers are not methods
            if not subs:
                raise AmalError(f"no {METRICS} in {p} (nor in {os.path.join(p, 'student')}): not a run folder")
            out.extend(sorted(subs, key=lambda d: (_METHOD_ORDER.get(os.path.basename(d), 9), d)))
    return out


def load_run(student_dir: str) -> RunData:
    path = os.path.join(student_dir, METRICS)
    rows = _read_rows(path)
    if not rows:
        raise AmalError(f"no metric rows in {path}")
    full = os.path.abspath(student_dir)
    base = os.path.basename(full)
    folder = os.path.basename(os.path.dirname(full)) if base == "student" else base
    run = RunData(student_dir=student_dir, folder=folder, rows=rows)
    _read_summary(run)
    _read_lambdas(run)
    _read_instances(run)
    return run


def assign_labels(runs: list[RunData]) -> None:
    """Each run's legend label: its method (``summary.json``) or folder name, made unique with the folder."""
    base = [r.method or r.folder for r in runs]
    for r, b in zip(runs, base):
        r.label = b if base.count(b) == 1 or b == r.folder else f"{b} ({r.folder})"
    seen: dict[str, int] = {}
    for r in runs:  # the same folder name twice (runs from different parents)
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label} #{seen[r.label]}"


def _read_rows(path: str) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a half-written last line of an interrupted run
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows.append(row)
    rows.sort(key=lambda r: r["epoch"])
    return rows


def _read_summary(run: RunData) -> None:
    path = os.path.join(run.student_dir, "summary.json")
    if not os.path.isfile(path):
        run.notes.append("no summary.json: summary figures are taken from the metric rows")
        return
    try:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        run.notes.append(f"summary.json unreadable ({_short(e)}): summary figures are taken from the metric rows")
        return
    if isinstance(s, dict):
        run.summary = s


def _torch_load(path: str, run: RunData) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unreadable optional file only becomes a note
        run.notes.append(f"could not read {os.path.relpath(path, run.student_dir)} ({_short(e)})")
        return None


def _as_lambda(state: Any) -> Lambda | None:
    if not isinstance(state, dict) or "columns" not in state or not isinstance(state.get("values"), torch.Tensor):
        return None
    values = state["values"].detach().float().cpu().numpy()
    columns = [str(c) for c in state["columns"]]
    if values.ndim != 2 or values.shape[1] != len(columns) or values.shape[0] == 0:
        return None
    bounds = state.get("bounds")
    b = (float(bounds[0]), float(bounds[1])) if isinstance(bounds, (list, tuple)) and len(bounds) == 2 else None
    frozen = state.get("frozen")
    fz = frozen.bool().cpu().numpy() if isinstance(frozen, torch.Tensor) and tuple(frozen.shape) == values.shape \
        else None
    return Lambda(columns, values, b, fz)


def _read_lambdas(run: RunData) -> None:
    for path in glob.glob(os.path.join(run.student_dir, "lambda", "epoch*.pt")):
        m = re.fullmatch(r"epoch(\d+)\.pt", os.path.basename(path))
        if not m:
            continue
        state = _torch_load(path, run)
        lam = _as_lambda(state) if state is not None else None
        if lam is None:
            if state is not None:
                run.notes.append(f"lambda/{os.path.basename(path)} is not a Λ table; skipped")
            continue
        run.snapshots.append((int(m.group(1)), lam))
    run.snapshots.sort(key=lambda t: t[0])
    if run.snapshots:
        cols = run.snapshots[-1][1].columns
        kept = [(e, lam) for e, lam in run.snapshots if lam.columns == cols]
        if len(kept) < len(run.snapshots):
            run.notes.append("Λ snapshots with other columns than the last one were skipped")
        run.snapshots = kept
    path = os.path.join(run.student_dir, "lambda.pt")
    if os.path.isfile(path):
        state = _torch_load(path, run)
        run.final = _as_lambda(state) if state is not None else None
        if state is not None and run.final is None:
            run.notes.append("lambda.pt is not a Λ table; ignored")
    elif run.snapshots:
        run.notes.append("no lambda.pt: the last Λ snapshot stands for the final Λ")
    else:
        run.notes.append("no lambda.pt and no Λ snapshots")


def _read_instances(run: RunData) -> None:
    path = os.path.join(run.student_dir, "instances.pt")
    if not os.path.isfile(path):
        if run.learned:
            run.notes.append("no instances.pt: λ cannot be related to teachers or label noise")
        return
    st = _torch_load(path, run)
    if st is None:
        return
    try:
        y = st["y"].long().numpy()
        inst = Instances(
            y=y, clean_y=st.get("clean_y", st["y"]).long().numpy(),
            noise_mask=st.get("noise_mask", torch.zeros_like(st["y"], dtype=torch.bool)).bool().numpy(),
            teacher_logits=[t.float().numpy() for t in st.get("teacher_logits", [])],
        )
    except (KeyError, TypeError, AttributeError) as e:
        run.notes.append(f"instances.pt has an unexpected layout ({_short(e)}); ignored")
        return
    n = inst.n
    if inst.clean_y.shape != (n,) or inst.noise_mask.shape != (n,) or any(
        t.ndim != 2 or t.shape[0] != n for t in inst.teacher_logits
    ):
        run.notes.append("instances.pt has inconsistent shapes; ignored")
        return
    lam = run.last_lambda()
    if lam is not None and lam.values.shape[0] != n:
        run.notes.append(f"instances.pt has {n} rows but Λ has {lam.values.shape[0]}; ignored")
        return
    run.instances = inst


def summary_figures(run: RunData) -> dict[str, Any]:
    """Best val acc, its epoch, test acc there, seconds and sweeps: from summary.json, else from the rows."""
    s, rows = run.summary, run.rows
    best = max(rows, key=lambda r: _num(r.get("val_acc"), -math.inf))
    out = {
        "epochs": len(rows),
        "best_epoch": s.get("best_epoch", best["epoch"]),
        "best_val_acc": s.get("best_val_acc", best.get("val_acc")),
        "test_acc_at_best": s.get("test_acc_at_best", best.get("test_acc")),
        "seconds": s.get("seconds", sum(_num(r.get("epoch_seconds"), 0.0) for r in rows)),
        "sweeps": s.get("sweeps", len(run.snapshots) or sum(_num(r.get("sweep_seconds"), 0.0) > 0 for r in rows)),
    }
    return out


def lambda_stats(lam: Lambda) -> dict[str, dict[str, float]]:
    """Per column, over the entries that count: those frozen at 0 (a term switched off there) are left out, as
    in ``LambdaTable.stats``."""
    out = {}
    for k, name in enumerate(lam.columns):
        col = lam.values[:, k].astype(np.float64)
        if lam.frozen is not None and (keep := ~(lam.frozen[:, k] & (col == 0))).any():
            col = col[keep]
        p10, p50, p90 = np.quantile(col, [0.1, 0.5, 0.9])
        out[name] = {"mean": float(col.mean()), "std": float(col.std(ddof=1)) if col.size > 1 else 0.0,
                     "min": float(col.min()), "p10": float(p10), "p50": float(p50), "p90": float(p90),
                     "max": float(col.max())}
    return out


def _num(v: Any, default: float) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else default


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__

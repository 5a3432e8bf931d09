"""``amal report``: what Λ learned, as one self-contained HTML page and a Markdown page with PNG figures.

Sections: a summary table per run (and Λ statistics per column), accuracy curves (one curve per run, so
several run folders compare methods), Λ histograms over the sweeps, λ_KD against each teacher's correctness
and confidence, and λ_CE on noisy versus clean training labels. Runs without learned Λ (the CE and KD
baselines) or without teachers still get their accuracy curves and summary rows.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import re
from typing import Any

import numpy as np

from amal.analysis import plots
from amal.analysis.document import Document, Figure
from amal.analysis.runs import RunData, assign_labels, expand_run_dirs, lambda_stats, load_run, summary_figures
from amal.analysis.stats import auc, spearman

SECTION_SUMMARY = "Summary"
SECTION_LAMBDA_STATS = "Λ statistics per column"
SECTION_ACCURACY = "Accuracy curves"
SECTION_HISTOGRAMS = "Λ histograms over sweeps"
SECTION_KD = "λ_KD against the teacher"
SECTION_CE = "λ_CE on noisy and clean instances"
SECTION_RULES = "λ against the rules"
SECTION_NOTES = "Notes on the inputs"
NO_NOISE = "no label noise in this run"


def build_report(run_dirs: str | list[str], out_dir: str | None = None, title: str | None = None) -> dict[str, str]:
    """Write ``report.html`` (figures embedded as data URIs), ``report.md`` and its ``report-*.png`` figures.

    ``run_dirs``: one or more student folders (with ``metrics.jsonl``), run folders containing ``student/``,
    or folders of student folders (``amal demo``'s ``runs/demo``). ``out_dir`` defaults to ``<RUN_DIR>/report``
    for one folder and to ``report/`` in the folders' common parent for several. Returns the written paths
    (``html``, ``markdown``, ``out_dir``). A folder without metric rows is an ``AmalError``.
    """
    given = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    runs = [load_run(d) for d in expand_run_dirs(given)]
    assign_labels(runs)
    out_dir = out_dir or _default_out_dir([str(g) for g in given])
    doc = Document(title or "AMAL report: " + ", ".join(r.label for r in runs))
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc.para(f"Generated {when} from {len(runs)} run folder(s). Test accuracy is taken at the best-validation "
             "epoch; λ_KD correctness is judged against the clean training label.")
    _summary(doc, runs)
    _accuracy(doc, runs)
    _histograms(doc, runs)
    _kd(doc, runs)
    _ce(doc, runs)
    _rules(doc, runs)
    notes = [(r, n) for r in runs for n in r.notes]
    if notes:
        doc.heading(SECTION_NOTES)
        for r, n in notes:
            doc.note(f"{r.label}: {n}")
    paths = doc.write(out_dir)
    return {**paths, "out_dir": out_dir}


def _default_out_dir(given: list[str]) -> str:
    if len(given) == 1:
        return os.path.join(given[0], "report")
    common = os.path.commonpath([os.path.abspath(g) for g in given])
    if os.path.dirname(common) == common:  # the file-system root: use the working directory instead
        return "report"
    return os.path.join(common, "report")


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return "n/a" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}" if math.isfinite(v) else "n/a"
    return str(v)


# -- sections ---------------------------------------------------------------------------------------------------


def _summary(doc: Document, runs: list[RunData]) -> None:
    doc.heading(SECTION_SUMMARY)
    rows = []
    for r in runs:
        s = summary_figures(r)
        rows.append([r.label, r.method or "?", _fmt(s["epochs"]), _fmt(s["best_val_acc"]), _fmt(s["best_epoch"]),
                     _fmt(s["test_acc_at_best"]), _fmt(s["seconds"], 1), _fmt(s["sweeps"]), r.student_dir])
    doc.table(["run", "method", "epochs", "best val acc", "best epoch", "test acc at best val", "seconds",
               "λ sweeps", "folder"], rows)
    doc.heading(SECTION_LAMBDA_STATS, 3)
    stat_rows = []
    for r in runs:
        lam = r.last_lambda()
        stats = lambda_stats(lam) if lam is not None else r.summary.get("lambda")
        if not isinstance(stats, dict):
            continue
        for col, st in stats.items():
            kind = "learned" if r.learned and (lam is None or col not in lam.columns or lam.learned(col).any()) \
                else "fixed"
            if isinstance(st, dict):
                stat_rows.append([r.label, str(col), kind] + [_fmt(st.get(k), 3) for k in
                                                              ("mean", "std", "min", "p10", "p50", "p90", "max")])
    if stat_rows:
        doc.para("Final Λ (lambda.pt): one row per loss term. 'fixed' columns never moved (CE/KD baselines).")
        doc.table(["run", "column", "Λ", "mean", "std", "min", "p10", "median", "p90", "max"], stat_rows)
    else:
        doc.note("no Λ found in any run")


def _accuracy(doc: Document, runs: list[RunData]) -> None:
    doc.heading(SECTION_ACCURACY)
    curves = []
    for r in runs:
        curves.append({
            "label": r.label, "epochs": [row["epoch"] for row in r.rows],
            "val": [_float(row.get("val_acc")) for row in r.rows],
            "test": [_float(row.get("test_acc")) for row in r.rows],
            "best_epoch": summary_figures(r)["best_epoch"],
        })
    doc.figure(Figure("accuracy", plots.accuracy_curves(curves),
                      "Validation and test accuracy per epoch, one curve per run; ★ marks the best-validation epoch."))
    if not any(v is not None for c in curves for v in c["test"]):
        doc.note("no test accuracy recorded in these runs")


def _histograms(doc: Document, runs: list[RunData]) -> None:
    doc.heading(SECTION_HISTOGRAMS)
    doc.para("Distribution of each Λ column after every λ sweep (top: overlaid histograms of up to "
             f"{plots.MAX_OVERLAID} snapshots, colour from early to late; bottom: every snapshot as one row).")
    any_fig = False
    for i, r in enumerate(runs):
        states = r.lambda_states()
        if not states:
            doc.note(f"{r.label}: Λ is fixed in this run ({r.method or 'no learned Λ'}); no histograms")
            continue
        if not r.snapshots:
            doc.note(f"{r.label}: no per-sweep Λ snapshots (lambda/epoch*.pt); showing the final Λ only")
        lam = states[-1][1]
        cols = lam.learned_columns()
        if not cols:
            doc.note(f"{r.label}: every Λ entry is fixed by the recipe; no histograms")
            continue
        keep = [lam.columns.index(c) for c in cols]
        caption = f"{r.label}: Λ histograms per loss term over {len(states)} snapshot(s)" + (
            " (learned entries only)" if lam.frozen is not None else "")
        png = plots.lambda_histograms([(lab, s.masked()[:, keep]) for lab, s in states], cols, lam.bounds, r.label)
        doc.heading(r.label, 3)
        doc.figure(Figure(f"lambda-run{i + 1}", png, caption))
        any_fig = True
    if not any_fig:
        doc.para("No run with learned Λ: CE and fixed-λ KD baselines keep Λ constant.")


def _kd_columns(columns: list[str], n_teachers: int) -> list[str]:
    kd = [c for c in columns if c == "kd" or re.fullmatch(r"kd\d+", c)]
    return kd if len(kd) == n_teachers else []


def _softmax_max(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).max(1)


def _kd(doc: Document, runs: list[RunData]) -> None:
    doc.heading(SECTION_KD)
    doc.para("Per KD column: the final λ on instances where its teacher's argmax equals the clean label "
             "(right) versus not (wrong), and against the teacher's confidence (max softmax probability, T = 1). "
             "AUC: probability that a random right instance has a larger λ than a random wrong one.")
    table = []
    for i, r in enumerate(runs):
        lam = r.last_lambda()
        if not r.learned or lam is None:
            continue
        inst = r.instances
        if inst is None:
            doc.note(f"{r.label}: no usable instances.pt; λ_KD cannot be related to the teachers")
            continue
        if not inst.teacher_logits:
            doc.note(f"{r.label}: no teachers in this run")
            continue
        cols = _kd_columns(lam.columns, len(inst.teacher_logits))
        if not cols:
            doc.note(f"{r.label}: {len(inst.teacher_logits)} teacher(s) but Λ columns {lam.columns}; skipped")
            continue
        history = r.lambda_states()
        for col, logits in zip(cols, inst.teacher_logits):
            sel = lam.learned(col)
            if not sel.any():
                continue
            values = lam.column(col)[sel]
            wrong = (logits.argmax(1) != inst.clean_y)[sel]
            conf = _softmax_max(logits)[sel]
            hist = [(lab, s.column(col)[sel]) for lab, s in history]
            png = plots.kd_vs_teacher(col, values, wrong, conf, hist, r.label)
            doc.heading(f"{r.label}: λ_{col}", 3)
            doc.figure(Figure(f"kd-run{i + 1}-{col}", png,
                              f"{r.label}: λ_{col} by teacher correctness, against teacher confidence"
                              + (" and over sweeps" if len(hist) > 1 else "")))
            right = ~wrong
            table.append([r.label, col, _fmt(float(right.mean())), _fmt(int(wrong.sum())),
                          _fmt(float(values[right].mean()) if right.any() else None, 3),
                          _fmt(float(values[wrong].mean()) if wrong.any() else None, 3),
                          _fmt(auc(values, right), 3), _fmt(spearman(values, conf), 3)])
    if table:
        doc.table(["run", "column", "teacher acc (clean)", "teacher wrong", "mean λ | right", "mean λ | wrong",
                   "AUC right > wrong", "Spearman(λ, confidence)"], table)
    else:
        doc.para("No run with learned λ_KD and teacher outputs (CE/KD baselines and runs without teachers "
                 "only have accuracy curves).")


LABEL_COLUMNS = ("ce", "lm", "lm_soft")  # terms that fit a given label: CE, and the label-model terms of rules runs


def _ce(doc: Document, runs: list[RunData]) -> None:
    doc.heading(SECTION_CE)
    doc.para("The final λ of each label-fitting term (λ_ce; λ_lm / λ_lm_soft in rule-denoising runs, where a "
             "'noisy' label is one the label model got wrong) on training instances whose label is wrong (noisy) "
             "versus right (clean), over the entries Λ learning could move. AUC: probability that a random clean "
             "instance has a larger λ than a random noisy one; 'noisy in lowest': share of noisy labels among the "
             "n_noisy instances with the smallest λ (chance level = the noise rate).")
    table = []
    shown = False
    for i, r in enumerate(runs):
        lam = r.last_lambda()
        if not r.learned or lam is None:
            continue
        for col in [c for c in LABEL_COLUMNS if c in lam.columns and lam.learned(c).any()]:
            shown = True
            inst = r.instances
            if inst is None:
                doc.note(f"{r.label}: no usable instances.pt; the noise mask is unknown")
                break
            sel = lam.learned(col)
            noisy = inst.noise_mask.astype(bool)[sel]
            if not noisy.any():
                doc.para(f"{r.label}: {NO_NOISE}.")
                continue
            values = lam.column(col)[sel]
            hist = [(lab, s.column(col)[sel]) for lab, s in r.lambda_states()]
            png = plots.ce_vs_noise(col, values, noisy, hist, r.label)
            doc.heading(f"{r.label}: λ_{col}", 3)
            doc.figure(Figure(f"{col}-run{i + 1}", png, f"{r.label}: λ_{col} on clean versus noisy training "
                              "labels" + (" and over sweeps" if len(hist) > 1 else "")))
            m = int(noisy.sum())
            lowest = np.argsort(values, kind="stable")[:m]
            table.append([r.label, col, _fmt(m), _fmt(float(noisy.mean()), 3),
                          _fmt(float(values[~noisy].mean()), 3), _fmt(float(values[noisy].mean()), 3),
                          _fmt(auc(values, ~noisy), 3), _fmt(float(noisy[lowest].mean()), 3)])
    if table:
        doc.table(["run", "column", "noisy", "noise rate", "mean λ | clean", "mean λ | noisy", "AUC clean > noisy",
                   "noisy in lowest"], table)
    if not shown:
        doc.para("No run with a learned λ_CE (CE/KD baselines keep Λ constant).")


def _rules(doc: Document, runs: list[RunData]) -> None:
    """Rule-denoising runs only (a ``rules.pt`` beside Λ): trust per term and per LF on the unlabelled rows."""
    from amal.analysis import rules as ra

    loaded = [(r, ra.load_rule_run(r.student_dir)) for r in runs]
    loaded = [(r, rr) for r, rr in loaded if rr is not None and r.learned]
    if not loaded:
        return
    doc.heading(SECTION_RULES)
    doc.para("Unlabelled rows only, judged against their gold labels (which no method saw). 'right' means: the "
             "label model's label (λ_lm, λ_lm_soft), teacher 1's prediction (λ_kd) or the LF's own vote "
             "(λ_lf:…) equals the gold label. AUC: probability that a random right row has a larger λ than a "
             "random wrong one; 'within class': the same inside each gold class, averaged (on imbalanced data a "
             "wrong signal is often just the minority class, which the meta-objective may upweight as a whole).")
    table = []
    for i, (r, rr) in enumerate(loaded):
        rows = ra.trust_rows(rr)
        table += [[r.label, t["column"], t["criterion"], _fmt(t["n"]), _fmt(t["share_right"], 3),
                   _fmt(t["mean_right"], 3), _fmt(t["mean_wrong"], 3), _fmt(t["auc"], 3),
                   _fmt(t["auc_within_class"], 3)] for t in rows]
        for col in ("lm", "lm_soft"):
            png = ra.plot_lm_lambda([(r.label, rr)], col)
            if png:
                doc.figure(Figure(f"rules-{col}-run{i + 1}", png, f"{r.label}: λ_{col} by label-model correctness "
                                  "and against LF agreement"))
        png = ra.plot_lf_trust(rows, f"{r.label}: per-LF trust")
        if png:
            doc.figure(Figure(f"rules-lf-run{i + 1}", png, f"{r.label}: mean λ of each LF's term where the LF is "
                              "right versus wrong"))
    if table:
        doc.table(["run", "column", "right means", "rows", "share right", "mean λ | right", "mean λ | wrong",
                   "AUC right > wrong", "AUC within class"], table)


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# -- command line -----------------------------------------------------------------------------------------------


def _report_command(args: argparse.Namespace) -> int:
    paths = build_report(args.run_dirs, out_dir=args.out, title=args.title)
    print(f"html: {paths['html']}")
    print(f"markdown: {paths['markdown']}  (PNG figures beside it)")
    return 0


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``amal report RUN_DIR [RUN_DIR ...] [--out DIR] [--title T]`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "report", help="HTML + Markdown report of finished runs: what Λ learned, accuracy curves",
        description="Write report.html (self-contained, figures embedded) and report.md (with PNG figures beside "
                    "it): a summary table, accuracy curves (one per run: give several run folders to compare "
                    "methods), Λ histograms over the sweeps, λ_KD against teacher correctness and confidence, "
                    "and λ_CE on noisy versus clean labels.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="a run folder (runs/<name>), its student/ folder, or a folder of student folders "
                        "(runs/demo)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: RUN_DIR/report, or report/ in the common parent of several)")
    p.add_argument("--title", metavar="T", default=None, help="page title (default: names the runs)")
    p.set_defaults(func=_report_command)
    return p

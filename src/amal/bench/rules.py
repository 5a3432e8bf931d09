"""``amal bench rules``: every rule-denoising method on the same splits, LFs, label model, end model and seeds.

Fairness (docs/method.md#fair-comparison): AMAL learns Λ against the labelled validation set, so the baselines
get it too — a supervised model on L ∪ V and a fixed mixture whose weight is chosen on validation. Every trained
method picks its epoch by validation macro-F1 (L ∪ V: the last epoch); the label models are scored as they are.
Each seed draws new splits; the label models and teacher 1 are fitted once per seed and shared.
"""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import yaml

from amal.bench.kd import mean_std, slug
from amal.errors import AmalError
from amal.train.config import to_dict
from amal.utils.memory import peak_extra_mb
from amal.weak.analysis import rule_lf_table
from amal.weak.config import RulesConfig, rules_config_from
from amal.weak.label_models import snorkel_available

FIXED_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass
class BenchMethod:
    label: str
    method: str
    label_model: str | None = None  # lm_only: which label model
    grid: bool = False  # fixed_mix: weight chosen on validation from FIXED_GRID


METHODS = [
    BenchMethod("Supervised (L)", "sup_l"),
    BenchMethod("Supervised (L∪V)", "sup_lv"),
    BenchMethod("MV (label model alone)", "lm_only", "mv"),
    BenchMethod("CAGE (label model alone)", "lm_only", "cage"),
    BenchMethod("Snorkel (label model alone)", "lm_only", "snorkel"),
    BenchMethod("LM + end model (hard labels)", "lm_end_hard"),
    BenchMethod("LM + end model (soft labels)", "lm_end_soft"),
    BenchMethod("JL (unit weights)", "jl"),
    BenchMethod("L2RW (LM labels)", "l2rw"),
    BenchMethod("Fixed mix (w grid on val)", "fixed_mix", grid=True),
    BenchMethod("AMAL-rules", "amal"),
    BenchMethod("AMAL-rules (soft LM)", "amal_soft"),
    BenchMethod("AMAL per-LF", "amal_lf"),
    BenchMethod("AMAL-JL", "amal_jl"),
]


@dataclass
class Dataset:
    name: str
    description: str
    data: dict[str, Any]
    default_seeds: int = 5


DATASETS = {
    "sms": Dataset("sms", "UCI SMS Spam Collection (5,574 messages, 13 % spam), the `sms` LF set",
                   {"name": "sms", "n_labelled": 100, "n_val": 300, "n_test": 1000}),
    "youtube": Dataset("youtube", "UCI YouTube Spam Collection (1,956 comments from 5 videos, 51 % spam), the "
                       "`youtube` LF set", {"name": "youtube", "n_labelled": 100, "n_val": 200, "n_test": 500}),
    "synthetic": Dataset("synthetic", "synthetic 2-class data (3,000 points, 10-d) with 8 LFs that are all wrong "
                         "on a known region (amal.weak.synthetic)",
                         {"name": "synthetic", "n_labelled": 60, "n_val": 200, "n_test": 500}, default_seeds=3),
}


@dataclass
class Row:
    method: str
    seed: int
    val_f1: float
    test_f1: float
    val_acc: float
    test_acc: float
    seconds: float
    peak_mb: float
    run_dir: str
    note: str = ""


@dataclass
class SeedInfo:
    sizes: dict[str, int]
    duplicates: int
    uncovered: int
    trust: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # method -> trust rows
    classes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # method -> mean λ by gold class


def bench_config(dataset: str, seed: int, out_dir: str, data_dir: str | None, epochs: int | None,
                 progress: bool, extra: list[str] | None = None, tag: str | None = None) -> RulesConfig:
    """The base config of one seed; ``extra``: ``key=value`` overrides applied to every method."""
    ds = DATASETS[dataset]
    data = {"data": {**ds.data, **({"path": data_dir} if data_dir else {})}, "threads": 1}
    over = [f"train.epochs={epochs}"] if epochs else []
    return rules_config_from(data, [*over, *(extra or [])], seed=seed, progress=progress,
                             out_dir=os.path.join(out_dir, _key(dataset, tag)), name=f"s{seed}")


def _key(dataset: str, tag: str | None) -> str:
    if tag is not None and (not tag or not all(c.isalnum() or c in "-_." for c in tag)):
        raise AmalError(f"--tag must be letters, digits, '-', '_' or '.', got {tag!r}")
    return dataset if not tag else f"{dataset}-{tag}"


def run_bench(dataset: str, seeds: int | None = None, out_dir: str = "runs/bench", data_dir: str | None = None,
              epochs: int | None = None, results_dir: str = "docs/results", device: str = "cpu",
              progress: bool = False, methods: list[str] | None = None, overrides: list[str] | None = None,
              tag: str | None = None, log: Callable[[str], None] = print) -> str:
    """Run every method × seed on one data set and write ``results_dir/rules_<dataset>.md`` (with ``tag``:
    ``rules_<dataset>-<tag>.md``, for a variant given by ``overrides`` applied to every method)."""
    from amal.distill.recipes import apply_threads
    from amal.weak.recipes import (
        fit_label_model,
        lm_metrics,
        load_rule_data,
        make_problem,
        train_method,
        train_teacher,
    )

    if dataset not in DATASETS:
        raise AmalError(f"unknown data set {dataset!r}; choose from {sorted(DATASETS)}")
    chosen = _chosen(methods)
    if dataset == "synthetic":
        data_dir = None  # generated data: no files
    n_seeds = seeds or DATASETS[dataset].default_seeds
    dev = torch.device(device)
    rows: list[Row] = []
    infos: list[SeedInfo] = []
    configs: dict[str, Any] = {}
    lf_tables: list[str] = []
    start = time.perf_counter()
    for seed in range(n_seeds):
        cfg = bench_config(dataset, seed, out_dir, data_dir, epochs, progress, overrides, tag)
        apply_threads(cfg)  # type: ignore[arg-type]
        root = os.path.join(cfg.out_dir, cfg.name)
        data = load_rule_data(cfg)
        info = SeedInfo(data.sizes(), data.n_duplicates, data.n_uncovered_dropped)
        infos.append(info)
        if seed == 0:
            lf_tables.append(_lf_table(data))
        fitted: dict[str, tuple[Any, float, float]] = {}  # label model -> (model, fit seconds, peak MB)
        for name in {cfg.label_model.name, *(m.label_model for m in chosen if m.label_model)}:
            if name == "snorkel" and not snorkel_available():
                continue
            opts = cfg.label_model.options if name == cfg.label_model.name else {}
            fitted[name] = _timed(partial(fit_label_model, name, opts, data, seed), dev)
        problem = make_problem(cfg, data, label_model=fitted[cfg.label_model.name][0])
        (problem.teacher, problem.teacher_result), _, teacher_mb = _timed(
            partial(train_teacher, cfg, problem, os.path.join(root, "teacher1"), dev), dev)
        for bm in chosen:
            run_dir = os.path.join(root, slug(bm.label))
            if bm.method == "lm_only":
                if bm.label_model not in fitted:
                    continue
                lm, secs, mb = fitted[bm.label_model]
                val, test = lm_metrics(lm, data, "val"), lm_metrics(lm, data, "test")
                rows.append(Row(bm.label, seed, val["macro_f1"], test["macro_f1"], val["acc"], test["acc"], secs, mb,
                                run_dir, note="label-model fit only"))
            elif bm.method == "sup_l":  # the same training as teacher 1: reuse it
                out = train_method("sup_l", cfg, problem, run_dir, dev)
                rows.append(_row(bm.label, seed, out.metrics, teacher_mb, run_dir, note="= teacher 1"))
            elif bm.grid:
                rows.append(_grid(bm, cfg, problem, run_dir, dev, train_method))
            else:
                out, _, mb = _timed(partial(train_method, bm.method, cfg, problem, run_dir, dev), dev)
                rows.append(_row(bm.label, seed, out.metrics, mb, run_dir))
                _trust(info, bm.method, run_dir, data.class_names)
            configs.setdefault(bm.label, to_dict(_method_cfg(cfg, bm)))
            r = rows[-1] if rows and rows[-1].method == bm.label else None
            if r is not None:
                log(f"{dataset:9s} seed {seed}  {bm.label:30s} val F1 {r.val_f1:6.4f}  test F1 {r.test_f1:.4f}  "
                    f"acc {r.test_acc:.4f}  {r.seconds:6.1f} s  {r.peak_mb:6.1f} MB {r.note}")
    path = write_results(dataset, rows, infos, n_seeds, configs, lf_tables, results_dir, out_dir,
                         time.perf_counter() - start, epochs, data_dir, overrides or [], tag)
    with open(os.path.join(out_dir, _key(dataset, tag), "rows.json"), "w", encoding="utf-8") as f:
        json.dump([r.__dict__ for r in rows], f, indent=1)
    return path


def _timed(fn: Callable[[], Any], dev: torch.device) -> tuple[Any, float, float]:
    """``fn()``, its wall time and its peak extra memory, measured in the same call."""
    t0 = time.perf_counter()
    out, mb = peak_extra_mb(fn, device=dev)
    return out, time.perf_counter() - t0, mb


def _chosen(methods: list[str] | None) -> list[BenchMethod]:
    if not methods:
        return list(METHODS)
    known = {m.method for m in METHODS} | {m.label for m in METHODS}
    bad = [m for m in methods if m not in known]
    if bad:
        raise AmalError(f"unknown method(s) {bad}; choose from {sorted({m.method for m in METHODS})}")
    return [m for m in METHODS if m.method in methods or m.label in methods]


def _method_cfg(cfg: RulesConfig, bm: BenchMethod) -> RulesConfig:
    c = copy.deepcopy(cfg)
    c.method = bm.method
    if bm.label_model:
        c.label_model.name = bm.label_model
    return c


def _row(label: str, seed: int, m: dict[str, Any], mb: float, run_dir: str, note: str = "") -> Row:
    return Row(label, seed, m["val_macro_f1"], m["test_macro_f1"], m["val_acc"], m["test_acc"], m["seconds"], mb,
               run_dir, note)


def _grid(bm: BenchMethod, cfg: RulesConfig, problem: Any, run_dir: str, dev: torch.device, train_method: Any
          ) -> Row:
    best: tuple[float, float, Any] | None = None
    total, peak = 0.0, 0.0
    for w in FIXED_GRID:
        c = copy.deepcopy(cfg)
        c.rules.fixed_weight = w
        out, _, mb = _timed(partial(train_method, "fixed_mix", c, problem, os.path.join(run_dir, f"w{w}"), dev), dev)
        total += out.metrics["seconds"]
        peak = max(peak, mb)
        if best is None or out.metrics["val_macro_f1"] > best[0]:
            best = (out.metrics["val_macro_f1"], w, out)
    assert best is not None
    row = _row(bm.label, cfg.seed, best[2].metrics, peak, best[2].run_dir, note=f"w={best[1]}")
    row.seconds = total
    return row


def _trust(info: SeedInfo, method: str, run_dir: str, class_names: list[str]) -> None:
    from amal.analysis.rules import class_rows, load_rule_run, trust_rows

    if method.startswith("amal"):
        rr = load_rule_run(run_dir)
        if rr is not None:
            info.trust[method] = trust_rows(rr)
            info.classes[method] = class_rows(rr, class_names)


def _lf_table(data: Any) -> str:
    """LF analysis of seed 0: accuracy on L (gold) and, for analysis only, on V and on U (hidden gold)."""
    return rule_lf_table(data, {"L": "labelled", "V": "val", "U, hidden gold": "unlabelled"}).to_markdown()


def _mean_std(values: list[float], digits: int = 4) -> str:
    return mean_std(values, digits, skip_nan=True)


def summarise(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for label in dict.fromkeys(r.method for r in rows):
        rs = [r for r in rows if r.method == label]
        out.append({"method": label, "n": len(rs), "test_f1": _mean_std([r.test_f1 for r in rs]),
                    "test_f1_mean": statistics.mean(r.test_f1 for r in rs),
                    "test_acc": _mean_std([r.test_acc for r in rs]), "val_f1": _mean_std([r.val_f1 for r in rs]),
                    "seconds": statistics.mean(r.seconds for r in rs), "peak_mb": max(r.peak_mb for r in rs),
                    "notes": ", ".join(sorted({r.note for r in rs if r.note}))})
    return out


TRUST_LABELS = {"amal": "AMAL-rules", "amal_soft": "AMAL-rules (soft LM)", "amal_lf": "AMAL per-LF",
                "amal_jl": "AMAL-JL"}


def _trust_table(infos: list[SeedInfo]) -> list[str]:
    """Mean ± std over seeds of the trust AUCs; per-LF columns summarised as their mean over LFs."""
    acc: dict[tuple[str, str, str], list[float]] = {}
    within: dict[tuple[str, str, str], list[float]] = {}
    means: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for info in infos:
        for method, rows in info.trust.items():
            for t in rows:
                col = "lf:* (mean over LFs)" if t["column"].startswith("lf:") else t["column"]
                key = (method, col, t["criterion"])
                acc.setdefault(key, []).append(t["auc"])
                within.setdefault(key, []).append(t["auc_within_class"])
                means.setdefault(key, []).append((t["mean_right"], t["mean_wrong"]))
    lines = ["| method | column | right means | mean λ \\| right | mean λ \\| wrong | AUC right > wrong | "
             "AUC within class |", "|---|---|---|---|---|---|---|"]
    for (method, col, crit), aucs in acc.items():
        mr = [a for a, _ in means[(method, col, crit)] if not math.isnan(a)]
        mw = [b for _, b in means[(method, col, crit)] if not math.isnan(b)]
        lines.append(f"| {TRUST_LABELS.get(method, method)} | {col} | {crit} | {_mean_std(mr, 3)} | "
                     f"{_mean_std(mw, 3)} | {_mean_std(aucs, 3)} | {_mean_std(within[(method, col, crit)], 3)} |")
    return lines


def _class_table(infos: list[SeedInfo]) -> list[str]:
    """Mean λ on U by gold class, mean ± std over seeds."""
    vals: dict[tuple[str, str, str], list[float]] = {}
    for info in infos:
        for method, rows in info.classes.items():
            for r in rows:
                col = "lf:* (mean over LFs)" if r["column"].startswith("lf:") else r["column"]
                vals.setdefault((method, col, r["class"]), []).append(r["mean"])
    lines = ["| method | column | gold class | mean λ on U |", "|---|---|---|---|"]
    lines += [f"| {TRUST_LABELS.get(m, m)} | {col} | {c} | {_mean_std(v, 3)} |" for (m, col, c), v in vals.items()]
    return lines


def write_results(dataset: str, rows: list[Row], infos: list[SeedInfo], n_seeds: int, configs: dict[str, Any],
                  lf_tables: list[str], results_dir: str, out_dir: str, seconds: float, epochs: int | None,
                  data_dir: str | None, overrides: list[str] | None = None, tag: str | None = None) -> str:
    ds = DATASETS[dataset]
    key = _key(dataset, tag)
    fig_dir = os.path.join(results_dir, f"rules_{key}")
    os.makedirs(fig_dir, exist_ok=True)
    cmd = f"amal bench rules --dataset {dataset} --seeds {n_seeds}" + (f" --epochs {epochs}" if epochs else "")
    if data_dir:
        cmd += " --data-dir DATA"
    cmd += "".join(f" --set {o}" for o in overrides or []) + (f" --tag {tag}" if tag else "")
    sizes = {s: statistics.mean(i.sizes[s] for i in infos) for s in infos[0].sizes}
    lines = [
        f"# Rule-denoising benchmark: `{key}`", "",
        f"{ds.description}. Generated by `{cmd}` ({seconds / 60:.1f} min on {torch.get_num_threads()} CPU "
        f"thread(s), torch {torch.__version__}"
        + (", DATA = the folder holding the data files" if data_dir else "") + "); do not edit by hand — rerun the "
        "command to regenerate.", "",
        f"Splits (mean over {n_seeds} seeds, stratified, new split per seed): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items())
        + f"; {infos[0].duplicates} duplicate texts dropped before splitting; "
        f"{statistics.mean(i.uncovered for i in infos):.0f} unlabelled rows without any LF vote dropped. "
        "Every trained method uses the same end model (logistic regression on TF-IDF features fitted on L ∪ U), "
        "budget and data order, and reports the test score at its best-validation-macro-F1 epoch (L∪V: last "
        "epoch); label models are scored on every test row (covered or not). Time is training wall time per seed "
        "(the grid row sums its grid); peak MB is the peak extra resident memory of one training.", "",
        "| method | test macro-F1 | test accuracy | val macro-F1 | time s | peak MB | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    summ = summarise(rows)
    best = max(s["test_f1_mean"] for s in summ)
    for s in summ:
        f1 = f"**{s['test_f1']}**" if math.isclose(s["test_f1_mean"], best) else s["test_f1"]
        lines.append(f"| {s['method']} | {f1} | {s['test_acc']} | {s['val_f1']} | {s['seconds']:.1f} | "
                     f"{s['peak_mb']:.0f} | {s['notes']} |")
    lines += _cost_lines(summ)
    if not snorkel_available():
        lines += ["", "Snorkel is not installed here, so its label-model row is missing (`pip install "
                  "'amal[snorkel]'`)."]
    lines += ["", "## What Λ learned", "",
              "On the unlabelled rows, against their gold labels (never seen by any method): mean final λ where "
              "the term's signal is right versus wrong, and AUC = P(λ of a random right row > λ of a random wrong "
              "row); 0.5 = no preference. 'Within class' is the same AUC inside each gold class, averaged: on "
              "imbalanced data a wrong signal is often simply the minority class, which the validation objective "
              "may upweight as a whole — the class table below shows whether it did. Mean ± std over seeds.", "",
              *_trust_table(infos), "", *_class_table(infos), ""]
    lines += _figures(rows, fig_dir, results_dir)
    lines += ["## LF analysis (seed 0)", "",
              "Coverage, overlaps and conflicts on the unlabelled set U. Accuracy = share of correct votes where the "
              "LF fires: on the labelled set L (what a user can check), on V, and on U with its hidden gold labels "
              "(analysis only).", "", *lf_tables, ""]
    lines += ["## Configuration", "", "<details><summary>Resolved config of every method (seed 0)</summary>", "",
              "```yaml", yaml.safe_dump(configs, sort_keys=False, allow_unicode=True).rstrip(), "```", "</details>",
              "", f"Run folders (not committed): `{os.path.join(out_dir, key)}/s<seed>/<method>/`; "
              "`amal report` on any of them draws the per-run pages.", ""]
    path = os.path.join(results_dir, f"rules_{key}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


REFERENCE = "LM + end model (hard labels)"


def _cost_lines(summ: list[dict[str, Any]]) -> list[str]:
    """Training time of every trained method relative to the plain LM + end-model pipeline, from the same run."""
    ref = next((s for s in summ if s["method"] == REFERENCE), None)
    if ref is None or ref["seconds"] <= 0:
        return []
    parts = [f"{s['method']} {s['seconds'] / ref['seconds']:.2f}×" for s in summ
             if s["seconds"] > 0 and s["method"] != REFERENCE and "label model alone" not in s["method"]]
    return ["", f"Training time relative to {REFERENCE} (mean per seed, measured in this run): " + "; ".join(parts)
            + "."]


def _figures(rows: list[Row], fig_dir: str, results_dir: str) -> list[str]:
    """λ_lm against LM correctness and LF agreement (AMAL-rules, seed 0) and per-LF trust (AMAL per-LF)."""
    from amal.analysis.rules import load_rule_run, plot_lf_trust, plot_lm_lambda, trust_rows

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    by = {(r.method, r.seed): r.run_dir for r in rows}
    figures = [
        ("AMAL-rules", "lambda_lm.png", lambda rr: plot_lm_lambda([("AMAL-rules", rr)], "lm"),
         "λ_lm by label-model correctness and LF agreement",
         "AMAL-rules, seed 0: λ_lm on U by whether the label model's label is right (left) and against the share "
         "of fired LFs that agree with it (right)."),
        ("AMAL per-LF", "lf_trust.png", lambda rr: plot_lf_trust(trust_rows(rr), "AMAL per-LF, seed 0: per-LF trust"),
         "per-LF trust",
         "AMAL per-LF, seed 0: mean λ of each LF's term on U where the LF votes the gold label versus where it "
         "does not."),
    ]
    out: list[str] = []
    for method, name, draw, alt, caption in figures:
        run_dir = by.get((method, 0))
        rr = load_rule_run(run_dir) if run_dir else None
        png = draw(rr) if rr is not None else None
        if png:
            path = os.path.join(fig_dir, name)
            with open(path, "wb") as f:
                f.write(png)
            out += [f"![{alt}]({os.path.relpath(path, results_dir)})", "", f"*{caption}*", ""]
    return out


def main_args(dataset: str, seeds: int | None, out_dir: str, data_dir: str | None, epochs: int | None,
              results_dir: str, device: str, methods: list[str] | None, overrides: list[str] | None = None,
              tag: str | None = None) -> int:
    if overrides and not tag:
        raise AmalError("--set changes every method: give the variant a --tag so it does not overwrite the main page")
    path = run_bench(dataset, seeds, out_dir, data_dir, epochs, results_dir, device, progress=sys.stderr.isatty(),
                     methods=methods, overrides=overrides, tag=tag)
    print(f"results: {path}")
    return 0


__all__ = ["DATASETS", "FIXED_GRID", "METHODS", "BenchMethod", "Row", "bench_config", "main_args", "run_bench",
           "summarise", "write_results"]

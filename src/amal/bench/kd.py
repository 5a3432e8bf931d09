"""``amal bench kd``: every method of a suite on the same splits, student, epochs and seeds.

Fairness rules (see docs/method.md): AMAL uses validation labels, so baselines may too ("train ∪ val" and a
λ grid chosen on validation); checkpoints are chosen by validation accuracy (train ∪ val runs, which have no
held-out validation, report their last epoch); time and peak memory are measured in the same run.
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
from typing import Any

import torch
import yaml

from amal.analysis import build_report
from amal.data.datasets import DataSplits, TensorData, load_splits
from amal.distill.recipes import apply_threads, prepare_teachers, train_student
from amal.errors import AmalError
from amal.train.config import RunConfig, config_from_overrides, to_dict
from amal.utils.memory import peak_extra_mb

KD_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass
class Method:
    """A row of the results table: a label and the config overrides that make it."""

    label: str
    overrides: list[str]
    trainval: bool = False  # train on train ∪ val (last epoch reported)
    grid: bool = False  # fixed-λ KD, λ chosen on validation from KD_GRID


@dataclass
class Scenario:
    name: str
    description: str
    overrides: list[str]
    methods: list[Method]


@dataclass
class Suite:
    name: str
    description: str
    base: list[str]  # overrides applied to RunConfig() for every scenario
    scenarios: list[Scenario]
    default_seeds: int = 3


CE = Method("CE", ["method=ce"])
CE_TV = Method("CE (train∪val)", ["method=ce"], trainval=True)
KD = Method("KD λ=0.9", ["method=kd"])
KD_GRID_M = Method("KD (λ grid on val)", ["method=kd"], grid=True)
KD_TV = Method("KD (train∪val)", ["method=kd"], trainval=True)
AMAL = Method("AMAL", ["method=amal"])
AMAL_ONLINE = Method("AMAL (online)", ["method=amal", "amal.schedule=online", "amal.warmup=1"])
AMAL_LOOKAHEAD = Method("AMAL (lookahead)", ["method=amal", "amal.engine=lookahead"])
SUPERLOSS = Method("SuperLoss", ["method=superloss"])
L2RW = Method("L2RW", ["method=l2rw"])
KD_UNIFORM = Method("KD uniform", ["method=kd_uniform"])
DGKD = Method("DGKD", ["method=dgkd"])
TAKD = Method("TAKD", ["method=takd"])
CLEAN = [CE, CE_TV, KD, KD_GRID_M, KD_TV, AMAL]
NOISY = [*CLEAN, SUPERLOSS, L2RW]
MULTI = [CE, KD_UNIFORM, DGKD, AMAL]

_AMAL_BASE = ["amal.update=normalized", "amal.warmup=2", "amal.every=2"]


def _suites() -> dict[str, Suite]:
    digits = Suite(
        "digits", "scikit-learn digits, MLP[256,256] teacher → MLP[32] student (smoke suite)",
        ["data.name=digits", "model={name: mlp, hidden: [32]}", "train.epochs=30", "teachers.0.train.epochs=30",
         "threads=1", *_AMAL_BASE],
        [Scenario("clean", "clean labels", [], [*CLEAN, AMAL_ONLINE, AMAL_LOOKAHEAD, TAKD]),
         Scenario("noise40", "40 % symmetric label noise on the training split", ["data.noise=0.4"], NOISY)],
        default_seeds=3,
    )
    gmm = _synthetic_suite("synthetic-gmm", "the paper's 20-class Gaussian mixture (10,000 points, 14 features)")
    spiral = _synthetic_suite("synthetic-spiral", "the paper's 4-class spiral (1,500 points per class)",
                              optim="optimizer: adam, lr: 0.01, weight_decay: 0.0")  # SGD: the MLP[16] underfits
    teacher = "{model: {name: cnn, width: [16, 32]}, train: {epochs: 6, batch_size: 128}}"
    fm_base = ["data.name=fashion-mnist", "data.n_train=5000", "model={name: cnn, width: [4, 8]}",
               f"teachers=[{teacher}]", "train.epochs=6", "train.batch_size=128", "threads=2", *_AMAL_BASE]
    fmnist = Suite(
        "fashion-mnist", "Fashion-MNIST (a 5,000-image training subset, sized for 2 CPU cores; full test set), "
        "CNN[16,32] teacher → CNN[4,8] student",
        fm_base,
        [
            Scenario("clean", "clean labels", [], CLEAN),
            Scenario("noise40", "40 % symmetric label noise on the training split (teacher trained on it too)",
                     ["data.noise=0.4"], NOISY),
            Scenario("bad-teacher", "two teachers, the second trained on 80 % noisy labels",
                     [f"teachers=[{teacher}, {teacher[:-1]}, noise: 0.8}}]"],
                     MULTI),
        ],
    )
    return {s.name: s for s in (digits, fmnist, gmm, spiral, _paper_suite())}


def _paper_suite() -> Suite:
    """The paper's CIFAR-100 configurations, for users with GPUs (here only ``--dry-run`` is exercised)."""
    sched = "scheduler: multistep, milestones: [150, 180, 210], lr: 0.1, batch_size: 128"

    def teacher(model: str, extra: str = "") -> str:
        return f"{{model: {model}, train: {{epochs: 200, {sched}}}{extra}}}"

    base = ["data.name=cifar100", "data.augment=true", "data.normalize=true", "train.epochs=200",
            "train.lr=0.1", "train.batch_size=128", "train.scheduler=multistep", "train.milestones=[150, 180, 210]",
            "train.weight_decay=5e-4", "kd.temperature=4", "kd.weight=0.9", "amal.update=sgd", "amal.lambda_lr=1500",
            "amal.warmup=0", "amal.every=10", "amal.fit=3", "amal.inner_steps=5", "amal.val_batch=1000"]
    methods = [CE, KD, AMAL]
    return Suite(
        "cifar100-paper", "the paper's CIFAR-100 settings (SGD lr 0.1, 200 epochs, milestones 150/180/210, "
        "batch 128, T = 4, λ0 = 0.9, every = 10, fit = 3, validation batch 1000) — needs a GPU",
        base,
        [Scenario("resnet110-resnet8", "ResNet110 → ResNet8",
                  [f"teachers=[{teacher('{name: resnet110}')}]", "model={name: resnet8}"], methods),
         Scenario("resnet56-resnet8", "ResNet56 → ResNet8",
                  [f"teachers=[{teacher('{name: resnet56}')}]", "model={name: resnet8}"], methods),
         Scenario("wrn16-3-wrn16-1", "WRN-16-3 → WRN-16-1",
                  [f"teachers=[{teacher('{name: wrn, width: 3}')}]", "model={name: wrn, width: 1}"], methods),
         Scenario("wrn16-8-snapshots", "four WRN-16-8 snapshots (epochs 50/100/150/200) → WRN-16-1",
                  [f"teachers=[{teacher('{name: wrn, width: 8}', ', snapshots: [50, 100, 150, 200]')}]",
                   "model={name: wrn, width: 1}"], methods)],
        default_seeds=3,
    )


def dry_run_overrides(tmp: str) -> list[str]:
    """Everything built, a few steps run: generated CIFAR-format data, 1–2 epochs, tiny splits."""
    from amal.data.cifar import write_fake_cifar

    write_fake_cifar(tmp, "cifar100", n_train=64, n_test=16)
    return [f"data.data_dir={tmp}", "train.epochs=1", "train.batch_size=32", "amal.val_batch=8"]


def _dry_run_teachers(cfg: RunConfig) -> None:
    for t in cfg.teachers:  # as many epochs as snapshots, one snapshot per epoch
        t.train.epochs, t.train.batch_size = max(2, len(t.snapshots)), 32
        t.snapshots = list(range(1, len(t.snapshots) + 1))


def _synthetic_suite(data: str, description: str, optim: str = "optimizer: sgd") -> Suite:
    train = [f"train.{kv.split(':')[0].strip()}={kv.split(':')[1].strip()}" for kv in optim.split(",")]
    return Suite(
        data, f"{description}; MLP[128,128] teacher → MLP[16] student ({optim})",
        [f"data.name={data}", "model={name: mlp, hidden: [16]}", *train,
         f"teachers=[{{model: {{name: mlp, hidden: [128, 128]}}, train: {{epochs: 20, batch_size: 128, {optim}}}}}]",
         "takd.assistants=[{name: mlp, hidden: [48]}]",
         "train.epochs=20", "train.batch_size=128", "threads=1", *_AMAL_BASE],
        [Scenario("clean", "clean labels", [], CLEAN),
         Scenario("noise40", "40 % symmetric label noise on the training split", ["data.noise=0.4"], NOISY)],
    )


SUITES = _suites()


def build_config(base: list[str], overrides: list[str], dry_run: bool = False, **top: Any) -> RunConfig:
    cfg = config_from_overrides([*base, *overrides], **top)
    if dry_run:
        _dry_run_teachers(cfg)
    cfg.validate()
    return cfg


def _trainval(splits: DataSplits) -> DataSplits:
    """Train on train ∪ val; the validation set stays (for logging) but is no longer held out."""
    s = copy.copy(splits)
    s.train = TensorData(torch.cat([splits.train.x, splits.val.x]), torch.cat([splits.train.y, splits.val.y]))
    s.noise_mask = torch.cat([splits.noise_mask, torch.zeros(len(splits.val), dtype=torch.bool)])
    s.clean_train_y = torch.cat([splits.clean_train_y, splits.val.y])
    return s


@dataclass
class RunRow:
    scenario: str
    method: str
    seed: int
    val_acc: float
    test_acc: float
    seconds: float
    peak_mb: float
    run_dir: str
    note: str = ""
    curves: list[dict[str, Any]] = field(default_factory=list)


def _one(cfg: RunConfig, splits: DataSplits, teachers: list, run_dir: str, device: torch.device,
         trainval: bool) -> tuple[Any, float]:
    data = _trainval(splits) if trainval else splits
    return peak_extra_mb(lambda: train_student(cfg, data, teachers, run_dir, device), device=device)


def run_method(method: Method, cfg: RunConfig, splits: DataSplits, teachers: list, run_dir: str,
               device: torch.device, scenario: str) -> RunRow:
    if method.grid:
        best: tuple[float, float, Any, float, float] | None = None
        total_s, peak = 0.0, 0.0
        for w in KD_GRID:
            c = copy.deepcopy(cfg)
            c.kd.weight = w
            out, mb = _one(c, splits, teachers, os.path.join(run_dir, f"w{w}"), device, False)
            total_s += out.result.seconds
            peak = max(peak, mb)
            if best is None or out.result.best_val_acc > best[0]:
                best = (out.result.best_val_acc, w, out, 0.0, 0.0)
        assert best is not None
        out = best[2]
        return RunRow(scenario, method.label, cfg.seed, out.result.best_val_acc, float(out.result.test_acc_at_best),
                      total_s, peak, out.run_dir, note=f"λ={best[1]}", curves=_curves(out.result.rows))
    out, mb = _one(cfg, splits, teachers, run_dir, device, method.trainval)
    r = out.result
    if method.trainval:  # no held-out validation (val is in the training set): report the last epoch
        val, test = math.nan, float(r.rows[-1]["test_acc"])
    else:
        val, test = r.best_val_acc, float(r.test_acc_at_best)
    return RunRow(scenario, method.label, cfg.seed, val, test, r.seconds, mb, out.run_dir, curves=_curves(r.rows))


def _curves(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"epoch": r["epoch"], "val_acc": r["val_acc"], "test_acc": r["test_acc"]} for r in rows]


def run_suite(name: str, seeds: int | None = None, out_dir: str = "runs/bench", device: str = "cpu",
              epochs: int | None = None, results_dir: str = "docs/results", progress: bool = False,
              log: Callable[[str], None] = print, dry_run: bool = False, scenarios: list[str] | None = None) -> str:
    """Run every scenario × method × seed of a suite and write ``results_dir/kd_<name>.md``.

    ``dry_run``: generated data, tiny splits, 1–2 epochs, one seed — checks that everything builds and runs
    (the results are meaningless and go to ``out_dir/<name>/dry-run-results``)."""
    if name not in SUITES:
        raise AmalError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    suite = SUITES[name]
    n_seeds = seeds or suite.default_seeds
    extra_dry: list[str] = []
    if dry_run:
        if name != "cifar100-paper":
            raise AmalError("--dry-run is for the cifar100-paper suite (the others run on real data here)")
        n_seeds, epochs = 1, None
        results_dir = os.path.join(out_dir, name, "dry-run-results")
        extra_dry = dry_run_overrides(os.path.join(out_dir, name, "dry-run-data"))
    dev = torch.device(device)
    rows: list[RunRow] = []
    configs: dict[str, Any] = {}
    reports: list[str] = []
    start = time.perf_counter()
    chosen = suite.scenarios
    if scenarios:
        known = [sc.name for sc in suite.scenarios]
        bad = [n for n in scenarios if n not in known]
        if bad:
            raise AmalError(f"unknown scenario(s) {bad} in suite {name!r}; choose from {known}")
        chosen = [sc for sc in suite.scenarios if sc.name in scenarios]
    for sc in chosen:
        for seed in range(n_seeds):
            extra = [f"train.epochs={epochs}"] if epochs else []
            base_cfg = build_config(suite.base, [*sc.overrides, *extra, *extra_dry], dry_run, seed=seed,
                                    device=device, progress=progress, name=f"{sc.name}-s{seed}",
                                    out_dir=os.path.join(out_dir, name))
            apply_threads(base_cfg)
            splits = load_splits(base_cfg.data, seed)
            root = os.path.join(base_cfg.out_dir, base_cfg.name)
            os.makedirs(root, exist_ok=True)
            teachers = prepare_teachers(base_cfg, splits, root, dev)
            dirs = []
            for m in sc.methods:
                cfg = build_config(suite.base, [*sc.overrides, *extra, *extra_dry, *m.overrides], dry_run, seed=seed,
                                   device=device,
                                   progress=progress, name=base_cfg.name, out_dir=base_cfg.out_dir)
                configs.setdefault(f"{sc.name} / {m.label}", to_dict(cfg))
                row = run_method(m, cfg, splits, teachers, os.path.join(root, slug(m.label)), dev, sc.name)
                rows.append(row)
                dirs.append(row.run_dir)
                log(f"{sc.name:12s} seed {seed}  {m.label:22s} val {row.val_acc:6.4f}  test {row.test_acc:.4f}  "
                    f"{row.seconds:6.1f} s  {row.peak_mb:7.1f} MB {row.note}")
            reports.append(build_report(dirs, out_dir=os.path.join(root, "report"),
                                        title=f"{name} / {sc.name} / seed {seed}")["html"])
    path = write_results(suite, rows, n_seeds, configs, results_dir, time.perf_counter() - start, epochs, reports)
    with open(os.path.join(out_dir, name, "rows.json"), "w", encoding="utf-8") as f:
        json.dump([r.__dict__ for r in rows], f, indent=1)
    return path


def slug(label: str) -> str:
    """A method label as a folder name: ``"KD (λ grid on val)"`` → ``kd-lambda-grid-on-val``."""
    keep = [c.lower() if c.isascii() and c.isalnum() else "-" for c in label.replace("λ", "lambda")]
    return "-".join(p for p in "".join(keep).split("-") if p)


def mean_std(values: list[float], digits: int = 4, skip_nan: bool = False) -> str:
    """``mean ± std`` over seeds (``n/a`` if any value is NaN, unless ``skip_nan`` drops them)."""
    if skip_nan:
        values = [v for v in values if not math.isnan(v)]
    if not values or any(math.isnan(v) for v in values):
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def summarise(rows: list[RunRow]) -> list[dict[str, Any]]:
    out = []
    keys = list(dict.fromkeys((r.scenario, r.method) for r in rows))
    for sc, m in keys:
        rs = [r for r in rows if r.scenario == sc and r.method == m]
        out.append({
            "scenario": sc, "method": m, "n": len(rs),
            "test": mean_std([r.test_acc for r in rs]), "val": mean_std([r.val_acc for r in rs]),
            "test_mean": statistics.mean(r.test_acc for r in rs),
            "seconds": statistics.mean(r.seconds for r in rs), "peak_mb": max(r.peak_mb for r in rs),
            "notes": ", ".join(sorted({r.note for r in rs if r.note})),
        })
    return out


def write_results(suite: Suite, rows: list[RunRow], n_seeds: int, configs: dict[str, Any], results_dir: str,
                  seconds: float, epochs: int | None, reports: list[str]) -> str:
    os.makedirs(results_dir, exist_ok=True)
    fig_dir = os.path.join(results_dir, f"kd_{suite.name}")
    os.makedirs(fig_dir, exist_ok=True)
    cmd = f"amal bench kd --suite {suite.name} --seeds {n_seeds}" + (f" --epochs {epochs}" if epochs else "")
    lines = [
        f"# KD benchmark: `{suite.name}`",
        "",
        f"{suite.description}. Generated by `{cmd}` ({seconds / 60:.1f} min on "
        f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}); do not edit by hand — rerun the "
        "command to regenerate.",
        "",
        "Test accuracy is mean ± std over seeds at the epoch with the best validation accuracy (train∪val rows: "
        "last epoch, since they have no held-out validation; their val acc is n/a). Every method uses the same "
        "splits, student, teacher(s), epochs and seeds. Time is the training wall time per seed (the λ-grid row "
        "sums its grid); peak MB is the peak extra resident memory of one training run.",
        "",
    ]
    for sc in suite.scenarios:
        summ = [s for s in summarise(rows) if s["scenario"] == sc.name]
        if not summ:
            continue
        best = max(s["test_mean"] for s in summ)
        lines += [f"## {sc.name}: {sc.description}", "",
                  "| method | test acc | val acc | time s | peak MB | notes |", "|---|---|---|---|---|---|"]
        for s in summ:
            test = f"**{s['test']}**" if math.isclose(s["test_mean"], best) else s["test"]
            lines.append(f"| {s['method']} | {test} | {s['val']} | {s['seconds']:.1f} | {s['peak_mb']:.0f} | "
                         f"{s['notes']} |")
        png = _plot_curves([r for r in rows if r.scenario == sc.name], os.path.join(fig_dir, f"{sc.name}.png"),
                           f"{suite.name} / {sc.name}")
        if png:
            lines += ["", f"![accuracy curves]({os.path.relpath(png, results_dir)})"]
        lines.append("")
    lines += ["## Configuration", "", "Base overrides of this suite (applied to the `amal train` defaults):", "",
              "```", *suite.base, "```", "", "<details><summary>Resolved config of every method</summary>", "",
              "```yaml", yaml.safe_dump(configs, sort_keys=False).rstrip(), "```", "</details>", ""]
    lines += ["## Analysis reports", "",
              "One `amal report` page per scenario and seed (Λ histograms over sweeps, λ_KD against teacher "
              "correctness and confidence, λ_CE on noisy vs clean instances, accuracy curves). They live in the "
              "run folders, which are written by the command and not committed:", "",
              *[f"- `{r}`" for r in reports], ""]
    path = os.path.join(results_dir, f"kd_{suite.name}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _plot_curves(rows: list[RunRow], path: str, title: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for method in dict.fromkeys(r.method for r in rows):
        rs = [r for r in rows if r.method == method]
        n = min(len(r.curves) for r in rs)
        if n == 0:
            continue
        mean = [statistics.mean(r.curves[e]["test_acc"] for r in rs) for e in range(n)]
        ax.plot(range(n), mean, label=method)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main_args(suite: str, seeds: int | None, out_dir: str, device: str, epochs: int | None,
              results_dir: str, dry_run: bool = False, scenarios: list[str] | None = None) -> int:
    path = run_suite(suite, seeds, out_dir, device, epochs, results_dir, progress=sys.stderr.isatty(),
                     dry_run=dry_run, scenarios=scenarios)
    print(f"results: {path}")
    return 0

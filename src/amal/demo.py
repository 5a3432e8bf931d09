"""``amal demo``: teacher → student with CE, fixed-λ KD and AMAL on identical splits and budgets."""

from __future__ import annotations

import copy
import json
import os
import shutil
from typing import Any

import torch

from amal.data.datasets import load_splits
from amal.distill.recipes import apply_threads, prepare_teachers, train_student
from amal.train.config import RunConfig, TeacherConfig, to_dict
from amal.train.trainer import evaluate

METHODS = ("ce", "kd", "amal")
LABELS = {"ce": "CE", "kd": "KD", "amal": "AMAL"}


def demo_config(seed: int = 0, noise: float = 0.0, epochs: int = 40, out_dir: str = "runs") -> RunConfig:
    cfg = RunConfig(name="demo", out_dir=out_dir, seed=seed, threads=1)  # tiny MLPs: threads only add overhead
    cfg.data.noise = noise
    cfg.model = {"name": "mlp", "hidden": [32]}
    cfg.teachers = [TeacherConfig(model={"name": "mlp", "hidden": [256, 256]})]
    cfg.teachers[0].train.epochs = 40
    cfg.train.epochs = epochs
    cfg.amal.warmup = 2
    cfg.amal.every = 5
    cfg.amal.update = "normalized"
    return cfg


def run_demo(cfg: RunConfig) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Train the teacher once, then each student method; return one row per method."""
    device = torch.device(cfg.device)
    apply_threads(cfg)
    run_dir = os.path.join(cfg.out_dir, cfg.name)
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    splits = load_splits(cfg.data, cfg.seed)
    teachers = prepare_teachers(cfg, splits, run_dir, device)
    rows = []
    for method in METHODS:
        mcfg = copy.deepcopy(cfg)
        mcfg.method = method
        out = train_student(mcfg, splits, teachers, os.path.join(run_dir, method), device)
        rows.append({
            "method": LABELS[method], "val_acc": out.result.best_val_acc, "test_acc": out.result.test_acc_at_best,
            "best_epoch": out.result.best_epoch, "seconds": out.result.seconds,
        })
    teacher_info = {
        "val_acc": evaluate(teachers[0], splits.val, device)["acc"],
        "test_acc": evaluate(teachers[0], splits.test, device)["acc"],
    }
    with open(os.path.join(run_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"config": to_dict(cfg), "rows": rows, "teacher": teacher_info}, f, indent=2)
    with open(os.path.join(run_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(format_table(rows, markdown=True) + "\n")
    return rows, teacher_info


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    head = ["method", "val acc", "test acc", "wall s"]
    body = [[r["method"], f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}", f"{r['seconds']:.1f}"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths]), *[fmt.format(*b) for b in body]])

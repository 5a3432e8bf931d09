"""Knowledge-distillation recipes on top of the core: which terms, which Λ, which teachers."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from amal.core.mixer import AMAL
from amal.data.augment import build_augment
from amal.data.datasets import DataSplits, _symmetric_noise, load_splits
from amal.distill.baselines import BASELINES, kd_train_fn, make_baseline, takd_chain
from amal.distill.teachers import load_teacher, save_teacher, train_classifier
from amal.errors import AmalError
from amal.losses import CrossEntropy, Distillation, LossTerm
from amal.models import build_model
from amal.train.checkpoint import atomic_save
from amal.train.config import RunConfig, TeacherConfig, to_dict
from amal.train.trainer import FitResult, Trainer, make_optimizer


def apply_threads(cfg: RunConfig) -> None:
    if cfg.threads is not None:
        if cfg.threads < 1:
            raise AmalError(f"threads must be >= 1, got {cfg.threads}")
        torch.set_num_threads(cfg.threads)


def kd_terms(teachers: list[nn.Module], temperature: float, cache_size: int | None = None) -> list[LossTerm]:
    """CE plus one KD term per teacher (columns ``kd`` or ``kd0, kd1, …``); ``cache_size`` caches teacher
    logits per instance (only without augmentation)."""
    names = ["kd"] if len(teachers) == 1 else [f"kd{i}" for i in range(len(teachers))]
    return [CrossEntropy(),
            *[Distillation(t, temperature, name=n, cache_size=cache_size) for t, n in zip(teachers, names)]]


def make_meta(cfg: RunConfig, model: nn.Module, teachers: list[nn.Module], splits: DataSplits,
              optimizer: torch.optim.Optimizer) -> AMAL:
    """CE and KD are AMAL with a ``fixed`` schedule, so all methods share one code path."""
    n = len(splits.train)
    if cfg.method in BASELINES:
        return make_baseline(cfg.method, model, teachers, n, splits.val, optimizer, weight=cfg.kd.weight,
                             temperature=cfg.kd.temperature, **cfg.baseline)
    if cfg.method == "ce":
        return AMAL(model, [CrossEntropy()], n, None, optimizer=optimizer, schedule="fixed",
                    lambda_init={"ce": 1.0})
    terms = kd_terms(teachers, cfg.kd.temperature, cache_size=None if cfg.data.augment else n)
    if cfg.method == "kd":  # several teachers: their uniform mixture, λ_KD split equally
        w = cfg.kd.weight
        init = {t.name: (1.0 - w) if t.supervised else w / len(teachers) for t in terms}
        return AMAL(model, terms, n, None, optimizer=optimizer, schedule="fixed", lambda_init=init)
    return AMAL(model, terms, n, splits.val, optimizer=optimizer, config=cfg.amal)


def prepare_teachers(cfg: RunConfig, splits: DataSplits, run_dir: str, device: torch.device) -> list[nn.Module]:
    """Load each configured teacher, or train it (once) inside ``run_dir/teacher<i>``."""
    out: list[nn.Module] = []
    for i, tc in enumerate(cfg.teachers):
        out.extend(_teacher(i, tc, cfg, splits, run_dir, device))
    return out


def _teacher(i: int, tc: TeacherConfig, cfg: RunConfig, splits: DataSplits, run_dir: str,
             device: torch.device) -> list[nn.Module]:
    """One teacher, or one per snapshot epoch (``tc.snapshots``) of a single training run."""
    if tc.path:
        return [load_teacher(tc.path, device, splits.input_shape, splits.n_classes)]
    paths = [os.path.join(run_dir, f"teacher{i}-epoch{e}.pt") for e in tc.snapshots] or [
        os.path.join(run_dir, f"teacher{i}.pt")]
    if all(os.path.exists(p) for p in paths):
        return [load_teacher(p, device) for p in paths]
    torch.manual_seed(cfg.seed + 101 * (i + 1))
    model = build_model(tc.model, splits.input_shape, splits.n_classes).to(device)
    labels = noisy_teacher_labels(tc, splits, cfg.seed, i)

    def snapshot(epoch: int) -> None:
        if epoch + 1 in tc.snapshots:
            save_teacher(model, tc.model, splits.input_shape, splits.n_classes,
                         os.path.join(run_dir, f"teacher{i}-epoch{epoch + 1}.pt"), info={"epoch": epoch + 1})

    res = train_classifier(model, splits, tc.train, seed=cfg.seed + i + 1, run_dir=os.path.join(run_dir, f"teacher{i}"),
                           progress=cfg.progress, desc=f"teacher{i}", train_labels=labels,
                           augment=build_augment(cfg.data.augment), on_epoch_end=snapshot)
    if not tc.snapshots:
        save_teacher(model, tc.model, splits.input_shape, splits.n_classes, paths[0], info=res.as_dict())
        return [model.eval()]
    return [load_teacher(p, device) for p in paths]


def train_assistants(cfg: RunConfig, splits: DataSplits, teachers: list[nn.Module], run_dir: str,
                     device: torch.device) -> nn.Module:
    """TAKD's chain up to the last assistant (each stage by uniform KD from the previous, same budget)."""
    if not teachers:
        raise AmalError("method 'takd' needs a teacher")
    specs = cfg.takd.assistants
    if not specs:
        raise AmalError("method 'takd' needs at least one assistant in takd.assistants")
    fn = kd_train_fn(splits, cfg.train, weight=cfg.kd.weight, temperature=cfg.kd.temperature, seed=cfg.seed,
                     run_dir=os.path.join(run_dir, "takd"), progress=cfg.progress,
                     augment=build_augment(cfg.data.augment))

    def build(spec: dict[str, Any]) -> nn.Module:
        return build_model(spec, splits.input_shape, splits.n_classes).to(device)

    torch.manual_seed(cfg.seed + 17)
    res = takd_chain(teachers[0], specs[:-1], specs[-1], fn, build=build)
    return res.student.eval()


@torch.no_grad()
def save_instances(path: str, splits: DataSplits, teachers: list[nn.Module], device: torch.device) -> None:
    """What the analysis needs per training instance: given and clean labels, the noise mask, and each
    teacher's logits (to relate λ_KD to teacher correctness and confidence)."""
    logits = []
    for t in teachers:
        t.eval()
        logits.append(torch.cat([t(splits.train.x[s : s + 1024].to(device)).float().cpu()
                                 for s in range(0, len(splits.train), 1024)]))
    atomic_save({"y": splits.train.y.clone(), "clean_y": splits.clean_train_y.clone(),
                 "noise_mask": splits.noise_mask.clone(), "teacher_logits": logits}, path)


def noisy_teacher_labels(tc: TeacherConfig, splits: DataSplits, seed: int, i: int) -> torch.Tensor | None:
    """Training labels with ``tc.noise`` extra symmetric noise (to make a deliberately bad teacher), or None."""
    if not tc.noise:
        return None
    rng = np.random.default_rng(seed + 7919 * (i + 1))
    return _symmetric_noise(splits.train.y, tc.noise, splits.n_classes, rng)[0]


@dataclass
class StudentRun:
    method: str
    result: FitResult
    run_dir: str
    lambda_stats: dict[str, Any]


def train_student(cfg: RunConfig, splits: DataSplits, teachers: list[nn.Module], run_dir: str,
                  device: torch.device, resume: bool = False) -> StudentRun:
    label = cfg.method
    if cfg.method == "takd":  # teacher → assistant(s) → student: the student distils from the last assistant
        teachers = [train_assistants(cfg, splits, teachers, run_dir, device)]
        cfg = copy.deepcopy(cfg)
        cfg.method = "kd"
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, splits.input_shape, splits.n_classes).to(device)
    opt = make_optimizer(model, cfg.train)
    meta = make_meta(cfg, model, teachers, splits, opt)
    trainer = Trainer(model, meta, opt, splits.train, splits.val, cfg.train, test=splits.test, run_dir=run_dir,
                      seed=cfg.seed, progress=cfg.progress, desc=cfg.method, augment=build_augment(cfg.data.augment))
    result = trainer.fit(resume=resume)
    meta.table.save(os.path.join(run_dir, "lambda.pt"))
    save_instances(os.path.join(run_dir, "instances.pt"), splits, teachers, device)
    stats = meta.table.stats()
    summary = {"method": label, **result.as_dict(), "lambda": stats,
               "sweep_records": [h.__dict__ for h in meta.history]}
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return StudentRun(label, result, run_dir, stats)


def run(cfg: RunConfig, resume: bool = False) -> StudentRun:
    """``amal train``: data, teachers (loaded or trained), then the configured student method."""
    device = torch.device(cfg.device)
    apply_threads(cfg)
    run_dir = os.path.join(cfg.out_dir, cfg.name)
    ckpt = os.path.join(run_dir, "student", "checkpoint.pt")
    if os.path.exists(ckpt) and not resume:
        raise AmalError(f"run folder {run_dir} already has a checkpoint; pass --resume or choose another name")
    os.makedirs(run_dir, exist_ok=True)
    cfg_path = os.path.join(run_dir, "config.yaml")
    if resume and os.path.exists(cfg_path):
        _check_same_config(cfg_path, cfg)
    with open(cfg_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)
    splits = load_splits(cfg.data, cfg.seed)
    teachers = prepare_teachers(cfg, splits, run_dir, device) if cfg.method != "ce" else []
    return train_student(cfg, splits, teachers, os.path.join(run_dir, "student"), device, resume=resume)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(d, list):
        out = {}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out or {prefix.rstrip("."): []}
    return {prefix.rstrip("."): d}


def _check_same_config(path: str, cfg: RunConfig) -> None:
    """A resumed run must be the same run: refuse silently changed settings (progress display aside)."""
    with open(path, encoding="utf-8") as f:
        saved = _flatten(yaml.safe_load(f) or {})
    now = _flatten(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k) and k != "progress")
    if diff:
        raise AmalError(f"--resume with a different config (changed: {', '.join(diff[:5])}); start a new run name")

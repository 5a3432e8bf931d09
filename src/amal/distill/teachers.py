"""Train, save and load teachers. Saved files hold only tensors and plain values, so they load with
``weights_only=True``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from amal.core.mixer import AMAL
from amal.data.augment import build_augment
from amal.data.datasets import DataSplits, TensorData
from amal.errors import AmalError
from amal.losses import CrossEntropy
from amal.models import build_model
from amal.train.checkpoint import atomic_save, safe_load
from amal.train.config import OptimConfig, RunConfig
from amal.train.trainer import FitResult, Trainer, make_optimizer


def train_classifier(
    model: nn.Module, splits: DataSplits, cfg: OptimConfig, *, seed: int, run_dir: str | None, progress: bool,
    desc: str, train_labels: torch.Tensor | None = None, on_epoch_end: Callable[[int], None] | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> FitResult:
    """Plain cross-entropy training, best checkpoint by validation accuracy."""
    train = splits.train if train_labels is None else TensorData(splits.train.x, train_labels)
    opt = make_optimizer(model, cfg)
    meta = AMAL(model, [CrossEntropy()], len(train), None, optimizer=opt, schedule="fixed",
                lambda_init={"ce": 1.0})
    trainer = Trainer(model, meta, opt, train, splits.val, cfg, test=splits.test, run_dir=run_dir, seed=seed,
                      progress=progress, desc=desc, augment=augment)
    result = trainer.fit(resume=run_dir is not None, on_epoch_end=on_epoch_end)
    trainer.load_best()
    return result


def save_teacher(model: nn.Module, spec: dict[str, Any], input_shape: tuple[int, ...], n_classes: int,
                 path: str, info: dict[str, Any] | None = None) -> None:
    atomic_save({"model_spec": dict(spec), "input_shape": list(input_shape), "n_classes": n_classes,
                 "state_dict": model.state_dict(), "info": info or {}}, path)


def load_teacher(path: str, device: torch.device | str = "cpu", input_shape: tuple[int, ...] | None = None,
                 n_classes: int | None = None) -> nn.Module:
    """Load a saved teacher; with ``input_shape``/``n_classes``, refuse one made for other data."""
    if not os.path.exists(path):
        raise AmalError(f"teacher file not found: {path}")
    st = safe_load(path, map_location=device)
    if not isinstance(st, dict) or "model_spec" not in st:
        raise AmalError(f"{path} is not a teacher saved by amal (no model_spec)")
    if input_shape is not None and tuple(st["input_shape"]) != tuple(input_shape):
        raise AmalError(f"teacher {path} expects inputs of shape {tuple(st['input_shape'])} but the data has "
                        f"{tuple(input_shape)}")
    if n_classes is not None and int(st["n_classes"]) != n_classes:
        raise AmalError(f"teacher {path} has {st['n_classes']} outputs but the data has {n_classes} classes")
    model = build_model(st["model_spec"], tuple(st["input_shape"]), int(st["n_classes"]))
    model.load_state_dict(st["state_dict"])
    return model.to(device).eval()


def teach(cfg: RunConfig, out_path: str, snapshots: list[int] | None = None) -> dict[str, Any]:
    """``amal teach``: train ``cfg.teachers[0]`` on ``cfg.data`` and save it (plus snapshots at chosen
    epochs, usable together as several teachers)."""
    from amal.data.datasets import load_splits
    from amal.distill.recipes import apply_threads, noisy_teacher_labels
    from amal.train.trainer import evaluate

    device = torch.device(cfg.device)
    apply_threads(cfg)
    tc = cfg.teachers[0]
    splits = load_splits(cfg.data, cfg.seed)
    bad = [e for e in snapshots or [] if not 1 <= e <= tc.train.epochs]
    if bad:
        raise AmalError(f"snapshot epochs {bad} outside 1..{tc.train.epochs}")
    torch.manual_seed(cfg.seed)
    model = build_model(tc.model, splits.input_shape, splits.n_classes).to(device)
    stem = out_path[:-3] if out_path.endswith(".pt") else out_path
    written: list[str] = []

    def snapshot(epoch: int) -> None:
        if snapshots and epoch + 1 in snapshots:
            path = f"{stem}-epoch{epoch + 1}.pt"
            save_teacher(model, tc.model, splits.input_shape, splits.n_classes, path, info={"epoch": epoch + 1})
            written.append(path)

    res = train_classifier(model, splits, tc.train, seed=cfg.seed, run_dir=f"{stem}.run", progress=cfg.progress,
                           desc="teacher", on_epoch_end=snapshot, augment=build_augment(cfg.data.augment),
                           train_labels=noisy_teacher_labels(tc, splits, cfg.seed, 0))
    save_teacher(model, tc.model, splits.input_shape, splits.n_classes, out_path, info=res.as_dict())
    return {"path": out_path, "snapshots": written, "val_acc": evaluate(model, splits.val, device)["acc"],
            "test_acc": evaluate(model, splits.test, device)["acc"], "best_epoch": res.best_epoch}

"""Train, save and load teachers. Saved files hold only tensors and plain values, so they load with
``weights_only=True``."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from amal.core.mixer import AMAL
from amal.data.datasets import DataSplits, TensorData
from amal.errors import AmalError
from amal.losses import CrossEntropy
from amal.models import build_model
from amal.train.checkpoint import atomic_save, safe_load
from amal.train.config import OptimConfig
from amal.train.trainer import FitResult, Trainer, make_optimizer


def train_classifier(
    model: nn.Module, splits: DataSplits, cfg: OptimConfig, *, seed: int, run_dir: str | None, progress: bool,
    desc: str, train_labels: torch.Tensor | None = None,
) -> FitResult:
    """Plain cross-entropy training, best checkpoint by validation accuracy."""
    train = splits.train if train_labels is None else TensorData(splits.train.x, train_labels)
    opt = make_optimizer(model, cfg)
    meta = AMAL(model, [CrossEntropy()], len(train), None, optimizer=opt, schedule="fixed",
                lambda_init={"ce": 1.0})
    trainer = Trainer(model, meta, opt, train, splits.val, cfg, test=splits.test, run_dir=run_dir, seed=seed,
                      progress=progress, desc=desc)
    result = trainer.fit(resume=run_dir is not None)
    trainer.load_best()
    return result


def save_teacher(model: nn.Module, spec: dict[str, Any], input_shape: tuple[int, ...], n_classes: int,
                 path: str, info: dict[str, Any] | None = None) -> None:
    atomic_save({"model_spec": dict(spec), "input_shape": list(input_shape), "n_classes": n_classes,
                 "state_dict": model.state_dict(), "info": info or {}}, path)


def load_teacher(path: str, device: torch.device | str = "cpu") -> nn.Module:
    if not os.path.exists(path):
        raise AmalError(f"teacher file not found: {path}")
    st = safe_load(path, map_location=device)
    if not isinstance(st, dict) or "model_spec" not in st:
        raise AmalError(f"{path} is not a teacher saved by amal (no model_spec)")
    model = build_model(st["model_spec"], tuple(st["input_shape"]), int(st["n_classes"]))
    model.load_state_dict(st["state_dict"])
    return model.to(device).eval()

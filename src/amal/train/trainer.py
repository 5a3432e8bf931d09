"""The training loop shared by every method: CE, fixed-λ KD and AMAL differ only in their ``AMAL``
object (a ``fixed`` schedule keeps Λ constant), so budgets, data order and evaluation are identical."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from amal.core.mixer import AMAL
from amal.data.datasets import Indexed, TensorData, TensorLoader
from amal.errors import AmalError
from amal.train.checkpoint import atomic_save, safe_load
from amal.train.config import OptimConfig
from amal.train.logger import MetricsLog


def make_optimizer(model: nn.Module, cfg: OptimConfig,
                   groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
    """The configured optimiser over ``model``'s trainable parameters, or over explicit parameter ``groups``
    (dicts with ``params`` and optional per-group ``lr`` / ``weight_decay``; the first group's learning rate
    is the η AMAL's look-ahead uses)."""
    params: Any = groups if groups is not None else [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise AmalError(f"unknown optimizer {cfg.optimizer!r}; choose from ['sgd', 'adam']")


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.scheduler == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise AmalError(f"unknown scheduler {cfg.scheduler!r}; choose from ['cosine', 'multistep', 'none']")


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, device: torch.device, batch_size: int = 1024) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy in eval mode."""
    was = model.training
    model.eval()
    loss, n = 0.0, 0
    preds, golds = [], []
    for x, y in DataLoader(data, batch_size=batch_size):
        x, y = x.to(device), y.to(device)
        out = model(x).float()
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        preds.append(out.argmax(1).cpu())
        golds.append(y.cpu())
        n += int(y.shape[0])
    model.train(was)
    if not n:
        return {"acc": 0.0, "macro_f1": 0.0, "loss": 0.0}
    p, g = torch.cat(preds), torch.cat(golds)
    return {"acc": float((p == g).double().mean()), "macro_f1": macro_f1(p, g), "loss": loss / n}


def macro_f1(pred: Tensor, gold: Tensor) -> float:
    """Mean over the classes present in ``gold`` or ``pred`` of ``2·TP / (2·TP + FP + FN)`` (scikit-learn's
    ``f1_score(average="macro")``)."""
    pred, gold = torch.as_tensor(pred).long().flatten(), torch.as_tensor(gold).long().flatten()
    classes = torch.unique(torch.cat([pred, gold]))
    if classes.numel() == 0:
        return 0.0
    f1 = []
    for c in classes:
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        f1.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(f1) / len(f1))


SELECT_METRICS = ("acc", "macro_f1")


@dataclass
class FitResult:
    """``best_*``: at the epoch chosen by the validation metric ``select`` (``acc`` unless configured)."""

    best_epoch: int
    best_val_acc: float
    test_acc_at_best: float | None
    final_val_acc: float
    seconds: float
    sweeps: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    select: str = "acc"
    best_val_score: float = math.nan  # the validation ``select`` metric at the best epoch
    test_at_best: dict[str, float] = field(default_factory=dict)  # every test metric at the best epoch

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("rows")
        return d


class Trainer:
    """Trains ``model`` with the λ-weighted loss of ``meta``; the checkpoint is chosen by validation
    accuracy and every epoch ends with an atomic checkpoint from which a run resumes exactly."""

    def __init__(
        self, model: nn.Module, meta: AMAL, optimizer: torch.optim.Optimizer, train: Dataset, val: Dataset,
        cfg: OptimConfig, *, test: Dataset | None = None, run_dir: str | None = None, seed: int = 0,
        progress: bool = False, desc: str = "train", augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    ) -> None:
        if len(train) == 0:  # type: ignore[arg-type]
            raise AmalError("the training set is empty")
        if len(val) == 0:  # type: ignore[arg-type]
            raise AmalError("the validation set is empty")
        self.model, self.meta, self.opt, self.cfg = model, meta, optimizer, cfg
        self.train_base, self.train_set, self.val_set, self.test_set = train, Indexed(train), val, test
        self.sched = make_scheduler(optimizer, cfg)
        self.run_dir, self.seed, self.progress, self.desc = run_dir, seed, progress, desc
        self.device = next(model.parameters()).device
        self.log = MetricsLog(run_dir)
        self.best_state: dict[str, Tensor] | None = None
        self.augment = augment  # applied to training steps only, seeded per epoch (resume stays exact)

    def _loader(self, epoch: int, stream: int) -> Iterable[Any]:
        """A fresh, seeded order per (epoch, stream): resuming at any epoch reproduces the data order."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7 + stream)
        pin = self.device.type == "cuda"
        if isinstance(self.train_base, TensorData) and self.cfg.num_workers == 0:
            return TensorLoader(self.train_base, self.cfg.batch_size, generator=g, pin_memory=pin)
        return DataLoader(self.train_set, batch_size=self.cfg.batch_size, shuffle=True, generator=g,
                          num_workers=self.cfg.num_workers, pin_memory=pin)

    @property
    def checkpoint_path(self) -> str | None:
        return os.path.join(self.run_dir, "checkpoint.pt") if self.run_dir else None

    def _save(self, epoch: int, best: dict[str, Any], seconds: float) -> None:
        if self.checkpoint_path is None:
            return
        state = {
            "epoch": epoch, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "meta": self.meta.state_dict(),
            "torch_rng": torch.get_rng_state(), "python_rng": list(_py_rng_state()),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best": best, "rows": self.log.rows, "seconds": seconds,
        }
        if best.get("epoch") == epoch:  # best.pt first: a crash in between never pairs a checkpoint with a stale best
            atomic_save(self.model.state_dict(), os.path.join(self.run_dir, "best.pt"))  # type: ignore[arg-type]
        atomic_save(state, self.checkpoint_path)

    def _restore(self) -> tuple[int, dict[str, Any], float]:
        assert self.checkpoint_path is not None
        st = safe_load(self.checkpoint_path, map_location=self.device)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.meta.load_state_dict(st["meta"])
        torch.set_rng_state(st["torch_rng"].cpu())
        random.setstate(_py_rng_from_list(st["python_rng"]))
        if st["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in st["cuda_rng"]])
        self.log.reset(st["rows"])
        best_path = os.path.join(self.run_dir, "best.pt")  # type: ignore[arg-type]
        if os.path.exists(best_path):
            self.best_state = safe_load(best_path, map_location=self.device)
        return int(st["epoch"]) + 1, dict(st["best"]), float(st["seconds"])

    def fit(self, resume: bool = False, on_epoch_end: Callable[[int], None] | None = None) -> FitResult:
        select = self.cfg.select
        if select not in SELECT_METRICS:
            raise AmalError(f"select must be one of {list(SELECT_METRICS)}, got {select!r}")
        start_epoch, best, prior = 0, {"epoch": -1, "val_acc": -1.0, "score": -1.0, "test_acc": None}, 0.0
        if resume and self.checkpoint_path and os.path.exists(self.checkpoint_path):
            start_epoch, best, prior = self._restore()
        t0 = time.perf_counter()
        amp = self.cfg.amp and self.device.type == "cuda"
        bar = tqdm(range(start_epoch, self.cfg.epochs), desc=self.desc, disable=not self.progress, leave=False)
        for epoch in bar:
            lr = float(self.opt.param_groups[0]["lr"])
            ep_start = time.perf_counter()
            rec = self.meta.start_epoch(epoch, self._loader(epoch, 1), lr=lr)
            if rec is not None and self.run_dir is not None:  # Λ after every sweep, for the analysis report
                self.meta.table.save(os.path.join(self.run_dir, "lambda", f"epoch{epoch:04d}.pt"))
            self.model.train()
            tot_loss, tot_correct, n = 0.0, 0, 0
            term_sums: dict[str, float] = {}
            aug_gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7 + 2)
            for raw in self._loader(epoch, 0):
                if self.augment is not None:
                    raw = (self.augment(raw[0], aug_gen), raw[1], raw[2])
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                    loss, logits = self.meta.loss(raw, lr=lr)
                if not torch.isfinite(loss):
                    raise AmalError(f"training loss became {float(loss)} at epoch {epoch}; lower the learning rate")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                b = int(logits.shape[0])
                tot_loss += float(loss.detach()) * b
                tot_correct += int((logits.detach().argmax(1).cpu() == raw[1].cpu()).sum())
                n += b
                for name, value in self.meta.last_term_means.items():
                    term_sums[name] = term_sums.get(name, 0.0) + value * b
            self.sched.step()
            val = evaluate(self.model, self.val_set, self.device)
            test = evaluate(self.model, self.test_set, self.device) if self.test_set is not None else None
            row: dict[str, Any] = {
                "epoch": epoch, "lr": lr, "train_loss": tot_loss / n, "train_acc": tot_correct / n,
                "val_loss": val["loss"], "val_acc": val["acc"], "val_macro_f1": val["macro_f1"],
                "test_acc": test["acc"] if test else None, "test_macro_f1": test["macro_f1"] if test else None,
                "epoch_seconds": time.perf_counter() - ep_start,
                "sweep_seconds": rec.seconds if rec else 0.0,
            }
            for name, value in term_sums.items():
                row[f"loss_{name}"] = value / n
            for name in self.meta.table.columns:
                row[f"lambda_{name}_mean"] = float(self.meta.table.column(name).mean())
            if val[select] > best.get("score", best["val_acc"]):
                best = {"epoch": epoch, "val_acc": val["acc"], "score": val[select], "test_acc": row["test_acc"],
                        "test": {k: v for k, v in (test or {}).items()}}
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.log.append(row)
            self._save(epoch, best, prior + time.perf_counter() - t0)
            bar.set_postfix(val_acc=f"{val['acc']:.3f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch)
        rows = self.log.rows
        return FitResult(
            best_epoch=int(best["epoch"]), best_val_acc=float(best["val_acc"]), test_acc_at_best=best["test_acc"],
            final_val_acc=float(rows[-1]["val_acc"]) if rows else math.nan,
            seconds=prior + time.perf_counter() - t0, sweeps=len(self.meta.history), rows=rows,
            select=select, best_val_score=float(best.get("score", best["val_acc"])),
            test_at_best=best.get("test") or {},
        )

    def load_best(self) -> None:
        """Put the best-validation weights back into the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def _py_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _py_rng_from_list(state: list[Any]) -> tuple[Any, ...]:
    return (state[0], tuple(state[1]), state[2])

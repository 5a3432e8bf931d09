"""Built-in per-instance loss terms with closed-form logit gradients (supervised CE, distillation)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amal.core.batch import Batch
from amal.core.term import LossTerm, logit_grads, per_instance_matrix
from amal.errors import AmalError


class CrossEntropy(LossTerm):
    """Cross-entropy with the label (or with ``batch.extras[target]`` when given)."""

    supervised = True

    def __init__(self, name: str = "ce", target: str | None = None) -> None:
        self.name = name
        self.target = target

    def _labels(self, batch: Batch) -> Tensor:
        return batch.y if self.target is None else batch.extras[self.target]

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(logits, self._labels(batch), reduction="none")

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return ce_logit_grad(logits, self._labels(batch))


def ce_logit_grad(logits: Tensor, labels: Tensor) -> Tensor:
    """``softmax(z) − onehot(y)``: ∂CE/∂z per instance."""
    g = torch.softmax(logits, dim=1)
    g[torch.arange(g.shape[0], device=g.device), labels] -= 1.0
    return g


class FrozenTeacher(nn.Module):
    """A teacher that cannot leave eval mode or receive gradients, whatever the caller does
    (the authors' released KD baseline leaves teachers in train mode: BatchNorm statistics drift)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: ARG002 - always eval
        self.training = False
        self.module.eval()
        return self

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        self.module.eval()
        return self.module(x)


class Distillation(LossTerm):
    """``T² · KL(softmax(t/T) ‖ softmax(z/T))`` per instance, for one teacher."""

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, name: str = "kd",
                 cache_size: int | None = None) -> None:
        """``cache_size`` = N keeps each training instance's teacher logits after their first computation
        (indexed by ``batch.idx``): only valid when instance i always has the same input, i.e. without
        augmentation."""
        if temperature <= 0:
            raise AmalError(f"temperature must be positive, got {temperature}")
        self.teacher = teacher if isinstance(teacher, FrozenTeacher) else FrozenTeacher(teacher)
        self.T = float(temperature)
        self.name = name
        self.key = f"teacher_logits:{name}"
        self.cache_size = cache_size
        self._cache: Tensor | None = None
        self._cached: Tensor | None = None

    def prepare(self, batch: Batch) -> None:
        if self.key in batch.extras:
            return
        if self.cache_size is None:
            batch.extras[self.key] = self.teacher(batch.x).detach().float()
            return
        idx = batch.idx
        if self._cached is not None and bool(self._cached[idx].all()):
            assert self._cache is not None
            batch.extras[self.key] = self._cache[idx]
            return
        logits = self.teacher(batch.x).detach().float()
        if self._cache is None or self._cached is None:
            self._cache = torch.empty(self.cache_size, logits.shape[1], device=logits.device)
            self._cached = torch.zeros(self.cache_size, dtype=torch.bool, device=logits.device)
        self._cache[idx] = logits
        self._cached[idx] = True
        batch.extras[self.key] = logits

    def _teacher_prob(self, logits: Tensor, batch: Batch) -> Tensor:
        t = batch.extras.get(self.key)
        if t is None:
            raise AmalError(f"term {self.name!r}: teacher logits missing; call prepare(batch) first")
        if t.shape != logits.shape:
            raise AmalError(f"teacher logits {tuple(t.shape)} do not match student logits {tuple(logits.shape)}")
        return torch.softmax(t.to(logits.dtype) / self.T, dim=1)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        p_t = self._teacher_prob(logits, batch)
        log_p_s = torch.log_softmax(logits / self.T, dim=1)
        kl = (p_t * (torch.log(p_t.clamp_min(1e-30)) - log_p_s)).sum(dim=1)
        return self.T**2 * kl

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return self.T * (torch.softmax(logits / self.T, dim=1) - self._teacher_prob(logits, batch))


class CustomTerm(LossTerm):
    """Any per-instance loss ``fn(logits, batch) -> [B]``; its logit-gradient comes from autograd."""

    def __init__(
        self, name: str, fn: Callable[[Tensor, Batch], Tensor], supervised: bool = False,
        prepare: Callable[[Batch], None] | None = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.supervised = supervised
        self._prepare = prepare

    def prepare(self, batch: Batch) -> None:
        if self._prepare is not None:
            self._prepare(batch)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return self.fn(logits, batch)


__all__ = ["CrossEntropy", "CustomTerm", "ce_logit_grad", "Distillation", "FrozenTeacher", "LossTerm", "logit_grads",
           "per_instance_matrix"]

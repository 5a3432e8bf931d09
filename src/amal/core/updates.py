"""How a chunk's λ rows move given their hypergradient, chosen by name.

``sgd`` is the authors' rule (α = 1500 by default). Its effect depends on η, batch size, |V| and the
model, so ``normalized`` (the chunk's gradient divided by its RMS) and ``adam`` (per-entry Adam on
Λ) are scale-free alternatives.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from amal.errors import AmalError


class LambdaUpdate:
    name = "update"
    default_lr = 1.0

    def __init__(self, lr: float | None = None) -> None:
        self.lr = self.default_lr if lr is None else float(lr)
        if self.lr <= 0:
            raise AmalError(f"lambda_lr must be positive, got {self.lr}")

    def step(self, lam: Tensor, grad: Tensor, idx: Tensor, mask: Tensor | None = None) -> Tensor:
        """New rows for ``lam`` given ``grad``; ``mask`` ([n, K] bool) marks the learnable entries (None: all)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class SGDUpdate(LambdaUpdate):
    name = "sgd"
    default_lr = 1500.0

    def step(self, lam: Tensor, grad: Tensor, idx: Tensor, mask: Tensor | None = None) -> Tensor:
        return lam - self.lr * grad


class NormalizedUpdate(LambdaUpdate):
    """Step of RMS size ``lr`` per inner step, whatever the raw gradient's scale (RMS over the learnable
    entries)."""

    name = "normalized"
    default_lr = 0.05

    def step(self, lam: Tensor, grad: Tensor, idx: Tensor, mask: Tensor | None = None) -> Tensor:
        count = grad.numel() if mask is None else int(mask.sum())
        if count == 0:
            return lam
        rms = (grad.pow(2).sum() / count).sqrt()
        if rms <= 0:
            return lam
        return lam - self.lr * grad / rms


class AdamUpdate(LambdaUpdate):
    """Adam on Λ, with moment estimates kept per entry (indexed by instance) across chunks and sweeps."""

    name = "adam"
    default_lr = 0.02

    def __init__(self, lr: float | None = None, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-12):
        super().__init__(lr)
        self.betas, self.eps = betas, eps
        self.m: Tensor | None = None
        self.v: Tensor | None = None
        self.t: Tensor | None = None

    def bind(self, n: int, k: int, device: torch.device) -> None:
        self.m = torch.zeros(n, k, device=device, dtype=torch.float64)
        self.v = torch.zeros(n, k, device=device, dtype=torch.float64)
        self.t = torch.zeros(n, device=device, dtype=torch.float64)

    def step(self, lam: Tensor, grad: Tensor, idx: Tensor, mask: Tensor | None = None) -> Tensor:
        assert self.m is not None and self.v is not None and self.t is not None, "AdamUpdate.bind not called"
        b1, b2 = self.betas
        g = grad.to(torch.float64)
        m = self.m[idx] * b1 + (1 - b1) * g
        v = self.v[idx] * b2 + (1 - b2) * g * g
        t = self.t[idx] + 1
        self.m[idx], self.v[idx], self.t[idx] = m, v, t
        m_hat = m / (1 - b1 ** t[:, None])
        v_hat = v / (1 - b2 ** t[:, None])
        return lam - (self.lr * m_hat / (v_hat.sqrt() + self.eps)).to(lam.dtype)

    def state_dict(self) -> dict[str, Any]:
        if self.m is None or self.v is None or self.t is None:
            return {}
        return {k: v.detach().cpu().clone() for k, v in (("m", self.m), ("v", self.v), ("t", self.t))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.m is not None and self.v is not None and self.t is not None:
            self.m.copy_(state["m"])
            self.v.copy_(state["v"])
            self.t.copy_(state["t"])


UPDATES: dict[str, type[LambdaUpdate]] = {c.name: c for c in (SGDUpdate, NormalizedUpdate, AdamUpdate)}


def make_update(name: str, lr: float | None = None) -> LambdaUpdate:
    try:
        return UPDATES[name](lr)
    except KeyError:
        raise AmalError(f"unknown lambda update {name!r}; choose from {sorted(UPDATES)}") from None

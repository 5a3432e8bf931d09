"""The interface between the core and loss terms. A term answers three calls: ``prepare`` (compute
targets once per batch, e.g. teacher logits), ``per_instance`` (a [B] loss from the student's logits)
and ``logit_grad`` (∂ℓ/∂z in closed form, or ``None`` to let autograd derive it)."""

from __future__ import annotations

import torch
from torch import Tensor

from amal.core.batch import Batch
from amal.errors import AmalError


class LossTerm:
    """Base class. ``supervised`` marks terms that use the label (initialised to 1 − λ0)."""

    name: str = "term"
    supervised: bool = False

    def prepare(self, batch: Batch) -> None:  # noqa: B027 - optional hook
        """Add whatever targets this term needs to ``batch.extras`` (no gradients)."""

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor | None:
        return None


def per_instance_matrix(terms: list[LossTerm], logits: Tensor, batch: Batch) -> Tensor:
    """Stack every term's [B] loss into [B, K], checking shapes and finiteness."""
    cols = []
    for t in terms:
        v = t.per_instance(logits, batch)
        if v.shape != (logits.shape[0],):
            raise AmalError(
                f"loss term {t.name!r} returned shape {tuple(v.shape)}; expected per-instance [{logits.shape[0]}]"
                " (use reduction='none')"
            )
        cols.append(v)
    out = torch.stack(cols, dim=1)
    if not torch.isfinite(out).all():
        bad = [t.name for t, c in zip(terms, cols) if not torch.isfinite(c).all()]
        raise AmalError(f"NaN/inf in loss term(s) {bad}: check inputs, labels and learning rate")
    return out


def logit_grads(terms: list[LossTerm], logits: Tensor, batch: Batch) -> Tensor:
    """[B, K, C]: ∂ℓ_k/∂z per instance, closed form where the term has one, autograd otherwise."""
    out = []
    for t in terms:
        g = t.logit_grad(logits, batch)
        if g is None:
            with torch.enable_grad():
                z = logits.detach().requires_grad_(True)
                v = t.per_instance(z, batch)
                if v.shape != (z.shape[0],):
                    raise AmalError(f"loss term {t.name!r} must return a per-instance loss of shape [B]")
                (g,) = torch.autograd.grad(v.sum(), z, allow_unused=True)
                if g is None:
                    g = torch.zeros_like(z)
        out.append(g.detach())
    return torch.stack(out, dim=1)

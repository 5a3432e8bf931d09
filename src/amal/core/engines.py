"""Hypergradient engines: ∂L_V(θ'(Λ))/∂Λ for one chunk of training instances, chosen by name.

Both engines take a one-step (linearised) SGD look-ahead
``θ'(Λ) = θ − η Σ_i Σ_k λ_ik ∇θ ℓ_k(x_i; θ) / b_i`` and differentiate the validation
cross-entropy at θ' with respect to the chunk's rows of Λ. ``make_objective`` does the work that
does not depend on Λ once, and returns a function evaluated at every inner step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from amal.core.batch import Batch
from amal.core.term import per_instance_matrix
from amal.errors import AmalError

Objective = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass
class Chunk:
    """``fit`` consecutive mini-batches of training instances, seen at the current θ."""

    idx: Tensor  # [n] dataset indices
    inv_b: Tensor  # [n] 1 / (size of the instance's own mini-batch)
    features: Tensor | None = None  # [n, D] head inputs (last_layer)
    deltas: Tensor | None = None  # [n, K, C] ∂ℓ_k/∂z (last_layer)
    batches: list[Batch] = field(default_factory=list)  # raw batches (lookahead)


@dataclass
class ValSample:
    """A validation batch: cached features/logits at θ (last_layer) and/or raw inputs (lookahead)."""

    y: Tensor
    features: Tensor | None = None
    logits: Tensor | None = None
    x: Tensor | None = None


@dataclass
class EngineContext:
    model: nn.Module
    head: nn.Linear
    terms: list  # list[LossTerm]
    lookahead_bias: bool = True  # False: the head's bias stays fixed in the look-ahead step


class Engine:
    name = "engine"
    needs_features = False  # chunk.features/deltas and val.features/logits
    needs_inputs = False  # chunk.batches and val.x

    def make_objective(self, ctx: EngineContext, chunk: Chunk, val: ValSample, lr: float) -> Objective:
        raise NotImplementedError


ENGINES: dict[str, type[Engine]] = {}


def register_engine(cls: type[Engine]) -> type[Engine]:
    ENGINES[cls.name] = cls
    return cls


def make_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise AmalError(f"unknown engine {name!r}; choose from {sorted(ENGINES)}") from None


@register_engine
class LastLayerEngine(Engine):
    """Only the output layer moves in the look-ahead (docs/method.md), in kernel form.

    With ``G = (1 + H_V H_Bᵀ) / b`` the look-ahead logits are ``Z' = Z_V − η G (Σ_k λ_k ⊙ Δ_k)`` and
    ``∂L_V/∂λ_ik = −η · ((Gᵀ E)_i · Δ_ik)`` with ``E = ∂L_V/∂Z'``. Memory is O(|V|·|B| + |B|·K·C):
    no per-instance C×D gradient is ever formed. For narrow features (D < |V||B|/(|V|+|B|)) products with G
    are applied in factored form instead, without building G.
    """

    name = "last_layer"
    needs_features = True
    form = "auto"  # "dense" (build G once) | "factored" (never build G) | "auto": the cheaper of the two

    def use_factored(self, m: int, n: int, d: int) -> bool:
        """Per inner step the dense form costs ~2·m·n·C, the factored one ~2·(m + n)·D·C."""
        if self.form in ("dense", "factored"):
            return self.form == "factored"
        return (m + n) * d < m * n

    def make_objective(self, ctx: EngineContext, chunk: Chunk, val: ValSample, lr: float) -> Objective:
        assert chunk.features is not None and chunk.deltas is not None
        assert val.features is not None and val.logits is not None
        dtype = chunk.deltas.dtype
        h_b = chunk.features.to(dtype)
        h_v = val.features.to(dtype)
        inv_b = chunk.inv_b.to(dtype)
        bias = 1.0 if ctx.head.bias is not None and ctx.lookahead_bias else 0.0
        z_v = val.logits.to(dtype)
        deltas = chunk.deltas  # [n, K, C]
        m = z_v.shape[0]
        y_v = val.y
        rows = torch.arange(m, device=z_v.device)

        if self.use_factored(m, h_b.shape[0], h_b.shape[1]):
            def apply_g(s: Tensor) -> Tensor:  # G @ s without forming G: (1 + H_V H_Bᵀ) (inv_b ⊙ s)
                sb = inv_b[:, None] * s
                return bias * sb.sum(0, keepdim=True) + h_v @ (h_b.T @ sb)

            def apply_gt(e: Tensor) -> Tensor:  # Gᵀ @ e
                return inv_b[:, None] * (bias * e.sum(0, keepdim=True) + h_b @ (h_v.T @ e))
        else:
            g = (h_v @ h_b.T + bias) * inv_b[None, :]  # [m, n]

            def apply_g(s: Tensor) -> Tensor:
                return g @ s

            def apply_gt(e: Tensor) -> Tensor:
                return g.T @ e

        def objective(lam: Tensor) -> tuple[Tensor, Tensor]:
            step = torch.einsum("nk,nkc->nc", lam.to(dtype), deltas)
            z_new = z_v - lr * apply_g(step)
            log_p = torch.log_softmax(z_new, dim=1)
            val_loss = F.nll_loss(log_p, y_v)
            e = log_p.exp()
            e[rows, y_v] -= 1.0
            e /= m
            grad = -lr * torch.einsum("nc,nkc->nk", apply_gt(e), deltas)
            return grad, val_loss

        return objective


@register_engine
class LookaheadEngine(Engine):
    """Exact look-ahead through every trainable parameter (docs/method.md), by double backpropagation.

    Runs in eval mode (BatchNorm statistics frozen). About 3× a training step: the reference the fast
    engine is tested against, and the choice for small models whose body should move too.
    """

    name = "lookahead"
    needs_inputs = True

    def make_objective(self, ctx: EngineContext, chunk: Chunk, val: ValSample, lr: float) -> Objective:
        model = ctx.model
        if val.x is None or not chunk.batches:
            raise AmalError("the lookahead engine needs raw training and validation inputs")
        fixed = ctx.head.bias if not ctx.lookahead_bias and ctx.head is not None else None
        names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad and p is not fixed])
        buffers = dict(model.named_buffers())
        with torch.enable_grad():
            losses = torch.cat(
                [per_instance_matrix(ctx.terms, model(b.x), b) for b in chunk.batches], dim=0
            )  # [n, K], graph to θ
        inv_b = chunk.inv_b.to(losses.dtype)[:, None]

        def objective(lam: Tensor) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                lam_ = lam.detach().to(losses.dtype).requires_grad_(True)
                total = (lam_ * losses * inv_b).sum()
                grads = torch.autograd.grad(total, params, create_graph=True, retain_graph=True, allow_unused=True)
                new = {
                    n: (p - lr * g if g is not None else p) for n, p, g in zip(names, params, grads)
                }
                z_v = functional_call(model, {**buffers, **new}, (val.x,))
                val_loss = F.cross_entropy(z_v, val.y)
                (grad,) = torch.autograd.grad(val_loss, lam_)
            return grad.detach(), val_loss.detach()

        return objective

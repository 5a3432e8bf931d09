"""Knowledge-distillation baselines that the :class:`~amal.train.Trainer` trains exactly like AMAL.

Each baseline is an :class:`~amal.core.mixer.AMAL` subclass (or a plain ``AMAL`` with a ``fixed``
schedule), so it answers the calls the trainer makes — ``loss(raw, lr)``, ``start_epoch``, ``table``,
``last_term_means``, ``history``, ``state_dict`` / ``load_state_dict`` — and a run resumes exactly,
random draws included. ``table`` holds each baseline's *effective* per-instance weight, so the per-epoch
``lambda_<column>_mean`` log and ``lambda.pt`` mean something for every method:

============== =========================================================================================
``kd_uniform`` constant: ``ce`` = 1 − w, every teacher column w / M.
``dgkd``       constant: the expected weights (also 1 − w and w / M); ``last_weights`` holds the step's.
``superloss``  column ``superloss``: σ_i, the confidence SuperLoss gave instance i when last seen.
``l2rw``       column ``total``: b · w_i, instance i's look-ahead weight when last seen (uniform = 1).
============== =========================================================================================

TAKD is a chain of ordinary KD trainings: :func:`takd_chain`.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from amal.core.batch import Batch
from amal.core.engines import Chunk, EngineContext, ValSample
from amal.core.mixer import AMAL, SweepRecord
from amal.core.term import LossTerm, logit_grads, per_instance_matrix
from amal.core.weights import LambdaTable
from amal.errors import AmalError
from amal.losses import CrossEntropy, Distillation

_E = math.e


# ---------------------------------------------------------------------------------------------- helpers
def kd_columns(n_teachers: int) -> list[str]:
    """Column names of the teacher terms: ``kd`` for one teacher, ``kd0, kd1, …`` for several."""
    return ["kd"] if n_teachers == 1 else [f"kd{i}" for i in range(n_teachers)]


def _kd_terms(teachers: Sequence[nn.Module], temperature: float) -> list[LossTerm]:
    names = kd_columns(len(teachers))
    return [CrossEntropy(), *[Distillation(t, temperature, name=n) for t, n in zip(teachers, names)]]


def uniform_weights(n_teachers: int, weight: float) -> dict[str, float]:
    """``{"ce": 1 − weight, kd_m: weight / M}``: CE plus the mean of the teachers' KD terms."""
    if not 0.0 <= weight <= 1.0:
        raise AmalError(f"KD weight must lie in [0, 1], got {weight}")
    if n_teachers < 1:
        raise AmalError("a KD baseline needs at least one teacher")
    return {"ce": 1.0 - weight, **{c: weight / n_teachers for c in kd_columns(n_teachers)}}


def _hi(t: Tensor) -> Tensor:
    """Half-precision (autocast) tensors in float32; float32/float64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class MixedTerm(LossTerm):
    """A fixed mixture ``Σ_k w_k ℓ_k`` of several terms, as one per-instance term (one Λ column)."""

    def __init__(self, terms: Sequence[LossTerm], weights: Mapping[str, float], name: str = "total") -> None:
        self.terms = list(terms)
        names = [t.name for t in self.terms]
        if not names or len(set(names)) != len(names):
            raise AmalError(f"MixedTerm needs unique, non-empty term names, got {names}")
        if set(weights) != set(names):
            raise AmalError(f"MixedTerm weights must name exactly the terms {names}, got {sorted(weights)}")
        self.names = names
        self.weights = [float(weights[n]) for n in names]
        self.name = name
        self.supervised = any(t.supervised for t in self.terms)

    def prepare(self, batch: Batch) -> None:
        for t in self.terms:
            t.prepare(batch)

    def _w(self, like: Tensor) -> Tensor:
        return torch.tensor(self.weights, dtype=like.dtype, device=like.device)

    def components(self, logits: Tensor, batch: Batch) -> Tensor:
        """``[B, K]``: every component's per-instance loss."""
        return per_instance_matrix(self.terms, logits, batch)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return self.components(logits, batch) @ self._w(logits)

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        g = logit_grads(self.terms, logits, batch)  # [B, K, C], closed form or autograd per component
        return (g * self._w(g)[None, :, None]).sum(dim=1)


# ---------------------------------------------------------------------------------------------- 1. uniform KD
def kd_uniform(model: nn.Module, teachers: Sequence[nn.Module], n_train: int,
               optimizer: torch.optim.Optimizer | None = None, *, weight: float = 0.9,
               temperature: float = 4.0) -> AMAL:
    """Uniform multi-teacher KD: ``(1 − w)·CE + (w / M)·Σ_m KD_m``, a fixed-schedule ``AMAL``."""
    return AMAL(model, _kd_terms(teachers, temperature), n_train, None, optimizer=optimizer, schedule="fixed",
                lambda_init=uniform_weights(len(teachers), weight))


# ---------------------------------------------------------------------------------------------- 2. DGKD
class DGKD(AMAL):
    """Densely guided KD (Son et al., ICCV 2021): each training step drops every teacher's KD term
    independently with probability ``drop`` (at least one is always kept: if all were dropped, one is
    re-admitted uniformly at random) and averages the kept ones:
    ``loss_i = (1 − w)·CE_i + w · mean_{m kept} KD_m,i``.

    The draws come from a seeded ``torch.Generator`` saved in ``state_dict``. Every teacher is still
    evaluated each batch, so ``last_term_means`` logs all KD terms. ``table`` holds the expected weights
    (by symmetry w / M per teacher); ``last_kept`` / ``last_weights`` the ones of the last step.
    """

    def __init__(self, model: nn.Module, teachers: Sequence[nn.Module], n_train: int, *,
                 optimizer: torch.optim.Optimizer | None = None, weight: float = 0.9, temperature: float = 4.0,
                 drop: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= drop <= 1.0:
            raise AmalError(f"dgkd drop probability must lie in [0, 1], got {drop}")
        super().__init__(model, _kd_terms(teachers, temperature), n_train, None, optimizer=optimizer,
                         schedule="fixed", lambda_init=uniform_weights(len(teachers), weight))
        self.weight, self.drop, self.n_teachers = float(weight), float(drop), len(teachers)
        self.drop_generator = torch.Generator().manual_seed(seed)
        self.last_kept: Tensor | None = None
        self.last_weights: Tensor | None = None

    def draw(self) -> Tensor:
        """``[M]`` bool: which teachers this step keeps (never none)."""
        keep = torch.rand(self.n_teachers, generator=self.drop_generator) >= self.drop
        if not bool(keep.any()):
            keep[int(torch.randint(self.n_teachers, (1,), generator=self.drop_generator))] = True
        return keep

    def step_weights(self, keep: Tensor) -> Tensor:
        """``[1 + M]`` weights of the columns for a keep-mask."""
        kd = keep.to(torch.float64) * (self.weight / int(keep.sum()))
        return torch.cat([torch.tensor([1.0 - self.weight], dtype=torch.float64), kd])

    def weighted_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """The loss of one training step: draws a fresh keep-mask on every call."""
        batch.validate(self.table.n, n_classes=logits.shape[1])
        losses = per_instance_matrix(self.terms, logits.float(), batch)
        keep = self.draw()
        w = self.step_weights(keep).to(losses)
        self.last_kept, self.last_weights = keep, w.detach()
        self.last_term_means = dict(zip(self.table.columns, losses.detach().mean(0).tolist()))
        return (losses * w).sum(dim=1).mean()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "dgkd_generator": self.drop_generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.drop_generator.set_state(state["dgkd_generator"])


# ---------------------------------------------------------------------------------------------- 3. TAKD
@dataclass
class TakdStage:
    name: str  # "assistant0", …, "student"
    model: nn.Module  # the trained model of this stage
    teacher: nn.Module  # what it was distilled from (the previous stage's trained model)


@dataclass
class TakdResult:
    student: nn.Module
    assistants: list[nn.Module] = field(default_factory=list)
    stages: list[TakdStage] = field(default_factory=list)


def takd_chain(
    teacher: nn.Module, assistant_specs: Sequence[Any], student: Any,
    train_fn: Callable[[nn.Module, list[nn.Module]], nn.Module | None], *,
    build: Callable[[Any], nn.Module] | None = None,
) -> TakdResult:
    """Teacher-assistant KD (Mirzadeh et al., AAAI 2020): teacher → assistant_1 → … → assistant_n → student.

    Each stage calls ``train_fn(model, [previous])`` and distils from the *trained* model of the stage
    before; the teacher starts the chain. ``assistant_specs`` and ``student`` are ``nn.Module``s or specs
    that ``build(spec)`` turns into modules (e.g. ``lambda s: build_model(s, input_shape, n_classes)``).
    ``train_fn`` returns the trained model (``None``: it trained ``model`` in place). With the
    :func:`kd_train_fn` trainer, a model that served as a teacher is frozen in place (``FrozenTeacher``).
    """

    def make(spec: Any, what: str) -> nn.Module:
        if isinstance(spec, nn.Module):
            return spec
        if build is None:
            raise AmalError(f"TAKD {what} spec {spec!r} is not an nn.Module; pass build= to construct it")
        return build(spec)

    def train(model: nn.Module, prev: nn.Module, name: str) -> nn.Module:
        out = train_fn(model, [prev])
        out = model if out is None else out
        if not isinstance(out, nn.Module):
            raise AmalError(f"TAKD train_fn returned {type(out).__name__} for stage {name}; expected an nn.Module")
        stages.append(TakdStage(name, out, prev))
        return out

    stages: list[TakdStage] = []
    prev = teacher
    assistants = []
    for i, spec in enumerate(assistant_specs):
        prev = train(make(spec, "assistant"), prev, f"assistant{i}")
        assistants.append(prev)
    final = train(make(student, "student"), prev, "student")
    return TakdResult(final, assistants, stages)


def kd_train_fn(splits: Any, cfg: Any, *, weight: float = 0.9, temperature: float = 4.0, seed: int = 0,
                run_dir: str | None = None, progress: bool = False,
                augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                ) -> Callable[[nn.Module, list[nn.Module]], Any]:
    """A ``train_fn`` for :func:`takd_chain`: uniform KD from the given teachers with the ``Trainer``
    (``cfg``: an ``OptimConfig``; ``splits``: ``DataSplits``), best-validation weights restored. Stage
    ``i`` uses seed ``seed + i`` and ``run_dir/stage<i>`` (checkpointed and resumed when ``run_dir`` is
    set). ``train_fn.results`` collects each stage's ``FitResult``."""
    from amal.train.trainer import Trainer, make_optimizer

    results: list[Any] = []

    def train_fn(model: nn.Module, teachers: list[nn.Module]) -> nn.Module:
        i = len(results)
        opt = make_optimizer(model, cfg)
        meta = kd_uniform(model, teachers, len(splits.train), opt, weight=weight, temperature=temperature)
        stage_dir = os.path.join(run_dir, f"stage{i}") if run_dir else None
        trainer = Trainer(model, meta, opt, splits.train, splits.val, cfg, test=splits.test, run_dir=stage_dir,
                          seed=seed + i, progress=progress, desc=f"takd stage{i}", augment=augment)
        results.append(trainer.fit(resume=stage_dir is not None))
        trainer.load_best()
        return model

    train_fn.results = results  # type: ignore[attr-defined]
    return train_fn


# ---------------------------------------------------------------------------------------------- 4. SuperLoss
@torch.no_grad()
def lambert_w(y: Tensor, iters: int = 6) -> Tensor:
    """Principal branch ``W₀(y)`` (the ``w ≥ −1`` solving ``w·eʷ = y``) for ``y ≥ −1/e``, elementwise.

    Inputs below ``−1/e`` are clamped to it (``W = −1``). Computed in float64 (float32 on MPS) by Halley
    iterations from a branch-point series (near ``−1/e``), ``log1p`` (moderate) or ``log y − log log y``
    (large); six iterations reach float64 precision. No gradient.
    """
    work = torch.float32 if y.device.type == "mps" else torch.float64
    x = y.to(work).clamp_min(-1.0 / _E)
    p = torch.sqrt((2.0 * (_E * x + 1.0)).clamp_min(0.0))
    near = -1.0 + p - p * p / 3.0 + (11.0 / 72.0) * p**3
    lx = torch.log(x.clamp_min(_E))
    large = lx - torch.log(lx)
    w = torch.where(x < -0.25, near, torch.where(x > _E, large, torch.log1p(x.clamp_min(-0.25))))
    for _ in range(iters):
        ew = torch.exp(w)
        f = w * ew - x
        wp1 = w + 1.0
        step = f / (ew * wp1 - (w + 2.0) * f / (2.0 * wp1))
        w = w - torch.where(torch.isfinite(step), step, torch.zeros_like(step))
    w = torch.where(torch.isposinf(x), x, w)
    return w.to(y.dtype if y.is_floating_point() else work)


def superloss_sigma(loss: Tensor, tau: float | Tensor, lam: float) -> Tensor:
    """SuperLoss' optimal confidence ``σ* = exp(−W₀(½·max(−2/e, (ℓ − τ)/λ)))`` (no gradient), which
    minimises ``(ℓ − τ)σ + λ(log σ)²``; ``σ* ∈ (0, e]``, 1 at ``ℓ = τ``."""
    beta = (loss.detach() - tau) / lam
    return torch.exp(-lambert_w(0.5 * beta.clamp_min(-2.0 / _E)))


class SuperLoss(LossTerm):
    """SuperLoss (Castells, Weinzaepfel, Revaud, NeurIPS 2020) around a base term:
    ``(ℓ_i − τ)·σ_i + λ·(log σ_i)²`` with the closed-form σ_i of :func:`superloss_sigma`.

    σ is a constant in the backward pass (by the envelope theorem ∂/∂ℓ of the minimum over σ is σ*), so
    the logit gradient is ``σ_i · ∂ℓ_i/∂z``. ``tau``: a number (fixed), ``"log_c"`` (log of the number of
    classes, the paper's choice for classification) or ``"ema"``: an exponential moving average of the
    batch-mean base loss with ``momentum``; it moves only through :meth:`observe` (the ``SuperLossKD``
    baseline calls it after each training step) and, before the first ``observe``, is the batch's own mean.
    ``base`` defaults to ``CrossEntropy()``; a :class:`MixedTerm` wraps a KD mixture.
    """

    def __init__(self, base: LossTerm | None = None, lam: float = 1.0, tau: float | str = "ema",
                 momentum: float = 0.9, name: str = "superloss") -> None:
        if lam <= 0:
            raise AmalError(f"superloss lam must be positive, got {lam}")
        if not 0.0 <= momentum < 1.0:
            raise AmalError(f"superloss momentum must lie in [0, 1), got {momentum}")
        if isinstance(tau, str) and tau not in ("ema", "log_c"):
            raise AmalError(f"superloss tau must be a number, 'ema' or 'log_c', got {tau!r}")
        self.base = base if base is not None else CrossEntropy()
        self.lam, self.tau, self.momentum, self.name = float(lam), tau, float(momentum), name
        self.supervised = self.base.supervised
        self.tau_ema: float | None = None
        self.last_base: Tensor | None = None  # [B] base losses of the last per_instance call
        self.last_sigma: Tensor | None = None  # [B] their σ

    def current_tau(self, base_loss: Tensor, n_classes: int) -> float:
        if self.tau == "log_c":
            return math.log(n_classes)
        if self.tau == "ema":
            return self.tau_ema if self.tau_ema is not None else float(base_loss.detach().mean())
        return float(self.tau)  # type: ignore[arg-type]

    def observe(self, batch_mean: float) -> None:
        """Fold a training batch's mean base loss into the EMA of τ (no-op unless ``tau="ema"``)."""
        if self.tau == "ema":
            m = self.momentum
            self.tau_ema = float(batch_mean) if self.tau_ema is None else m * self.tau_ema + (1 - m) * float(batch_mean)

    def prepare(self, batch: Batch) -> None:
        self.base.prepare(batch)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        ell = self.base.per_instance(logits, batch)
        tau = self.current_tau(ell, logits.shape[1])
        sigma = superloss_sigma(ell, tau, self.lam).to(ell)
        self.last_base, self.last_sigma = ell.detach(), sigma
        return (ell - tau) * sigma + self.lam * torch.log(sigma) ** 2

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor | None:
        g = self.base.logit_grad(logits, batch)
        if g is None:
            return None  # autograd through per_instance gives the same σ·∂ℓ/∂z
        ell = self.base.per_instance(logits, batch)
        return g * superloss_sigma(ell, self.current_tau(ell, logits.shape[1]), self.lam).to(g)[:, None]

    def state_dict(self) -> dict[str, Any]:
        return {"tau_ema": self.tau_ema}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.tau_ema = None if state["tau_ema"] is None else float(state["tau_ema"])


class SuperLossKD(AMAL):
    """SuperLoss as a training method: the loss is the batch mean of :class:`SuperLoss` around CE (no
    teachers) or around the uniform KD mixture ``(1 − w)·CE + (w/M)·Σ KD_m`` (with teachers).

    ``table`` has one column, ``superloss``, holding σ_i from the last step that saw instance i (1 before
    that) — the per-instance confidence, analysed like Λ. It does not weight the loss. After each step
    the EMA of τ takes the batch's mean base loss; ``state_dict`` saves τ and σ.
    """

    def __init__(self, model: nn.Module, n_train: int, *, teachers: Sequence[nn.Module] = (),
                 optimizer: torch.optim.Optimizer | None = None, weight: float = 0.9, temperature: float = 4.0,
                 lam: float = 1.0, tau: float | str = "ema", momentum: float = 0.9) -> None:
        if teachers:
            base: LossTerm = MixedTerm(_kd_terms(teachers, temperature), uniform_weights(len(teachers), weight),
                                       name="kd_mix")
        else:
            base = CrossEntropy()
        self.term = SuperLoss(base, lam=lam, tau=tau, momentum=momentum)
        super().__init__(model, [self.term], n_train, None, optimizer=optimizer, schedule="fixed",
                         lambda_init={self.term.name: 1.0})
        self.table = LambdaTable(n_train, [self.term.name], {self.term.name: 1.0}, bounds=(0.0, _E),
                                 device=self.device)

    def weighted_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Mean SuperLoss of the batch (τ and σ not recorded)."""
        batch.validate(self.table.n, n_classes=logits.shape[1])
        losses = per_instance_matrix(self.terms, logits.float(), batch)[:, 0]
        assert self.term.last_base is not None and self.term.last_sigma is not None
        self.last_term_means = {self.term.name: float(losses.detach().mean()),
                                self.term.base.name: float(self.term.last_base.mean())}
        return losses.mean()

    def loss(self, raw: Any, lr: float | None = None) -> tuple[Tensor, Tensor]:
        batch = self.to_batch(raw)
        self.prepare(batch)
        logits = self.model(batch.x)
        loss = self.weighted_loss(logits, batch)
        assert self.term.last_base is not None and self.term.last_sigma is not None
        self.table.set_rows(batch.idx, self.term.last_sigma[:, None])
        self.term.observe(float(self.term.last_base.mean()))
        return loss, logits

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "superloss": self.term.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.term.load_state_dict(state["superloss"])


# ---------------------------------------------------------------------------------------------- 5. L2RW
def l2rw_weights(lam_grad: Tensor) -> Tensor:
    """``w_i = max(0, −g_i) / Σ_j max(0, −g_j)`` for the ε-gradient ``g``; uniform when all are zero."""
    w = (-lam_grad).clamp_min(0.0)
    s = w.sum()
    return w / s if float(s) > 0 else torch.full_like(w, 1.0 / w.numel())


class L2RW(AMAL):
    """Learning to reweight examples (Ren, Zeng, Yang, Urtasun, ICML 2018): every training step weights
    its instances by a one-step look-ahead on a validation batch.

    The per-instance loss is the fixed-λ total ``ℓ_i`` (CE, or ``(1 − w)·CE + (w/M)·Σ KD_m`` with
    teachers) — one column ``total``. With ``ε = 0`` and ``θ'(ε) = θ − η Σ_i ε_i ∇ℓ_i / b``,
    ``w_i ∝ max(0, −∂L_V(θ')/∂ε_i)`` normalised to sum 1 (uniform if all are zero), and the step's loss
    is ``Σ_i w_i ℓ_i``. The ε-gradient is AMAL's engine objective at ``Λ = 0``: ``engine="last_layer"``
    (only the head moves in the look-ahead; cheap) or ``"lookahead"`` (the whole network, as in the
    paper). At ε = 0, θ' = θ, so the weights do not depend on η: the look-ahead uses η = 1 and ``lr`` is
    ignored. The model is in eval mode during the look-ahead. The validation batch (``val_batch``
    instances; ``None``: the training batch's size) is drawn afresh each step by the seeded generator
    saved in ``state_dict``. ``table["total"]`` holds ``b·w_i`` from the last step that saw instance i.
    """

    def __init__(self, model: nn.Module, n_train: int, val: Any, *, teachers: Sequence[nn.Module] = (),
                 optimizer: torch.optim.Optimizer | None = None, weight: float = 0.9, temperature: float = 4.0,
                 engine: str = "last_layer", val_batch: int | None = None, head: str | None = None,
                 seed: int = 0) -> None:
        if val is None:
            raise AmalError("l2rw needs a labelled validation set (val=)")
        if val_batch is not None and val_batch < 1:
            raise AmalError(f"l2rw val_batch must be >= 1 or None, got {val_batch}")
        if teachers:
            total = MixedTerm(_kd_terms(teachers, temperature), uniform_weights(len(teachers), weight), name="total")
        else:
            total = MixedTerm([CrossEntropy()], {"ce": 1.0}, name="total")
        self.total = total
        super().__init__(model, [total], n_train, val, optimizer=optimizer, schedule="online", engine=engine,
                         head=head, seed=seed, lambda_init={"total": 1.0})
        self.val_batch = val_batch
        self.table = LambdaTable(n_train, ["total"], {"total": 1.0}, bounds=(0.0, math.inf), device=self.device)
        self.last_weights: Tensor | None = None

    def _val_for(self, b: int) -> ValSample:
        assert self.val is not None
        m = len(self.val)
        sel = torch.randperm(m, generator=self.generator)[: min(self.val_batch or b, m)]
        return ValSample(y=self.val.y[sel].to(self.device), x=self.val.x[sel].to(self.device))

    def instance_weights(self, batch: Batch, logits: Tensor, features: Tensor | None = None) -> Tensor:
        """``[B]`` weights summing to 1 for a prepared batch (``logits`` / head ``features`` of its
        forward pass; features are needed by the ``last_layer`` engine)."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            b = len(batch)
            z = _hi(logits.detach())
            chunk = Chunk(idx=batch.idx, inv_b=torch.full((b,), 1.0 / b, dtype=z.dtype, device=self.device),
                          batches=[batch])
            val = self._val_for(b)
            if self.engine.needs_features:
                if features is None:
                    raise AmalError("the last_layer engine needs the head's input features of the batch")
                assert self.capture is not None
                chunk.features = _hi(features.detach())
                chunk.deltas = logit_grads(self.terms, z, batch)
                with torch.no_grad(), self.capture.capture():
                    out = model(val.x)
                val.features, val.logits = _hi(self.capture.checked(out)), _hi(out)
            ctx = EngineContext(model, self.head, self.terms)  # type: ignore[arg-type]
            objective = self.engine.make_objective(ctx, chunk, val, 1.0)
            grad, _ = objective(torch.zeros(b, 1, dtype=torch.float64, device=self.device))
        finally:
            model.train(was_training)
        return l2rw_weights(grad[:, 0].to(torch.float64))

    def loss(self, raw: Any, lr: float | None = None) -> tuple[Tensor, Tensor]:
        batch = self.to_batch(raw)
        self.prepare(batch)
        if self.capture is not None:
            with self.capture.capture():
                logits = self.model(batch.x)
            feats: Tensor | None = self.capture.checked(logits)
        else:
            logits, feats = self.model(batch.x), None
        batch.validate(self.table.n, n_classes=logits.shape[1])
        w = self.instance_weights(batch, logits, feats)
        comps = self.total.components(_hi(logits), batch)
        ell = comps @ self.total._w(comps)
        self.last_weights = w
        self.last_term_means = dict(zip(self.total.names, comps.detach().mean(0).tolist()))
        self.table.set_rows(batch.idx, (w * len(batch))[:, None])
        return (w.to(ell) * ell).sum(), logits

    def weighted_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Unweighted mean of the fixed-λ total (the L2RW weights need a look-ahead: use :meth:`loss`)."""
        batch.validate(self.table.n, n_classes=logits.shape[1])
        comps = self.total.components(logits.float(), batch)
        self.last_term_means = dict(zip(self.total.names, comps.detach().mean(0).tolist()))
        return (comps @ self.total._w(comps)).mean()

    def sweep(self, loader: Any, lr: float | None = None, epoch: int | None = None) -> SweepRecord:
        raise AmalError("l2rw weights instances inside each training step; it has no sweep")


# ---------------------------------------------------------------------------------------------- registry
def _make_kd_uniform(model, teachers, n_train, val, optimizer, *, weight=0.9, temperature=4.0):
    return kd_uniform(model, teachers, n_train, optimizer, weight=weight, temperature=temperature)


def _make_dgkd(model, teachers, n_train, val, optimizer, *, weight=0.9, temperature=4.0, drop=0.5,
               seed=0):
    return DGKD(model, teachers, n_train, optimizer=optimizer, weight=weight, temperature=temperature, drop=drop,
                seed=seed)


def _make_superloss(model, teachers, n_train, val, optimizer, *, weight=0.9, temperature=4.0,
                    lam=1.0, tau="ema", momentum=0.9, wrap="auto"):
    if wrap not in ("auto", "ce", "kd"):
        raise AmalError(f"superloss wrap must be 'auto', 'ce' or 'kd', got {wrap!r}")
    if wrap == "kd" and not teachers:
        raise AmalError("superloss wrap='kd' needs teachers")
    use = list(teachers) if wrap in ("auto", "kd") else []
    return SuperLossKD(model, n_train, teachers=use, optimizer=optimizer, weight=weight, temperature=temperature,
                       lam=lam, tau=tau, momentum=momentum)


def _make_l2rw(model, teachers, n_train, val, optimizer, *, weight=0.9, temperature=4.0, engine="last_layer",
               val_batch=None, head=None, seed=0):
    return L2RW(model, n_train, val, teachers=teachers, optimizer=optimizer, weight=weight,
                temperature=temperature, engine=engine, val_batch=val_batch, head=head, seed=seed)


BASELINES: dict[str, Callable[..., AMAL]] = {
    "kd_uniform": _make_kd_uniform,
    "dgkd": _make_dgkd,
    "superloss": _make_superloss,
    "l2rw": _make_l2rw,
}
_NEED_TEACHERS = ("kd_uniform", "dgkd")


def baseline_options(name: str) -> list[str]:
    """The keyword options ``make_baseline`` accepts for ``name``."""
    if name not in BASELINES:
        raise AmalError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    params = inspect.signature(BASELINES[name]).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def make_baseline(name: str, model: nn.Module, teachers: Sequence[nn.Module], n_train: int, val: Any = None,
                  optimizer: torch.optim.Optimizer | None = None, **opts: Any) -> AMAL:
    """Build a baseline by name (``kd_uniform``, ``dgkd``, ``superloss``, ``l2rw``) for the ``Trainer``.

    Options by name (unknown ones are an ``AmalError`` listing the known): ``weight`` (total KD weight
    w, CE gets 1 − w), ``temperature``; dgkd ``drop``, ``seed``; superloss ``lam``, ``tau``,
    ``momentum``, ``wrap`` (``"auto"``: the KD mixture when teachers are given, else CE); l2rw
    ``engine``, ``val_batch``, ``head``, ``seed``. ``val`` is read only by ``l2rw``.
    """
    known = baseline_options(name)
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise AmalError(f"unknown option(s) {unknown} for baseline {name!r}; known: {known}")
    if name in _NEED_TEACHERS and not teachers:
        raise AmalError(f"baseline {name!r} needs at least one teacher")
    return BASELINES[name](model, list(teachers), n_train, val, optimizer, **opts)


__all__ = [
    "BASELINES", "DGKD", "L2RW", "MixedTerm", "SuperLoss", "SuperLossKD", "TakdResult", "TakdStage",
    "baseline_options", "kd_columns", "kd_train_fn", "kd_uniform", "l2rw_weights", "lambert_w", "make_baseline",
    "superloss_sigma", "takd_chain", "uniform_weights",
]

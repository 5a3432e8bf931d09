"""The AMAL object: per-instance, per-term mixing weights learned against a validation set.

It owns Λ and decides when and how it moves; it knows nothing of teachers or rules, only a list
of loss terms (see :mod:`amal.losses.terms`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from amal.core.batch import Batch
from amal.core.engines import Chunk, EngineContext, ValSample, make_engine
from amal.core.head import FeatureCapture, find_head
from amal.core.schedules import make_schedule
from amal.core.term import LossTerm, logit_grads, per_instance_matrix
from amal.core.updates import AdamUpdate, make_update
from amal.core.weights import DEFAULT_BOUNDS, LambdaTable
from amal.errors import AmalError


@dataclass
class MetaConfig:
    """Defaults reproduce the authors' settings (docs/method.md)."""

    engine: str = "last_layer"
    schedule: str = "epochs"
    warmup: int = 0
    every: int = 10
    fit: int = 3
    inner_steps: int = 5
    update: str = "sgd"
    lambda_lr: float | None = None  # None: the update rule's default (sgd: 1500)
    lambda_init: float | dict[str, float] = 0.9
    lambda_min: float = DEFAULT_BOUNDS[0]
    lambda_max: float = DEFAULT_BOUNDS[1]
    normalize: bool = False
    val_batch: int = 1000
    cache_batch: int = 256  # batch size of the once-per-sweep validation forward pass (bounds its activations)
    head: str | None = None
    lookahead_bias: bool = True  # move the head's bias in the look-ahead (False: only its weights, see docs)
    seed: int = 0

    def validate(self) -> None:
        for name in ("fit", "inner_steps", "val_batch", "cache_batch"):
            if getattr(self, name) < 1:
                raise AmalError(f"amal.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ValSet:
    """The validation set as tensors: it is read many times and sampled by index."""

    x: Tensor
    y: Tensor

    @staticmethod
    def from_any(val: Any) -> ValSet:
        if isinstance(val, ValSet):
            out = val
        elif isinstance(val, tuple | list) and len(val) == 2 and all(isinstance(v, Tensor) for v in val):
            out = ValSet(val[0], val[1])
        elif isinstance(val, Dataset):
            if len(val) == 0:  # type: ignore[arg-type]
                raise AmalError("validation set is empty: AMAL needs labelled validation data")
            items = [val[i] for i in range(len(val))]  # type: ignore[arg-type]
            out = ValSet(torch.stack([torch.as_tensor(it[0]) for it in items]),
                         torch.as_tensor([int(it[1]) for it in items]))
        else:
            raise AmalError("val must be a Dataset of (x, y) or a tuple (x, y) of tensors")
        if out.y.numel() == 0:
            raise AmalError("validation set is empty: AMAL needs labelled validation data")
        if out.x.shape[0] != out.y.shape[0]:
            raise AmalError(f"validation x has {out.x.shape[0]} rows but y has {out.y.shape[0]}")
        return out

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class SweepRecord:
    epoch: int | None
    chunks: int
    seconds: float
    val_loss_first: float  # look-ahead validation loss at the chunk's starting Λ
    val_loss_last: float  # ... at the Λ of the last inner step (mean over chunks)
    lambda_stats: dict[str, dict[str, float]] = field(default_factory=dict)


class AMAL:
    """Learn Λ (one weight per training instance and loss term) by one-step look-ahead on ``val``.

    Use ``loss(batch)`` in the training step and ``start_epoch(epoch, loader)`` before each epoch.
    ``lr`` (η of the look-ahead) is read from ``optimizer`` when one is given.
    """

    def __init__(
        self,
        model: nn.Module,
        terms: Sequence[LossTerm],
        n_train: int,
        val: Any,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        config: MetaConfig | None = None,
        **overrides: Any,
    ) -> None:
        known = {f.name for f in dataclasses.fields(MetaConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise AmalError(f"unknown AMAL option(s) {unknown}; known: {sorted(known)}")
        self.config = cfg = dataclasses.replace(config or MetaConfig(), **overrides)
        cfg.validate()
        self.terms = list(terms)
        if not self.terms:
            raise AmalError("AMAL needs at least one loss term")
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise AmalError(f"loss term names must be unique, got {names}")
        self.model = model
        self.optimizer = optimizer
        self.device = next(model.parameters()).device
        self.engine = make_engine(cfg.engine)
        self.schedule = make_schedule(cfg.schedule, cfg.warmup, cfg.every)
        learns = cfg.schedule != "fixed"
        needs_head = learns and (self.engine.needs_features or not cfg.lookahead_bias)
        self.head = find_head(model, cfg.head) if needs_head else None
        self.capture = FeatureCapture(self.head) if self.head is not None and self.engine.needs_features else None
        if isinstance(cfg.lambda_init, Mapping):
            init = dict(cfg.lambda_init)
            extra = sorted(set(init) - set(names))
            if extra:
                raise AmalError(f"lambda_init names unknown term(s) {extra}; terms are {names}")
        else:
            init = {t.name: (1.0 - cfg.lambda_init) if t.supervised else float(cfg.lambda_init) for t in self.terms}
        self.table = LambdaTable(
            n_train, names, init, (cfg.lambda_min, cfg.lambda_max), cfg.normalize, device=self.device
        )
        self.update = make_update(cfg.update, cfg.lambda_lr)
        if isinstance(self.update, AdamUpdate):
            self.update.bind(self.table.n, len(names), self.device)
        self.val = ValSet.from_any(val) if cfg.schedule != "fixed" else None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.history: list[SweepRecord] = []
        self.epoch = 0
        self.last_term_means: dict[str, float] = {}

    # ------------------------------------------------------------------ training step
    def prepare(self, batch: Batch) -> None:
        with torch.no_grad():
            for t in self.terms:
                t.prepare(batch)

    def to_batch(self, raw: Any) -> Batch:
        batch = Batch.from_any(raw).to(self.device)
        batch.validate(self.table.n)
        return batch

    def loss(self, raw: Any, lr: float | None = None) -> tuple[Tensor, Tensor]:
        """Forward ``batch.x``, update the batch's Λ rows first when the schedule is ``online``, and
        return the λ-weighted training loss (mean over instances of Σ_k λ_ik ℓ_ik) and the logits."""
        batch = self.to_batch(raw)
        self.prepare(batch)
        online = self.schedule.online_at(self.epoch)
        if online and self.capture is not None:
            with self.capture.capture():
                logits = self.model(batch.x)
            feats = self.capture.checked(logits).detach()
            self._online_update(batch, logits.detach(), feats, self._lr(lr))
        else:
            logits = self.model(batch.x)
            if online:
                self._online_update(batch, None, None, self._lr(lr))
        return self.weighted_loss(logits, batch), logits

    def weighted_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Σ_k λ_ik ℓ_k(x_i), averaged over the batch, with the current Λ (no update)."""
        batch.validate_labels(logits.shape[1])
        losses = per_instance_matrix(self.terms, logits.float(), batch)
        lam = self.table.rows(batch.idx).to(losses)
        self.last_term_means = dict(zip(self.table.columns, losses.detach().mean(0).tolist()))
        return (lam * losses).sum(dim=1).mean()

    def _lr(self, lr: float | None) -> float:
        if lr is not None:
            return float(lr)
        if self.optimizer is not None:
            return float(self.optimizer.param_groups[0]["lr"])
        raise AmalError("the look-ahead needs the learning rate: pass optimizer= to AMAL or lr= to the call")

    # ------------------------------------------------------------------ Λ updates
    def start_epoch(self, epoch: int, loader: Iterable[Any], lr: float | None = None) -> SweepRecord | None:
        """Call before each epoch; runs a sweep when the schedule says so."""
        self.epoch = epoch
        if self.schedule.sweep_before(epoch):
            return self.sweep(loader, lr, epoch=epoch)
        return None

    def sweep(self, loader: Iterable[Any], lr: float | None = None, epoch: int | None = None) -> SweepRecord:
        """One pass over the training set in chunks of ``fit`` batches, each against one validation batch.

        The model does not change during a sweep, so validation features and logits are computed once.
        """
        if self.val is None:
            raise AmalError("schedule 'fixed' has no validation set; Λ stays at its initial value")
        eta = self._lr(lr)
        start = time.perf_counter()
        model = self.model
        was_training = model.training
        model.eval()
        first: list[float] = []
        last: list[float] = []
        try:
            cache = self._val_cache() if self.engine.needs_features else None
            pending: list[tuple[Batch, Tensor | None, Tensor | None]] = []
            for raw in loader:
                batch = self.to_batch(raw)
                self.prepare(batch)
                pending.append(self._chunk_part(batch))
                if len(pending) == self.config.fit:
                    b0, b1 = self._update_chunk(pending, cache, eta)
                    first.append(b0)
                    last.append(b1)
                    pending = []
            if pending:
                b0, b1 = self._update_chunk(pending, cache, eta)
                first.append(b0)
                last.append(b1)
        finally:
            model.train(was_training)
        if not first:
            raise AmalError("the training loader yielded no batches")
        rec = SweepRecord(
            epoch, len(first), time.perf_counter() - start,
            sum(first) / len(first), sum(last) / len(last), self.table.stats(),
        )
        self.history.append(rec)
        return rec

    @torch.no_grad()
    def _val_cache(self) -> tuple[Tensor, Tensor]:
        assert self.capture is not None and self.val is not None
        feats = logits = None
        m, block = len(self.val), self.config.cache_batch
        for s in range(0, m, block):  # filled in place: no second copy from a final torch.cat
            x = self.val.x[s : s + block].to(self.device)
            with self.capture.capture():
                out = self.model(x)
            f = self.capture.checked(out)
            if feats is None or logits is None:
                feats = torch.empty(m, f.shape[1], device=self.device)
                logits = torch.empty(m, out.shape[1], device=self.device)
            feats[s : s + len(x)] = f
            logits[s : s + len(x)] = out
        assert feats is not None and logits is not None
        return feats, logits

    @torch.no_grad()
    def _chunk_part(self, batch: Batch) -> tuple[Batch, Tensor | None, Tensor | None]:
        if not self.engine.needs_features:
            return batch, None, None
        assert self.capture is not None
        with self.capture.capture():
            out = self.model(batch.x)
        feats = self.capture.checked(out).float()
        batch.validate_labels(out.shape[1])
        return batch, feats, logit_grads(self.terms, out.float(), batch)

    def _val_sample(self, cache: tuple[Tensor, Tensor] | None) -> ValSample:
        assert self.val is not None
        m = len(self.val)
        sel = torch.randperm(m, generator=self.generator)[: min(self.config.val_batch, m)]
        out = ValSample(y=self.val.y[sel].to(self.device))
        if cache is not None:
            sel_d = sel.to(self.device)
            out.features, out.logits = cache[0][sel_d], cache[1][sel_d]
        if self.engine.needs_inputs or cache is None:
            out.x = self.val.x[sel].to(self.device)
        return out

    def _update_chunk(
        self, parts: list[tuple[Batch, Tensor | None, Tensor | None]], cache: tuple[Tensor, Tensor] | None,
        eta: float,
    ) -> tuple[float, float]:
        batches = [p[0] for p in parts]
        idx = torch.cat([b.idx for b in batches])
        inv_b = torch.cat([torch.full((len(b),), 1.0 / len(b), device=self.device) for b in batches])
        chunk = Chunk(idx=idx, inv_b=inv_b, batches=batches)
        if self.engine.needs_features:
            chunk.features = torch.cat([p[1] for p in parts])  # type: ignore[misc]
            chunk.deltas = torch.cat([p[2] for p in parts])  # type: ignore[misc]
        return self._inner_loop(chunk, self._val_sample(cache), eta)

    def _inner_loop(self, chunk: Chunk, val: ValSample, eta: float) -> tuple[float, float]:
        ctx = EngineContext(self.model, self.head, self.terms, self.config.lookahead_bias)  # type: ignore[arg-type]
        objective = self.engine.make_objective(ctx, chunk, val, eta)
        lam = self.table.rows(chunk.idx).to(torch.float64)
        learnable = self.table.learnable(chunk.idx)
        first = last = float("nan")
        for step in range(self.config.inner_steps):
            grad, val_loss = objective(lam)
            if step == 0:
                first = float(val_loss)
            last = float(val_loss)
            grad = grad.to(lam.dtype)
            if learnable is not None:  # frozen entries neither move nor count in the step's scale
                grad = grad * learnable
            new = self.table.project(self.update.step(lam, grad, chunk.idx, learnable))
            lam = new if learnable is None else torch.where(learnable, new, lam)
        self.table.set_rows(chunk.idx, lam)
        return first, last

    def _online_update(self, batch: Batch, logits: Tensor | None, feats: Tensor | None, eta: float) -> None:
        assert self.val is not None
        model = self.model
        was_training = model.training
        model.eval()
        try:
            chunk = Chunk(
                idx=batch.idx, inv_b=torch.full((len(batch),), 1.0 / len(batch), device=self.device),
                batches=[batch],
            )
            cache = None
            if self.engine.needs_features:
                assert logits is not None
                chunk.features = feats.float() if feats is not None else None
                chunk.deltas = logit_grads(self.terms, logits.float(), batch)
                sel_val = self._val_sample(None)
                assert self.capture is not None and sel_val.x is not None
                with torch.no_grad(), self.capture.capture():
                    out = model(sel_val.x)
                val = ValSample(y=sel_val.y, features=self.capture.checked(out).float(), logits=out.float())
            else:
                val = self._val_sample(cache)
            self._inner_loop(chunk, val, eta)
        finally:
            model.train(was_training)

    def close(self) -> None:
        """Remove the feature hook from the model (AMAL is no longer usable afterwards)."""
        if self.capture is not None:
            self.capture.remove()
            self.capture = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "table": self.table.state_dict(),
            "update": self.update.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "history": [dataclasses.asdict(h) for h in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.table.load_state_dict(state["table"])
        self.update.load_state_dict(state["update"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.history = [SweepRecord(**h) for h in state["history"]]

"""Rule-derived per-instance loss terms (weak supervision).

Every term is per instance (``[B]``) with a closed-form logit gradient, so AMAL can mix them like CE and KD.
Per-instance targets (label-model posteriors, LF votes, labelled/unlabelled masks) live in an
:class:`InstanceTargets` table and are copied into ``batch.extras`` by ``prepare``, indexed by ``batch.idx``.
:class:`Masked` restricts any term to the instances where a mask holds (e.g. CE on the labelled rows only,
the label-model term on the unlabelled rows only): elsewhere its loss and logit gradient are zero, so its λ
there gets no hypergradient.

The joint-learning (JL) terms take a :class:`~amal.weak.label_models.CAGE` module that trains together with
the end model: their losses are differentiable in the label model's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from amal.core.batch import Batch
from amal.core.term import LossTerm
from amal.errors import AmalError
from amal.losses.terms import ce_logit_grad


class InstanceTargets:
    """Per-instance tensors (first dimension N = training-set size) copied into ``batch.extras`` by index."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
        if len(set(sizes.values())) > 1:
            raise AmalError(f"per-instance targets have different lengths: {sizes}")
        self.tensors = dict(tensors)
        self._on: dict[tuple[str, torch.device], Tensor] = {}

    def fill(self, batch: Batch) -> None:
        for key, values in self.tensors.items():
            if key in batch.extras:
                continue
            dev = batch.idx.device
            on = self._on.get((key, dev))
            if on is None:
                on = self._on[(key, dev)] = values.to(dev)
            batch.extras[key] = on[batch.idx]

    def __getitem__(self, key: str) -> Tensor:
        return self.tensors[key]


def _extra(batch: Batch, key: str, term: str) -> Tensor:
    try:
        return batch.extras[key]
    except KeyError:
        raise AmalError(f"term {term!r}: batch.extras has no {key!r} (prepare(batch) not called, or the "
                        "targets table lacks it)") from None


class TargetTerm(LossTerm):
    """A term that reads per-instance targets: ``prepare`` fills them from ``targets`` when given."""

    def __init__(self, targets: InstanceTargets | None) -> None:
        self.targets = targets

    def prepare(self, batch: Batch) -> None:
        if self.targets is not None:
            self.targets.fill(batch)


class Masked(TargetTerm):
    """``mask_i · ℓ_i`` for any term ℓ (``mask`` from ``batch.extras[mask_key]``, bool or 0/1)."""

    def __init__(self, term: LossTerm, mask_key: str, *, name: str | None = None,
                 targets: InstanceTargets | None = None) -> None:
        super().__init__(targets)
        self.term, self.mask_key = term, mask_key
        self.name = name or term.name
        self.supervised = term.supervised

    def prepare(self, batch: Batch) -> None:
        super().prepare(batch)
        self.term.prepare(batch)

    def _mask(self, like: Tensor, batch: Batch) -> Tensor:
        return _extra(batch, self.mask_key, self.name).to(like.dtype)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        v = self.term.per_instance(logits, batch)
        return v * self._mask(v, batch)

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor | None:
        g = self.term.logit_grad(logits, batch)
        return None if g is None else g * self._mask(g, batch)[:, None]


class SoftCrossEntropy(TargetTerm):
    """``−Σ_c p_ic log softmax(z_i)_c`` with soft targets ``p`` (e.g. a label model's posterior)."""

    supervised = True

    def __init__(self, target_key: str, name: str = "lm_soft", targets: InstanceTargets | None = None) -> None:
        super().__init__(targets)
        self.target_key, self.name = target_key, name

    def _p(self, logits: Tensor, batch: Batch) -> Tensor:
        p = _extra(batch, self.target_key, self.name)
        if p.shape != logits.shape:
            raise AmalError(f"term {self.name!r}: targets {tuple(p.shape)} do not match logits {tuple(logits.shape)}")
        return p.to(logits.dtype)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return -(self._p(logits, batch) * torch.log_softmax(logits, dim=1)).sum(dim=1)

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return torch.softmax(logits, dim=1) - self._p(logits, batch)


class Entropy(LossTerm):
    """The prediction's entropy ``H(softmax(z))`` (JL: low-entropy predictions on unlabelled data)."""

    def __init__(self, name: str = "entropy") -> None:
        self.name = name

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        log_p = torch.log_softmax(logits, dim=1)
        return -(log_p.exp() * log_p).sum(dim=1)

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        log_p = torch.log_softmax(logits, dim=1)
        p = log_p.exp()
        h = -(p * log_p).sum(dim=1, keepdim=True)
        return -p * (log_p + h)


def _kl_and_grad(logits: Tensor, log_q: Tensor) -> tuple[Tensor, Tensor]:
    """``KL(softmax(z) ‖ q)`` per instance and its gradient ``p ⊙ (a − Σ p a)``, ``a = log p − log q``."""
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    a = log_p - log_q
    kl = (p * a).sum(dim=1)
    return kl, p * (a - kl[:, None])


class KLToTarget(TargetTerm):
    """``KL(softmax(z) ‖ q)`` towards fixed per-instance distributions ``q`` (``batch.extras[target_key]``)."""

    def __init__(self, target_key: str, name: str = "kl_lm", targets: InstanceTargets | None = None) -> None:
        super().__init__(targets)
        self.target_key, self.name = target_key, name

    def _log_q(self, logits: Tensor, batch: Batch) -> Tensor:
        return torch.log(_extra(batch, self.target_key, self.name).to(logits.dtype).clamp_min(1e-12))

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return _kl_and_grad(logits, self._log_q(logits, batch))[0]

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return _kl_and_grad(logits, self._log_q(logits, batch))[1]


class LFVoteCE(TargetTerm):
    """Cross-entropy to LF ``j``'s own vote, on the instances where it fires (and ``mask_key`` holds): one such
    term per LF gives AMAL a per-instance trust in each rule."""

    supervised = True

    def __init__(self, j: int, name: str, lf_key: str = "rules:lf", mask_key: str | None = "rules:unlabelled",
                 targets: InstanceTargets | None = None) -> None:
        super().__init__(targets)
        self.j, self.name, self.lf_key, self.mask_key = j, name, lf_key, mask_key

    def _vote_mask(self, logits: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        vote = _extra(batch, self.lf_key, self.name)[:, self.j].long()
        mask = (vote >= 0).to(logits.dtype)
        if self.mask_key is not None:
            mask = mask * _extra(batch, self.mask_key, self.name).to(logits.dtype)
        return vote.clamp_min(0), mask

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        vote, mask = self._vote_mask(logits, batch)
        return F.cross_entropy(logits, vote, reduction="none") * mask

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        vote, mask = self._vote_mask(logits, batch)
        return ce_logit_grad(logits, vote) * mask[:, None]


# ---------------------------------------------------------------------------------------------- JL terms
class LabelModelTerm(TargetTerm):
    """Base of the JL terms: a CAGE module trained jointly, reading the batch's LF votes (``lf_key``, long
    [B, m]) and optional scores (``score_key``)."""

    def __init__(self, label_model: torch.nn.Module, lf_key: str = "rules:lf", score_key: str | None = None,
                 targets: InstanceTargets | None = None) -> None:
        super().__init__(targets)
        self.label_model, self.lf_key, self.score_key = label_model, lf_key, score_key

    def log_joint(self, batch: Batch) -> Tensor:
        L = _extra(batch, self.lf_key, self.name).long()
        S = _extra(batch, self.score_key, self.name) if self.score_key else None
        return self.label_model.log_joint(L, S)  # type: ignore[operator]

    def log_posterior(self, batch: Batch) -> Tensor:
        return torch.log_softmax(self.log_joint(batch), dim=1)


class JointKL(LabelModelTerm):
    """JL: ``KL(P_f(y|x) ‖ P_θ(y|l, s))`` — pulls the end model and the label model together (both learn)."""

    name = "kl_lm"

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return _kl_and_grad(logits, self.log_posterior(batch).to(logits.dtype))[0]

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        with torch.no_grad():
            return _kl_and_grad(logits, self.log_posterior(batch).to(logits.dtype))[1]


class JointLabelCE(LabelModelTerm):
    """JL: cross-entropy to the current label model's most probable class ``argmax_y P_θ(y|l, s)``."""

    name = "lm"
    supervised = True

    def _labels(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            return self.log_joint(batch).argmax(dim=1)

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(logits, self._labels(batch), reduction="none")

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return ce_logit_grad(logits, self._labels(batch))


class LabelModelNLL(LabelModelTerm):
    """JL: the label model's own likelihood — ``supervised``: ``−log P_θ(y_i, l_i, s_i)`` with ``batch.y``;
    ``marginal``: ``−log Σ_y P_θ(y, l_i, s_i)``. Independent of the end model's logits (zero logit gradient),
    so under AMAL its λ keeps its initial value."""

    def __init__(self, label_model: torch.nn.Module, mode: str, name: str | None = None, **kw) -> None:
        if mode not in ("supervised", "marginal"):
            raise AmalError(f"LabelModelNLL mode must be 'supervised' or 'marginal', got {mode!r}")
        super().__init__(label_model, **kw)
        self.mode = mode
        self.name = name or ("lm_nll_sup" if mode == "supervised" else "lm_nll_unsup")

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        lj = self.log_joint(batch)
        if self.mode == "supervised":
            out = -lj.gather(1, batch.y[:, None].long()).squeeze(1)
        else:
            out = -torch.logsumexp(lj, dim=1)
        return out.to(logits.dtype)

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return torch.zeros_like(logits)


class QualityGuideTerm(LossTerm):
    """JL: the CAGE quality-guide loss (a property of the label model, the same for every instance)."""

    name = "quality"

    def __init__(self, label_model: torch.nn.Module, quality: Tensor, name: str = "quality") -> None:
        self.label_model, self.quality, self.name = label_model, quality, name

    def per_instance(self, logits: Tensor, batch: Batch) -> Tensor:
        q = self.quality.to(logits.device)
        r = self.label_model.quality_loss(q)  # type: ignore[operator]
        return r.to(logits.dtype).expand(logits.shape[0])

    def logit_grad(self, logits: Tensor, batch: Batch) -> Tensor:
        return torch.zeros_like(logits)


__all__ = ["Entropy", "InstanceTargets", "JointKL", "JointLabelCE", "KLToTarget", "LFVoteCE", "LabelModelNLL",
           "LabelModelTerm", "Masked", "QualityGuideTerm", "SoftCrossEntropy", "TargetTerm"]

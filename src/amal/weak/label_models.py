"""Label models: turn an LF matrix into a distribution over the true class of each example.

* ``mv`` — majority vote (ties: uniform over the tied classes; no vote: the class prior).
* ``cage`` — CAGE (Chatterjee et al., AAAI 2020) in PyTorch: a generative model over LF votes with one
  potential per (LF, vote, true class), optional Beta densities for continuous LF scores, fitted by the
  supervised NLL on the labelled set plus the marginal NLL on the unlabelled set, with optional quality guides
  (the user's belief in each LF's precision). It is an ``nn.Module``, so it can also be trained jointly with
  the end model (the JL recipe).
* ``snorkel`` — Snorkel's ``LabelModel`` when the ``snorkel`` package is installed (``pip install
  'amal[snorkel]'``).

All take and return numpy arrays: ``fit(L_u, L_l=None, y_l=None, S_u=None, S_l=None)``,
``predict_proba(L, S=None) -> [n, C]``, ``predict(L, S=None) -> [n]``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from amal.errors import AmalError
from amal.weak.matrix import (
    ABSTAIN,
    check_labels,
    check_lf_matrix,
    check_scores,
    covered,
    lf_classes,
    uncovered_error,
    vote_counts,
)


class LabelModel:
    """The interface every label model answers."""

    name = "label_model"
    n_classes: int
    prior: np.ndarray  # [C] class prior used for ties and all-abstain rows

    def fit(self, L_u: Any, *, L_l: Any = None, y_l: Any = None, S_u: Any = None, S_l: Any = None,
            lf_labels: Sequence[tuple[int, ...] | None] | None = None,
            continuous: Sequence[bool] | None = None) -> LabelModel:
        raise NotImplementedError

    def predict_proba(self, L: Any, S: Any = None) -> np.ndarray:
        raise NotImplementedError

    def predict(self, L: Any, S: Any = None) -> np.ndarray:
        """Most probable class; exact ties go to the class with the larger prior."""
        p = self.predict_proba(L, S)
        return np.argmax(p + 1e-9 * self.prior[None, :], axis=1)


def _prior(y_l: np.ndarray | None, n_classes: int) -> np.ndarray:
    """Class frequencies of the labelled set with add-one smoothing (uniform without labels)."""
    if y_l is None or len(y_l) == 0:
        return np.full(n_classes, 1.0 / n_classes)
    counts = np.bincount(y_l, minlength=n_classes).astype(np.float64) + 1.0
    return counts / counts.sum()


def _fit_inputs(lm: LabelModel, L_u: Any, L_l: Any, y_l: Any) -> tuple[np.ndarray, np.ndarray | None,
                                                                         np.ndarray | None]:
    C = lm.n_classes
    L_u = check_lf_matrix(L_u, C, what="unlabelled LF matrix")
    if (L_l is None) != (y_l is None):
        raise AmalError("give both L_l and y_l (the labelled set's LF matrix and labels), or neither")
    if L_l is not None:
        L_l = check_lf_matrix(L_l, C, n_lfs=L_u.shape[1], what="labelled LF matrix")
        y_l = check_labels(y_l, C, L_l.shape[0], "labelled-set labels")
    votes = (L_u != ABSTAIN).any() or (L_l is not None and (L_l != ABSTAIN).any())
    if not votes:
        raise AmalError("every row of the LF matrix abstains: a label model has nothing to learn from")
    return L_u, L_l, y_l


# ---------------------------------------------------------------------------------------------- majority vote
class MajorityVote(LabelModel):
    """Majority vote. ``abstain``: what an all-abstain row gets — ``"prior"`` (the labelled set's class
    frequencies, smoothed; uniform without labels), ``"uniform"``, or ``"error"``."""

    name = "mv"

    def __init__(self, n_classes: int, *, abstain: str = "prior") -> None:
        if n_classes < 2:
            raise AmalError(f"a label model needs at least 2 classes, got {n_classes}")
        if abstain not in ("prior", "uniform", "error"):
            raise AmalError(f"abstain must be 'prior', 'uniform' or 'error', got {abstain!r}")
        self.n_classes, self.abstain = n_classes, abstain
        self.prior = np.full(n_classes, 1.0 / n_classes)
        self.n_lfs: int | None = None

    def fit(self, L_u: Any, *, L_l: Any = None, y_l: Any = None, S_u: Any = None, S_l: Any = None,
            lf_labels: Sequence[tuple[int, ...] | None] | None = None,
            continuous: Sequence[bool] | None = None) -> MajorityVote:
        L_u, L_l, y_l = _fit_inputs(self, L_u, L_l, y_l)
        self.n_lfs = L_u.shape[1]
        self.prior = _prior(y_l, self.n_classes) if self.abstain == "prior" else np.full(
            self.n_classes, 1.0 / self.n_classes)
        return self

    def predict_proba(self, L: Any, S: Any = None) -> np.ndarray:
        L = check_lf_matrix(L, self.n_classes, n_lfs=self.n_lfs)
        counts = vote_counts(L, self.n_classes)
        top = counts.max(axis=1, keepdims=True)
        tied = (counts == top) & (top > 0)
        p = tied / np.maximum(tied.sum(axis=1, keepdims=True), 1)
        none = ~covered(L)
        if none.any():
            if self.abstain == "error":
                raise uncovered_error(L)
            p[none] = self.prior
        return p


# ---------------------------------------------------------------------------------------------- CAGE
class CAGE(nn.Module, LabelModel):
    """CAGE, generalised to LFs that may vote for several classes.

    ``P(y, l, s) = exp(b_y) Π_j ψ_j(l_j, y) · Π_{j fired, continuous} Beta(s_j; α_jy, β_jy) / Z``, with
    ``ψ_j(c, y) = exp(θ[j, c, y])`` when LF j votes c (c among the classes it can vote), ``ψ_j(−1, y) = 1``, and
    ``Z = Σ_y exp(b_y) Π_j (1 + Σ_c exp θ[j, c, y])`` — exact, so ``P`` sums to one over every (y, l). For an
    LF that votes one class this is the published CAGE. ``b`` (class prior) is learned only with
    ``class_prior=True`` (CAGE has none: ``b = 0``). Continuous scores use the published parametrisation:
    ``α = r·exp(π[j, y])``, ``β = (1 − r)·exp(π[j, y])``, ``r = qc`` when y equals the vote, else ``1 − qc``.

    Fit: Adam (``lr``, ``epochs``, full batch) on mean marginal NLL over the unlabelled rows + ``sup_weight`` ×
    mean joint NLL ``−log P(y_i, l_i, s_i)`` over the labelled rows + the quality-guide loss when ``quality``
    (one precision guess per LF, or one for all) is given: ``−Σ_j [a_j log P(y=c|l_j=c) + (1−a_j) log(1 −
    P(y=c|l_j=c))]`` for every class c LF j votes. θ starts at ``init`` on its diagonal (an LF's vote is
    initially believed more likely right than wrong), which also fixes the label-switching symmetry.
    """

    name = "cage"

    def __init__(self, n_classes: int, *, epochs: int = 200, lr: float = 0.01, quality: float | Sequence[float] |
                 None = None, qc: float = 0.85, class_prior: bool = False, sup_weight: float = 1.0,
                 init: float = 1.0, continuous_scores: bool = True, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        nn.Module.__init__(self)
        if n_classes < 2:
            raise AmalError(f"a label model needs at least 2 classes, got {n_classes}")
        if epochs < 0 or lr <= 0:
            raise AmalError(f"cage needs epochs >= 0 and lr > 0, got epochs={epochs}, lr={lr}")
        if not 0 < qc < 1:
            raise AmalError(f"cage qc must lie in (0, 1), got {qc}")
        self.n_classes, self.epochs, self.lr, self.qc = n_classes, int(epochs), float(lr), float(qc)
        self.quality, self.class_prior, self.sup_weight = quality, bool(class_prior), float(sup_weight)
        self.init, self.use_scores, self.seed, self.dtype = float(init), bool(continuous_scores), seed, dtype
        self.prior = np.full(n_classes, 1.0 / n_classes)
        self.losses: list[float] = []
        self.theta: nn.Parameter | None = None
        self.pi: nn.Parameter | None = None
        self.bias: nn.Parameter | None = None

    # -- structure
    @property
    def n_lfs(self) -> int | None:
        return None if self.theta is None else int(self.theta.shape[0])

    def build(self, allowed: np.ndarray | Tensor, continuous: np.ndarray | Tensor | None = None) -> CAGE:
        """Create the parameters for ``allowed`` ([m, C] bool: the classes each LF can vote)."""
        allowed = torch.as_tensor(np.asarray(allowed), dtype=torch.bool)
        m, C = allowed.shape
        if C != self.n_classes:
            raise AmalError(f"allowed-votes mask has {C} classes, the model {self.n_classes}")
        cont = torch.zeros(m, dtype=torch.bool) if continuous is None else torch.as_tensor(
            np.asarray(continuous), dtype=torch.bool)
        if cont.shape != (m,):
            raise AmalError(f"continuous mask has shape {tuple(cont.shape)}, expected ({m},)")
        eye = torch.eye(C, dtype=self.dtype)
        self.theta = nn.Parameter(self.init * eye.repeat(m, 1, 1))  # [m, vote c, true y]
        self.pi = nn.Parameter(torch.zeros(m, C, dtype=self.dtype))
        self.bias = nn.Parameter(torch.zeros(C, dtype=self.dtype), requires_grad=self.class_prior)
        self.register_buffer("allowed", allowed)
        self.register_buffer("continuous", cont & self.use_scores)
        return self

    def _require_built(self) -> None:
        if self.theta is None:
            raise AmalError("the CAGE model is not fitted yet (call fit first)")

    # -- the probability model
    def log_z(self) -> Tensor:
        """``log Z`` and, per class, ``log(exp(b_y) Π_j (1 + Σ_c exp θ[j,c,y]))``."""
        return torch.logsumexp(self._log_z_terms().sum(0) + self.bias, dim=0)

    def _log_z_terms(self) -> Tensor:
        """``[m, C]``: ``log(1 + Σ_{c allowed} exp θ[j, c, y])``."""
        assert self.theta is not None
        masked = self.theta.masked_fill(~self.allowed[:, :, None], -math.inf)
        zero = torch.zeros_like(masked[:, :1, :])
        return torch.logsumexp(torch.cat([zero, masked], dim=1), dim=1)

    def log_joint(self, L: Tensor, S: Tensor | None = None) -> Tensor:
        """``[n, C]``: ``log P(y, l_i, s_i)`` for every class y (differentiable in the parameters)."""
        self._require_built()
        assert self.theta is not None and self.pi is not None and self.bias is not None
        fired = L >= 0
        vote = L.clamp_min(0)
        m = L.shape[1]
        if m != self.theta.shape[0]:
            raise AmalError(f"LF matrix has {m} columns but the label model was fitted on {self.theta.shape[0]}")
        ok = self.allowed[torch.arange(m, device=L.device)[None, :], vote] | ~fired
        if not bool(ok.all()):
            i, j = (int(v[0]) for v in torch.nonzero(~ok, as_tuple=True))
            raise AmalError(f"LF {j} voted class {int(L[i, j])} (row {i}), a class it never voted when the label "
                            "model was fitted; declare the LF's labels")
        theta = self.theta[torch.arange(m, device=L.device)[None, :], vote]  # [n, m, C]
        out = (theta * fired[..., None].to(theta.dtype)).sum(1) + self.bias - self.log_z()
        cont = self.continuous
        if S is not None and bool(cont.any()):
            use = fired & cont[None, :]
            out = out + self._log_beta(S.to(theta.dtype), vote, use)
        return out

    def _log_beta(self, S: Tensor, vote: Tensor, use: Tensor) -> Tensor:
        assert self.pi is not None
        C = self.n_classes
        s = S.clamp(1e-6, 1 - 1e-6)[..., None]  # [n, m, 1]
        agree = (vote[..., None] == torch.arange(C, device=S.device)).to(S.dtype)  # [n, m, C]: y == vote
        r = self.qc * agree + (1 - self.qc) * (1 - agree)
        conc = torch.exp(self.pi)[None, :, :]  # [1, m, C]
        a, b = r * conc, (1 - r) * conc
        logp = (a - 1) * torch.log(s) + (b - 1) * torch.log1p(-s) - (torch.lgamma(a) + torch.lgamma(b)
                                                                       - torch.lgamma(a + b))
        return (logp * use[..., None].to(S.dtype)).sum(1)

    def nll_marginal(self, L: Tensor, S: Tensor | None = None) -> Tensor:
        """``[n]``: ``−log Σ_y P(y, l_i, s_i)`` (what the unlabelled set contributes)."""
        return -torch.logsumexp(self.log_joint(L, S), dim=1)

    def nll_supervised(self, L: Tensor, y: Tensor, S: Tensor | None = None) -> Tensor:
        """``[n]``: ``−log P(y_i, l_i, s_i)`` (what the labelled set contributes)."""
        return -self.log_joint(L, S).gather(1, y[:, None]).squeeze(1)

    def lf_precision(self) -> Tensor:
        """``[m, C]``: ``P(y = c | l_j = c)`` with the other LFs marginalised (NaN where LF j cannot vote c)."""
        assert self.theta is not None
        zt = self._log_z_terms()  # [m, C(y)]
        rest = zt.sum(0, keepdim=True) - zt  # Σ_{i≠j}
        logits = self.theta + rest[:, None, :] + self.bias  # [m, c, y]: log P(y, l_j = c) + const
        post = torch.softmax(logits, dim=2)
        prec = torch.diagonal(post, dim1=1, dim2=2)  # y = c
        return prec.masked_fill(~self.allowed, math.nan)

    def quality_loss(self, quality: Tensor) -> Tensor:
        prec = self.lf_precision().clamp(1e-12, 1 - 1e-12)
        a = quality[:, None].expand_as(prec)
        terms = a * torch.log(prec) + (1 - a) * torch.log1p(-prec)
        return -terms[self.allowed].sum()

    def posterior(self, L: Tensor, S: Tensor | None = None) -> Tensor:
        return torch.softmax(self.log_joint(L, S), dim=1)

    # -- LabelModel interface
    def fit(self, L_u: Any, *, L_l: Any = None, y_l: Any = None, S_u: Any = None, S_l: Any = None,
            lf_labels: Sequence[tuple[int, ...] | None] | None = None,
            continuous: Sequence[bool] | None = None) -> CAGE:
        L_u, L_l, y_l = _fit_inputs(self, L_u, L_l, y_l)
        S_u = check_scores(S_u, L_u, "unlabelled LF scores") if S_u is not None else None
        S_l = check_scores(S_l, L_l, "labelled LF scores") if S_l is not None and L_l is not None else None
        both = L_u if L_l is None else np.concatenate([L_u, L_l])
        allowed = lf_classes(both, self.n_classes, list(lf_labels) if lf_labels is not None else None)
        self.build(allowed, np.asarray(continuous, dtype=bool) if continuous is not None else None)
        self.prior = _prior(y_l, self.n_classes)
        quality = self.quality_tensor(L_u.shape[1])
        t = lambda a, dt=self.dtype: None if a is None else torch.as_tensor(a, dtype=dt)  # noqa: E731
        Lu, Su, Ll, Sl = t(L_u, torch.long), t(S_u), t(L_l, torch.long), t(S_l)
        yl = t(y_l, torch.long)
        torch.manual_seed(self.seed)
        opt = torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)
        self.losses = []
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = self.fit_loss(Lu, Su, Ll, yl, Sl, quality)
            loss.backward()
            opt.step()
            self.losses.append(float(loss.detach()))
        if self.losses and not math.isfinite(self.losses[-1]):
            raise AmalError("CAGE fit diverged (non-finite loss); lower lr")
        return self

    def fit_loss(self, L_u: Tensor, S_u: Tensor | None, L_l: Tensor | None, y_l: Tensor | None,
                 S_l: Tensor | None, quality: Tensor | None) -> Tensor:
        """The objective ``fit`` minimises (also a term of the JL recipe)."""
        loss = self.nll_marginal(L_u, S_u).mean() if L_u.shape[0] else torch.zeros((), dtype=self.dtype)
        if L_l is not None and y_l is not None and L_l.shape[0]:
            loss = loss + self.sup_weight * self.nll_supervised(L_l, y_l, S_l).mean()
        if quality is not None:
            loss = loss + self.quality_loss(quality)
        return loss

    def quality_tensor(self, m: int) -> Tensor | None:
        if self.quality is None:
            return None
        q = np.full(m, float(self.quality)) if np.isscalar(self.quality) else np.asarray(self.quality, float)
        if q.shape != (m,) or not ((q > 0) & (q < 1)).all():
            raise AmalError(f"cage quality guides must be one value or one per LF ({m}), each in (0, 1); got "
                            f"{self.quality!r}")
        return torch.as_tensor(q, dtype=self.dtype)

    @torch.no_grad()
    def predict_proba(self, L: Any, S: Any = None) -> np.ndarray:
        self._require_built()
        L = check_lf_matrix(L, self.n_classes, n_lfs=self.n_lfs)
        S = check_scores(S, L) if S is not None else None
        St = None if S is None else torch.as_tensor(S, dtype=self.dtype)
        return self.posterior(torch.as_tensor(L), St).cpu().numpy()


# ---------------------------------------------------------------------------------------------- Snorkel
class SnorkelLabelModel(LabelModel):
    """Snorkel's ``LabelModel`` (Ratner et al. 2019) behind the same interface; needs ``snorkel``.

    The labelled set only sets the class balance (smoothed frequencies), as Snorkel's model is fitted on
    the unlabelled matrix alone."""

    name = "snorkel"

    def __init__(self, n_classes: int, *, epochs: int = 500, lr: float = 0.01, l2: float = 0.0,
                 seed: int = 0) -> None:
        try:
            from snorkel.labeling.model import LabelModel as _Snorkel
        except ImportError:
            raise AmalError("label model 'snorkel' needs the snorkel package: pip install 'amal[snorkel]'") from None
        self._cls = _Snorkel
        self.n_classes, self.epochs, self.lr, self.l2, self.seed = n_classes, epochs, lr, l2, seed
        self.prior = np.full(n_classes, 1.0 / n_classes)
        self.model: Any = None
        self.n_lfs: int | None = None

    def fit(self, L_u: Any, *, L_l: Any = None, y_l: Any = None, S_u: Any = None, S_l: Any = None,
            lf_labels: Sequence[tuple[int, ...] | None] | None = None,
            continuous: Sequence[bool] | None = None) -> SnorkelLabelModel:
        L_u, L_l, y_l = _fit_inputs(self, L_u, L_l, y_l)
        self.n_lfs = L_u.shape[1]
        self.prior = _prior(y_l, self.n_classes)
        self.model = self._cls(cardinality=self.n_classes, verbose=False)
        self.model.fit(L_u, class_balance=self.prior, n_epochs=self.epochs, lr=self.lr, l2=self.l2,
                       seed=self.seed, progress_bar=False)
        return self

    def predict_proba(self, L: Any, S: Any = None) -> np.ndarray:
        if self.model is None:
            raise AmalError("the Snorkel label model is not fitted yet (call fit first)")
        L = check_lf_matrix(L, self.n_classes, n_lfs=self.n_lfs)
        return np.asarray(self.model.predict_proba(L), dtype=np.float64)


# ---------------------------------------------------------------------------------------------- registry
LABEL_MODELS: dict[str, Callable[..., LabelModel]] = {"mv": MajorityVote, "cage": CAGE,
                                                     "snorkel": SnorkelLabelModel}


def snorkel_available() -> bool:
    try:
        import snorkel.labeling.model  # noqa: F401
    except ImportError:
        return False
    return True


def label_model_options(name: str) -> list[str]:
    if name not in LABEL_MODELS:
        raise AmalError(f"unknown label model {name!r}; choose from {sorted(LABEL_MODELS)}")
    params = inspect.signature(LABEL_MODELS[name]).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "dtype"]


def make_label_model(name: str, n_classes: int, **options: Any) -> LabelModel:
    """A label model by name (``mv``, ``cage``, ``snorkel``); unknown options are an error listing the known."""
    known = label_model_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise AmalError(f"unknown option(s) {unknown} for label model {name!r}; known: {known}")
    return LABEL_MODELS[name](n_classes, **options)

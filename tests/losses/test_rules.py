"""Rule-derived loss terms: every closed-form logit gradient against autograd in float64, masks, the JL terms'
gradients into the jointly trained label model, and the per-instance target table."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amal.core.batch import Batch
from amal.errors import AmalError
from amal.losses import CrossEntropy, Distillation
from amal.losses.rules import (
    Entropy,
    InstanceTargets,
    JointKL,
    JointLabelCE,
    KLToTarget,
    LabelModelNLL,
    LFVoteCE,
    Masked,
    QualityGuideTerm,
    SoftCrossEntropy,
)
from amal.weak.label_models import CAGE

B, C, M = 7, 3, 4


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, C, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, C, (B,), generator=g)
    soft = torch.softmax(torch.randn(B, C, generator=g, dtype=torch.float64), 1)
    lf = torch.randint(-1, C, (B, M), generator=g)
    lf[0] = -1  # a row where every LF abstains
    mask = torch.tensor([1, 0, 1, 1, 0, 1, 0], dtype=torch.float64)
    batch = Batch(torch.randn(B, 5, generator=g, dtype=torch.float64), y, torch.arange(B),
                  {"soft": soft, "mask": mask, "rules:lf": lf, "rules:unlabelled": 1 - mask})
    return logits, batch


def _cage(seed=0):
    torch.manual_seed(seed)
    m = CAGE(C, class_prior=True).build(np.ones((M, C), dtype=bool))
    with torch.no_grad():
        m.theta.normal_()
        m.bias.normal_()
    return m


def _autograd(term, logits, batch):
    z = logits.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(term.per_instance(z, batch).sum(), z, allow_unused=True)
    return torch.zeros_like(z) if g is None else g


def _terms():
    cage = _cage()
    return [
        SoftCrossEntropy("soft"),
        Entropy(),
        KLToTarget("soft"),
        LFVoteCE(1, "lf:one", mask_key="rules:unlabelled"),
        LFVoteCE(2, "lf:two", mask_key=None),
        Masked(CrossEntropy(), "mask"),
        Masked(SoftCrossEntropy("soft"), "mask"),
        JointKL(cage),
        JointLabelCE(cage),
        LabelModelNLL(cage, "supervised"),
        LabelModelNLL(cage, "marginal"),
        QualityGuideTerm(cage, torch.full((M,), 0.8, dtype=torch.float64)),
    ]


@pytest.mark.parametrize("term", _terms(), ids=lambda t: f"{type(t).__name__}:{t.name}")
def test_closed_form_logit_gradient_matches_autograd(term):
    logits, batch = _batch()
    closed = term.logit_grad(logits, batch)
    assert closed is not None and closed.shape == (B, C)
    assert torch.allclose(closed, _autograd(term, logits, batch), atol=1e-12, rtol=1e-10)
    assert term.per_instance(logits, batch).shape == (B,)


def test_masked_kd_gradient_and_values():
    logits, batch = _batch(1)
    teacher = torch.nn.Linear(5, C).double()
    term = Masked(Distillation(teacher, temperature=2.0), "mask")
    term.prepare(batch)
    assert torch.allclose(term.logit_grad(logits, batch), _autograd(term, logits, batch), atol=1e-12)
    base = Distillation(teacher, temperature=2.0).per_instance(logits, batch)
    assert torch.allclose(term.per_instance(logits, batch), base * batch.extras["mask"])
    assert (term.per_instance(logits, batch)[batch.extras["mask"] == 0] == 0).all()


def test_values_match_their_definitions():
    logits, batch = _batch(2)
    p = torch.softmax(logits, 1)
    q = batch.extras["soft"]
    assert torch.allclose(SoftCrossEntropy("soft").per_instance(logits, batch), -(q * p.log()).sum(1))
    assert torch.allclose(Entropy().per_instance(logits, batch), -(p * p.log()).sum(1))
    assert torch.allclose(KLToTarget("soft").per_instance(logits, batch), (p * (p.log() - q.log())).sum(1))
    lf = batch.extras["rules:lf"][:, 1]
    want = F.cross_entropy(logits, lf.clamp_min(0), reduction="none") * (lf >= 0) * batch.extras["rules:unlabelled"]
    assert torch.allclose(LFVoteCE(1, "lf:x").per_instance(logits, batch), want)


def test_label_model_terms_equal_cage_and_train_it():
    cage = _cage(3)
    logits, batch = _batch(3)
    L = batch.extras["rules:lf"]
    sup, marg = LabelModelNLL(cage, "supervised"), LabelModelNLL(cage, "marginal")
    assert torch.allclose(sup.per_instance(logits, batch), cage.nll_supervised(L, batch.y))
    assert torch.allclose(marg.per_instance(logits, batch), cage.nll_marginal(L))
    assert torch.equal(JointLabelCE(cage)._labels(batch), cage.posterior(L).argmax(1))
    for term in (JointKL(cage), sup, marg, QualityGuideTerm(cage, torch.full((M,), 0.9, dtype=torch.float64))):
        cage.zero_grad()
        term.per_instance(logits, batch).sum().backward()
        assert cage.theta.grad is not None and cage.theta.grad.abs().sum() > 0, term.name
    with pytest.raises(AmalError, match="mode must be"):
        LabelModelNLL(cage, "joint")


def test_instance_targets_fill_by_index_and_errors():
    t = InstanceTargets({"a": torch.arange(10.0), "b": torch.arange(20).view(10, 2)})
    b = Batch(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), torch.tensor([7, 2, 9]))
    t.fill(b)
    assert b.extras["a"].tolist() == [7.0, 2.0, 9.0] and b.extras["b"][1].tolist() == [4, 5]
    with pytest.raises(AmalError, match="different lengths"):
        InstanceTargets({"a": torch.zeros(3), "b": torch.zeros(4)})
    term = SoftCrossEntropy("missing")
    with pytest.raises(AmalError, match="batch.extras has no 'missing'"):
        term.per_instance(torch.zeros(3, 2), b)
    term = SoftCrossEntropy("b", targets=t)
    term.prepare(b)
    with pytest.raises(AmalError, match="do not match logits"):
        term.per_instance(torch.zeros(3, 5), b)

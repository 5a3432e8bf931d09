"""Label models: CAGE against brute-force enumeration of every (y, l) configuration, majority vote by hand,
the Snorkel adapter (when installed), and the errors malformed inputs must give."""

import itertools
import math

import numpy as np
import pytest
import torch

from amal.errors import AmalError
from amal.weak.label_models import CAGE, MajorityVote, label_model_options, make_label_model, snorkel_available
from amal.weak.synthetic import synthetic_rules

C = 3
ALLOWED = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=bool)  # LF 2 may vote any class: beyond CAGE's paper


def _random_cage(seed=0, continuous=None, class_prior=True):
    torch.manual_seed(seed)
    m = CAGE(C, class_prior=class_prior).build(ALLOWED, continuous)
    with torch.no_grad():
        m.theta.normal_()
        m.bias.normal_()
        m.pi.uniform_(1.5, 2.5)  # Beta concentrations e^π ≈ 4.5-12: smooth densities for the quadrature below
    return m


def _configs():
    """Every LF-vote vector l (each LF abstains or votes one of its classes)."""
    return torch.tensor(list(itertools.product(*[[-1, *np.flatnonzero(a)] for a in ALLOWED])))


def _brute_log_joint(m, L):
    """log of exp(b_y) Π_j ψ_j(l_j, y), normalised by summing it over every (y, l): no closed form used."""
    th, b = m.theta.detach(), m.bias.detach()
    un = torch.zeros(L.shape[0], C, dtype=torch.float64)
    for i, cfg in enumerate(L.tolist()):
        for y in range(C):
            un[i, y] = b[y] + sum(th[j, c, y] for j, c in enumerate(cfg) if c >= 0)
    configs = _configs()
    z = torch.zeros(configs.shape[0], C, dtype=torch.float64)
    for i, cfg in enumerate(configs.tolist()):
        for y in range(C):
            z[i, y] = b[y] + sum(th[j, c, y] for j, c in enumerate(cfg) if c >= 0)
    return un - torch.logsumexp(z.flatten(), 0)


def test_cage_joint_is_a_distribution_and_matches_enumeration():
    m = _random_cage()
    L = _configs()
    with torch.no_grad():
        lj = m.log_joint(L)
    assert abs(float(lj.exp().sum()) - 1.0) < 1e-12
    assert torch.allclose(lj, _brute_log_joint(m, L), atol=1e-12, rtol=0)


def test_cage_nll_terms_match_enumeration():
    m = _random_cage(1)
    L = _configs()[[0, 3, 7, 11, 15]]
    y = torch.tensor([0, 2, 1, 1, 0])
    brute = _brute_log_joint(m, L)
    with torch.no_grad():
        assert torch.allclose(m.nll_marginal(L), -torch.logsumexp(brute, 1), atol=1e-12, rtol=0)
        assert torch.allclose(m.nll_supervised(L, y), -brute[torch.arange(5), y], atol=1e-12, rtol=0)


def test_cage_precision_matches_enumeration():
    """P(y = c | l_j = c) with the other LFs marginalised, by summing the joint over every configuration."""
    m = _random_cage(2)
    configs = _configs()
    with torch.no_grad():
        joint = m.log_joint(configs).exp()
        prec = m.lf_precision()
    for j in range(ALLOWED.shape[0]):
        for c in range(C):
            if not ALLOWED[j, c]:
                assert math.isnan(float(prec[j, c]))
                continue
            p = joint[configs[:, j] == c].sum(0)
            assert abs(float(p[c] / p.sum()) - float(prec[j, c])) < 1e-12


def test_cage_with_continuous_scores_integrates_to_one():
    """Σ_{y,l} ∫ P(y, l, s) ds = 1 when LF 1 and LF 2 give Beta-distributed scores (midpoint quadrature)."""
    m = _random_cage(3, continuous=np.array([False, True, True]))
    grid = (torch.arange(400, dtype=torch.float64) + 0.5) / 400
    total = 0.0
    with torch.no_grad():
        for cfg in _configs().tolist():
            fired = [j for j in (1, 2) if cfg[j] >= 0]
            pts = list(itertools.product(grid.tolist(), repeat=len(fired))) if fired else [()]
            S = torch.zeros(len(pts), 3, dtype=torch.float64)
            for col, j in enumerate(fired):
                S[:, j] = torch.tensor([p[col] for p in pts], dtype=torch.float64)
            L = torch.tensor([cfg] * len(pts))
            dens = m.log_joint(L, S).exp().sum(1)
            total += float(dens.mean())  # mean over the grid = the integral over the unit cube
    assert abs(total - 1.0) < 2e-3


def test_cage_scores_change_the_posterior_in_the_right_direction():
    m = _random_cage(4, continuous=np.array([False, True, False]), class_prior=False)
    with torch.no_grad():
        m.theta.zero_()
        m.pi.fill_(math.log(20.0))
        L = torch.tensor([[-1, 1, -1], [-1, 1, -1]])
        S = torch.tensor([[0.0, 0.95, 0.0], [0.0, 0.05, 0.0]], dtype=torch.float64)
        p = m.posterior(L, S)
    assert p[0, 1] > 0.5 > p[1, 1]  # a confident vote for class 1 supports class 1, an unconfident one does not


def test_cage_fit_loss_gradient_against_finite_differences():
    m = _random_cage(5, continuous=np.array([False, True, False]))
    rng = np.random.default_rng(0)
    L = torch.as_tensor(np.stack([rng.choice([-1, *np.flatnonzero(a)], size=12) for a in ALLOWED], 1))
    S = torch.as_tensor(rng.uniform(0.05, 0.95, size=(12, 3)))
    y = torch.as_tensor(rng.integers(0, C, size=4))
    q = torch.tensor([0.8, 0.7, 0.6], dtype=torch.float64)

    def f(theta, pi, bias):
        with torch.no_grad():
            m.theta.copy_(theta), m.pi.copy_(pi), m.bias.copy_(bias)
        return float(m.fit_loss(L[:8], S[:8], L[8:], y, S[8:], q).detach())

    params = [m.theta.detach().clone(), m.pi.detach().clone(), m.bias.detach().clone()]
    loss = m.fit_loss(L[:8], S[:8], L[8:], y, S[8:], q)
    grads = torch.autograd.grad(loss, [m.theta, m.pi, m.bias])
    eps = 1e-6
    for k, (p, g) in enumerate(zip(params, grads)):
        flat = p.flatten()
        for i in range(0, flat.numel(), max(1, flat.numel() // 7)):
            up, down = [q_.clone() for q_ in params], [q_.clone() for q_ in params]
            up[k].view(-1)[i] += eps
            down[k].view(-1)[i] -= eps
            fd = (f(*up) - f(*down)) / (2 * eps)
            assert abs(fd - float(g.flatten()[i])) < 1e-6 * max(1.0, abs(fd)), (k, i)


def _synthetic(seed=0):
    return synthetic_rules(2000, n_classes=2, n_lfs=10, region_threshold=99.0, seed=seed)  # no wrong region


def test_cage_fit_beats_majority_vote_and_lowers_its_loss():
    syn = _synthetic()
    cage = CAGE(2, epochs=150, lr=0.05).fit(syn.L)
    mv = MajorityVote(2).fit(syn.L)
    covered = (syn.L >= 0).any(1)
    acc_cage = float((cage.predict(syn.L) == syn.y)[covered].mean())
    acc_mv = float((mv.predict(syn.L) == syn.y)[covered].mean())
    assert cage.losses[-1] < cage.losses[0]
    assert acc_cage > 0.8 and acc_cage >= acc_mv - 0.01, (acc_cage, acc_mv)
    proba = cage.predict_proba(syn.L)
    assert proba.shape == (2000, 2) and np.allclose(proba.sum(1), 1.0)


def test_cage_supervised_rows_and_quality_guides_are_used():
    syn = _synthetic(1)
    plain = CAGE(2, epochs=100, lr=0.05).fit(syn.L)
    guided = CAGE(2, epochs=100, lr=0.05, quality=0.99).fit(syn.L)
    assert float(np.nanmean(guided.lf_precision().detach())) > float(np.nanmean(plain.lf_precision().detach()))
    sup = CAGE(2, epochs=100, lr=0.05).fit(syn.L[:1500], L_l=syn.L[1500:], y_l=syn.y[1500:])
    assert not np.allclose(sup.predict_proba(syn.L), plain.predict_proba(syn.L))
    assert np.isclose(sup.prior.sum(), 1.0) and sup.prior[1] != 0.5  # class prior of the labelled rows


def test_majority_vote_by_hand():
    L = np.array([[0, 0, 1], [1, -1, 1], [0, 1, -1], [-1, -1, -1]])
    mv = MajorityVote(2).fit(L, L_l=np.array([[0, -1, -1]] * 3), y_l=np.array([0, 0, 1]))
    p = mv.predict_proba(L)
    assert np.allclose(p[0], [1, 0]) and np.allclose(p[1], [0, 1]) and np.allclose(p[2], [0.5, 0.5])
    assert np.allclose(p[3], [3 / 5, 2 / 5])  # no vote: add-one-smoothed prior of the labelled set
    assert mv.predict(L).tolist() == [0, 1, 0, 0]  # the tie (row 2) goes to the more frequent class
    assert np.allclose(MajorityVote(2, abstain="uniform").fit(L).predict_proba(L)[3], [0.5, 0.5])
    with pytest.raises(AmalError, match="every LF abstains.*first: row 3"):
        MajorityVote(2, abstain="error").fit(L).predict_proba(L)


@pytest.mark.parametrize("model", ["mv", "cage"])
def test_malformed_inputs_give_clear_errors(model):
    lm = make_label_model(model, 2)
    with pytest.raises(AmalError, match="every row of the LF matrix abstains"):
        lm.fit(np.full((5, 3), -1))
    with pytest.raises(AmalError, match=r"LF matrix\[1, 2\] = 2: values must be -1 or 0..1"):
        lm.fit(np.array([[0, 1, -1], [1, 0, 2]]))
    with pytest.raises(AmalError, match="must be 2-D"):
        lm.fit(np.array([0, 1, -1]))
    with pytest.raises(AmalError, match="give both L_l and y_l"):
        lm.fit(np.array([[0, 1]]), L_l=np.array([[0, 1]]))
    with pytest.raises(AmalError, match="labelled LF matrix has 1 LF columns, expected 2"):
        lm.fit(np.array([[0, 1]]), L_l=np.array([[0]]), y_l=np.array([0]))
    with pytest.raises(AmalError, match="labelled-set labels must be class indices"):
        lm.fit(np.array([[0, 1]]), L_l=np.array([[0, 1]]), y_l=np.array([5]))
    lm.fit(np.array([[0, 1], [1, -1]]))
    with pytest.raises(AmalError, match="3 LF columns, expected 2"):
        lm.predict_proba(np.array([[0, 1, 1]]))


def test_cage_specific_errors():
    with pytest.raises(AmalError, match="not fitted"):
        CAGE(2).predict_proba(np.array([[0]]))
    cage = CAGE(2, epochs=5).fit(np.array([[0, -1], [0, 1], [-1, 1]]))
    with pytest.raises(AmalError, match="LF 0 voted class 1 .* never voted"):
        cage.predict_proba(np.array([[1, -1]]))
    with pytest.raises(AmalError, match="quality guides must be one value or one per LF"):
        CAGE(2, epochs=1, quality=[0.9, 0.9, 0.9]).fit(np.array([[0, 1]]))
    with pytest.raises(AmalError, match="qc must lie in"):
        CAGE(2, qc=1.5)
    with pytest.raises(AmalError, match="at least 2 classes"):
        MajorityVote(1)


def test_registry_errors_and_options():
    with pytest.raises(AmalError, match="unknown label model 'bogus'"):
        make_label_model("bogus", 2)
    with pytest.raises(AmalError, match=r"unknown option\(s\) \['epochz'\] for label model 'cage'"):
        make_label_model("cage", 2, epochz=3)
    assert {"epochs", "lr", "quality", "qc", "class_prior"} <= set(label_model_options("cage"))
    assert "dtype" not in label_model_options("cage")


@pytest.mark.skipif(not snorkel_available(), reason="snorkel is not installed (pip install 'amal[snorkel]')")
def test_snorkel_adapter():
    syn = _synthetic(2)
    lm = make_label_model("snorkel", 2, epochs=200).fit(syn.L, L_l=syn.L[:50], y_l=syn.y[:50])
    proba = lm.predict_proba(syn.L)
    covered = (syn.L >= 0).any(1)
    assert proba.shape == (2000, 2) and np.allclose(proba.sum(1), 1.0)
    assert float((lm.predict(syn.L) == syn.y)[covered].mean()) > 0.8


def test_snorkel_missing_gives_install_hint(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("snorkel"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(AmalError, match=r"pip install 'amal\[snorkel\]'"):
        make_label_model("snorkel", 2)

"""KD baselines: each loss against a hand computation, DGKD / TAKD / L2RW mechanics, and that every
baseline trains through the ``Trainer`` with an exact resume."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import lambertw
from torch import nn
from torch.func import functional_call

from amal.core.batch import Batch
from amal.core.mixer import AMAL
from amal.data import make_splits
from amal.distill.baselines import (
    BASELINES,
    DGKD,
    L2RW,
    MixedTerm,
    SuperLoss,
    SuperLossKD,
    baseline_options,
    kd_train_fn,
    kd_uniform,
    l2rw_weights,
    lambert_w,
    make_baseline,
    superloss_sigma,
    takd_chain,
)
from amal.errors import AmalError
from amal.losses import CrossEntropy, Distillation
from amal.models import MLP
from amal.train.config import OptimConfig
from amal.train.trainer import Trainer, make_optimizer

pytestmark = pytest.mark.usefixtures("single_thread")

C, DIM = 4, 6
_RULE = torch.randn(DIM, C, generator=torch.Generator().manual_seed(7))


def _label(x):
    return (x @ _RULE.to(x.dtype)).argmax(1)


def _teacher(seed, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Linear(DIM, C).to(dtype)


def _batch(n=10, seed=0, dtype=torch.float32, n_train=50):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=g, dtype=dtype)
    idx = torch.randperm(n_train, generator=g)[:n]
    return Batch(x, _label(x), idx)


def _kd(z, t, T):
    p_t = torch.softmax(t / T, 1)
    return T**2 * (p_t * (torch.log(p_t) - torch.log_softmax(z / T, 1))).sum(1)


# ---------------------------------------------------------------------------------------------- uniform KD
def test_kd_uniform_is_ce_plus_mean_of_teacher_kd():
    teachers = [_teacher(s) for s in (1, 2, 3)]
    student = MLP(DIM, C, hidden=(5,))
    meta = make_baseline("kd_uniform", student, teachers, 50, weight=0.6, temperature=2.0)
    assert isinstance(meta, AMAL) and meta.schedule.name == "fixed"
    assert meta.table.columns == ["ce", "kd0", "kd1", "kd2"]
    assert torch.allclose(meta.table.values[7], torch.tensor([0.4, 0.2, 0.2, 0.2]))
    b = _batch()
    loss, z = meta.loss(b)
    with torch.no_grad():
        kd = torch.stack([_kd(z, t(b.x), 2.0) for t in teachers], 1).mean(1)
    hand = (0.4 * F.cross_entropy(z, b.y, reduction="none") + 0.6 * kd).mean()
    assert torch.allclose(loss, hand, atol=1e-6)
    one = kd_uniform(student, teachers[:1], 50, weight=0.9)
    assert one.table.columns == ["ce", "kd"] and torch.allclose(one.table.values[0], torch.tensor([0.1, 0.9]))


# ---------------------------------------------------------------------------------------------- DGKD
def test_dgkd_drops_teachers_and_averages_the_kept_ones():
    teachers = [_teacher(s) for s in (1, 2, 3)]
    student = MLP(DIM, C, hidden=(5,))
    meta = DGKD(student, teachers, 50, weight=0.9, temperature=3.0, drop=0.5, seed=4)
    masks = []
    for step in range(25):
        b = _batch(seed=step)
        loss, z = meta.loss(b)
        keep = meta.last_kept
        assert keep is not None and keep.any()
        with torch.no_grad():
            kd = torch.stack([_kd(z, t(b.x), 3.0) for t in teachers], 1)
        hand = (0.1 * F.cross_entropy(z, b.y, reduction="none") + 0.9 * kd[:, keep].mean(1)).mean()
        assert torch.allclose(loss, hand, atol=1e-6)
        assert set(meta.last_term_means) == {"ce", "kd0", "kd1", "kd2"}  # dropped teachers are still logged
        masks.append(keep.clone())
    m = torch.stack(masks)
    assert m.any(0).all() and (~m).any(0).all()  # every teacher was kept at some step and dropped at another
    assert len({tuple(r.tolist()) for r in m}) > 2


def test_dgkd_extremes_and_expected_weights():
    teachers = [_teacher(s) for s in (1, 2, 3)]
    student = MLP(DIM, C, hidden=(5,))
    b = _batch()
    never = DGKD(student, teachers, 50, drop=0.0)
    loss, _ = never.loss(b)
    ref, _ = kd_uniform(student, teachers, 50).loss(b)
    assert torch.allclose(loss, ref) and never.last_kept.all()
    always = DGKD(student, teachers, 50, drop=1.0)
    for _ in range(10):
        assert int(always.draw().sum()) == 1  # all dropped: exactly one is re-admitted
    meta = DGKD(student, teachers, 50, weight=0.9, drop=0.5, seed=1)
    mean_w = torch.stack([meta.step_weights(meta.draw()) for _ in range(3000)]).mean(0)
    assert torch.allclose(mean_w.float(), meta.table.values[0], atol=0.02)  # the table logs the expectation
    with pytest.raises(AmalError, match="drop"):
        DGKD(student, teachers, 50, drop=1.5)


def test_dgkd_draws_resume_from_state_dict():
    teachers = [_teacher(s) for s in (1, 2)]
    a = DGKD(MLP(DIM, C, hidden=(5,)), teachers, 50, seed=3)
    for _ in range(7):
        a.draw()
    state = a.state_dict()
    expected = [a.draw() for _ in range(10)]
    b = DGKD(MLP(DIM, C, hidden=(5,)), teachers, 50, seed=99)
    b.load_state_dict(state)
    assert all(torch.equal(x, b.draw()) for x in expected)


# ---------------------------------------------------------------------------------------------- TAKD
def test_takd_chain_distils_each_stage_from_the_previous_trained_model():
    calls = []

    def fake_train(model, teachers):
        trained = nn.Sequential(model)  # a new object: the chain must pass on what train_fn returned
        calls.append((model, list(teachers), trained))
        return trained

    teacher = _teacher(0)
    specs = [16, 8]
    res = takd_chain(teacher, specs, 4, fake_train, build=lambda h: MLP(DIM, C, hidden=(h,)))
    assert [s.name for s in res.stages] == ["assistant0", "assistant1", "student"]
    assert [c[0].head.in_features for c in calls] == [16, 8, 4]  # order: largest assistant first, student last
    assert calls[0][1] == [teacher]
    assert calls[1][1][0] is calls[0][2] and calls[2][1][0] is calls[1][2]
    assert res.assistants == [calls[0][2], calls[1][2]] and res.student is calls[2][2]
    assert all(s.teacher is t for s, t in zip(res.stages, [teacher, *res.assistants]))

    in_place = []
    student = MLP(DIM, C, hidden=(3,))
    res = takd_chain(teacher, [], student, lambda m, ts: in_place.append(ts) or None)
    assert res.student is student and in_place == [[teacher]]  # no assistant: plain KD from the teacher
    with pytest.raises(AmalError, match="build"):
        takd_chain(teacher, [16], student, fake_train)


def test_kd_train_fn_trains_a_real_chain(tmp_path):
    x = torch.randn(200, DIM, generator=torch.Generator().manual_seed(0))
    splits = make_splits(x, _label(x), test_fraction=0.2, val_fraction=0.2, seed=0)
    cfg = OptimConfig(epochs=1, batch_size=64, lr=0.1)
    train_fn = kd_train_fn(splits, cfg, temperature=2.0, run_dir=str(tmp_path))
    torch.manual_seed(0)
    teacher, assistant, student = _teacher(5), MLP(DIM, C, hidden=(12,)), MLP(DIM, C, hidden=(4,))
    before = [p.detach().clone() for p in student.parameters()]
    t_before = [p.detach().clone() for p in teacher.parameters()]
    res = takd_chain(teacher, [assistant], student, train_fn)
    assert len(train_fn.results) == 2 and (tmp_path / "stage1" / "checkpoint.pt").exists()
    assert any(not torch.equal(a, b) for a, b in zip(before, res.student.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(t_before, teacher.parameters()))
    assert not any(p.requires_grad for p in assistant.parameters())  # frozen once it served as a teacher
    again = takd_chain(teacher, [MLP(DIM, C, hidden=(12,))], MLP(DIM, C, hidden=(4,)),
                       kd_train_fn(splits, cfg, temperature=2.0, run_dir=str(tmp_path)))
    assert all(torch.equal(a, b) for a, b in zip(res.student.parameters(), again.student.parameters()))  # resumed


# ---------------------------------------------------------------------------------------------- SuperLoss
def test_lambert_w_matches_scipy():
    x = torch.cat([
        torch.tensor([-1 / math.e + 1e-12, -1 / math.e + 1e-6, -0.36, -0.3, -0.25, -0.1, 0.0, 1e-12, 0.5, 1.0,
                      math.e, 3.0, 10.0, 1e3, 1e6, 1e12, 1e50], dtype=torch.float64),
        torch.linspace(-0.3678, 60.0, 1001, dtype=torch.float64),
    ])
    ref = torch.from_numpy(lambertw(x.numpy()).real)
    w = lambert_w(x)
    assert w.dtype == torch.float64
    assert torch.allclose(w, ref, rtol=1e-12, atol=1e-10)  # atol: W is ill-conditioned at the branch point
    assert torch.allclose(w * torch.exp(w), x, rtol=1e-12, atol=1e-15)
    x32 = x.float()
    ref32 = torch.from_numpy(lambertw(x32.double().numpy()).real).float()
    assert lambert_w(x32).dtype == torch.float32 and torch.allclose(lambert_w(x32), ref32, rtol=1e-6, atol=1e-6)
    assert lambert_w(torch.tensor([-5.0, -1 / math.e])).tolist() == [-1.0, -1.0]  # clamped at the branch point


def test_superloss_sigma_is_the_minimiser():
    loss = torch.tensor([0.0, 0.3, 1.0, 2.5, 7.0, 40.0], dtype=torch.float64)
    tau, lam = 1.0, 0.5
    sigma = superloss_sigma(loss, tau, lam)
    beta = (loss - tau) / lam
    inside = beta > -2 / math.e
    ref = np.exp(-lambertw(0.5 * beta[inside].numpy()).real)
    assert torch.allclose(sigma[inside], torch.from_numpy(ref), rtol=1e-12)
    # the stationary point of (ℓ − τ)σ + λ(log σ)²: (ℓ − τ)σ + 2λ log σ = 0
    stationary = ((loss - tau) * sigma + 2 * lam * torch.log(sigma))[inside]
    assert stationary.abs().max() < 1e-12
    assert torch.allclose(sigma[~inside], torch.tensor(math.e, dtype=torch.float64))
    assert torch.allclose(superloss_sigma(torch.tensor([tau]), tau, lam), torch.ones(1))
    grid = torch.linspace(0.01, 3.0, 3000, dtype=torch.float64)  # and a brute-force minimum agrees
    for i in torch.nonzero(inside).flatten().tolist():
        obj = (loss[i] - tau) * grid + lam * torch.log(grid) ** 2
        assert abs(float(grid[obj.argmin()]) - float(sigma[i])) < 2e-3


def test_superloss_term_matches_hand_computation_and_gradient():
    b = _batch(8, seed=3, dtype=torch.float64)
    torch.manual_seed(0)
    z = (3 * torch.randn(8, C, dtype=torch.float64)).requires_grad_(True)
    term = SuperLoss(CrossEntropy(), lam=0.7, tau=1.2)
    out = term.per_instance(z, b)
    ce = F.cross_entropy(z, b.y, reduction="none").detach().numpy()
    beta = (ce - 1.2) / 0.7
    with np.errstate(invalid="ignore"):  # scipy gives nan at the rounded branch point; W(−1/e) = −1 there
        sig = np.where(beta <= -2 / np.e, np.e, np.exp(-lambertw(0.5 * beta).real))
    assert (beta <= -2 / np.e).any() and (beta > 0).any()  # both regimes are covered
    hand = (ce - 1.2) * sig + 0.7 * np.log(sig) ** 2
    assert np.allclose(out.detach().numpy(), hand, rtol=1e-12, atol=1e-12)
    (g,) = torch.autograd.grad(out.sum(), z)
    ce_grad = torch.softmax(z, 1).detach() - F.one_hot(b.y, C).double()
    assert torch.allclose(g, torch.from_numpy(sig)[:, None] * ce_grad, atol=1e-12)  # σ is a constant
    assert torch.allclose(term.logit_grad(z.detach(), b), g, atol=1e-12)
    assert torch.allclose(term.last_sigma, torch.from_numpy(sig))
    assert SuperLoss(tau="log_c").current_tau(out, C) == pytest.approx(math.log(C))


def test_superloss_around_kd_mixture():
    teacher = _teacher(1, torch.float64)
    b = _batch(8, seed=4, dtype=torch.float64)
    z = torch.randn(8, C, dtype=torch.float64)
    mix = MixedTerm([CrossEntropy(), Distillation(teacher, 2.0)], {"ce": 0.25, "kd": 0.75}, name="kd_mix")
    mix.prepare(b)
    ell = 0.25 * F.cross_entropy(z, b.y, reduction="none") + 0.75 * _kd(z, teacher(b.x).detach(), 2.0)
    assert torch.allclose(mix.per_instance(z, b), ell, atol=1e-12)
    term = SuperLoss(mix, lam=1.0, tau=0.5)
    sig = superloss_sigma(ell, 0.5, 1.0)
    assert torch.allclose(term.per_instance(z, b), (ell - 0.5) * sig + torch.log(sig) ** 2, atol=1e-12)
    zg = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(term.per_instance(zg, b).sum(), zg)
    assert torch.allclose(term.logit_grad(z, b), g, atol=1e-12)


def test_superloss_baseline_ema_tau_and_sigma_table():
    student = MLP(DIM, C, hidden=(5,))
    meta = make_baseline("superloss", student, [], 50, momentum=0.8)
    assert isinstance(meta, SuperLossKD) and meta.table.columns == ["superloss"]
    b1, b2 = _batch(seed=1), _batch(seed=2)
    loss1, z1 = meta.loss(b1)
    ce1 = F.cross_entropy(z1, b1.y, reduction="none").detach()
    tau1 = float(ce1.mean())  # first batch: its own mean
    sig1 = superloss_sigma(ce1, tau1, 1.0)
    assert torch.allclose(loss1, ((ce1 - tau1) * sig1 + torch.log(sig1) ** 2).mean(), atol=1e-6)
    assert torch.allclose(meta.table.rows(b1.idx)[:, 0], sig1, atol=1e-6)
    assert meta.term.tau_ema == pytest.approx(tau1)
    loss2, z2 = meta.loss(b2)
    ce2 = F.cross_entropy(z2, b2.y, reduction="none").detach()
    sig2 = superloss_sigma(ce2, tau1, 1.0)  # τ for batch 2: the EMA over batch 1
    assert torch.allclose(loss2, ((ce2 - tau1) * sig2 + torch.log(sig2) ** 2).mean(), atol=1e-6)
    assert meta.term.tau_ema == pytest.approx(0.8 * tau1 + 0.2 * float(ce2.mean()))
    state = meta.state_dict()
    other = make_baseline("superloss", MLP(DIM, C, hidden=(5,)), [], 50)
    other.load_state_dict(state)
    assert other.term.tau_ema == meta.term.tau_ema and torch.equal(other.table.values, meta.table.values)
    with_kd = make_baseline("superloss", student, [_teacher(1)], 50)
    assert with_kd.term.base.name == "kd_mix"
    assert make_baseline("superloss", student, [_teacher(1)], 50, wrap="ce").term.base.name == "ce"


# ---------------------------------------------------------------------------------------------- L2RW
def _val(n=20, seed=11, dtype=torch.float64):
    x = torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return x, _label(x)


def _total(z, b, teacher):
    ce = F.cross_entropy(z, b.y, reduction="none")
    return ce if teacher is None else 0.1 * ce + 0.9 * _kd(z, teacher(b.x).detach(), 4.0)


@pytest.mark.parametrize("with_teacher", [False, True])
@pytest.mark.parametrize("engine", ["lookahead", "last_layer"])
def test_l2rw_weights_match_autograd_lookahead(engine, with_teacher):
    torch.manual_seed(0)
    model = MLP(DIM, C, hidden=(5,)).double()
    teacher = _teacher(2, torch.float64) if with_teacher else None
    xv, yv = _val()
    meta = L2RW(model, 50, (xv, yv), teachers=[teacher] if teacher else [], engine=engine, val_batch=len(yv))
    b = _batch(6, seed=5, dtype=torch.float64)
    loss, z = meta.loss(b)

    eta = 0.3  # any η: at ε = 0 it only scales the gradient
    eps = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    if engine == "lookahead":
        names, params = zip(*model.named_parameters())
        ell = _total(functional_call(model, dict(zip(names, params)), (b.x,)), b, teacher)
        grads = torch.autograd.grad((eps * ell).sum() / 6, params, create_graph=True)
        new = {n: p - eta * g for n, p, g in zip(names, params, grads)}
        val_loss = F.cross_entropy(functional_call(model, new, (xv,)), yv)
    else:
        h, hv = model.body(b.x).detach(), model.body(xv).detach()
        W, c = model.head.weight, model.head.bias
        ell = _total(h @ W.T + c, b, teacher)
        gw, gc = torch.autograd.grad((eps * ell).sum() / 6, (W, c), create_graph=True)
        val_loss = F.cross_entropy(hv @ (W - eta * gw).T + (c - eta * gc), yv)
    (d_eps,) = torch.autograd.grad(val_loss, eps)
    w = (-d_eps).clamp_min(0)
    w = w / w.sum()
    assert torch.allclose(meta.last_weights, w, atol=1e-12)
    assert torch.allclose(loss, (w * _total(z, b, teacher)).sum(), atol=1e-12)
    assert torch.allclose(meta.table.rows(b.idx)[:, 0].double(), 6 * w, atol=1e-6)
    assert model.training  # restored after the eval-mode look-ahead


def test_l2rw_downweights_flipped_labels():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = nn.Linear(DIM, C).double()
    with torch.no_grad():  # an under-confident but correct classifier
        model.weight.copy_(0.3 * _RULE.T.double())
        model.bias.zero_()
    x = torch.randn(40, DIM, generator=g, dtype=torch.float64)
    y = _label(x)
    flipped = torch.zeros(40, dtype=torch.bool)
    flipped[::4] = True
    y[flipped] = (y[flipped] + 1) % C
    b = Batch(x, y, torch.arange(40))
    weights = {}
    for engine in ("last_layer", "lookahead"):  # a linear model: its head is the whole network
        meta = L2RW(model, 40, _val(200), engine=engine, val_batch=200)
        meta.loss(b)
        weights[engine] = meta.last_weights
    assert torch.allclose(weights["last_layer"], weights["lookahead"], atol=1e-12)
    w = weights["lookahead"]
    assert w[flipped].mean() < 0.2 * w[~flipped].mean()
    assert w[flipped].max() < w[~flipped].mean() and (w[flipped] == 0).float().mean() >= 0.5


def test_l2rw_weights_normalisation_and_errors():
    assert torch.allclose(l2rw_weights(torch.tensor([0.5, 0.0, 2.0])), torch.full((3,), 1 / 3))  # none helps: uniform
    assert torch.allclose(l2rw_weights(torch.tensor([-1.0, 3.0, -3.0])), torch.tensor([0.25, 0.0, 0.75]))
    model = MLP(DIM, C, hidden=(5,))
    with pytest.raises(AmalError, match="validation"):
        make_baseline("l2rw", model, [], 50)
    meta = make_baseline("l2rw", model, [], 50, _val(dtype=torch.float32))
    assert meta.start_epoch(0, []) is None
    with pytest.raises(AmalError, match="no sweep"):
        meta.sweep([])


# ---------------------------------------------------------------------------------------------- registry + Trainer
def test_make_baseline_registry_and_errors():
    assert sorted(BASELINES) == ["dgkd", "kd_uniform", "l2rw", "superloss"]
    assert "drop" in baseline_options("dgkd") and "engine" in baseline_options("l2rw")
    model = MLP(DIM, C, hidden=(5,))
    with pytest.raises(AmalError, match="unknown baseline"):
        make_baseline("takd", model, [], 50)
    with pytest.raises(AmalError, match=r"unknown option.*known"):
        make_baseline("dgkd", model, [_teacher(1)], 50, dropout=0.3)
    with pytest.raises(AmalError, match="teacher"):
        make_baseline("kd_uniform", model, [], 50)
    with pytest.raises(AmalError, match="weight"):
        make_baseline("kd_uniform", model, [_teacher(1)], 50, weight=1.5)
    with pytest.raises(AmalError, match="wrap"):
        make_baseline("superloss", model, [], 50, wrap="kd")


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", ["kd_uniform", "dgkd", "superloss", "l2rw"])
def test_baseline_trains_through_trainer_and_resumes_exactly(tmp_path, name):
    x = torch.randn(300, DIM, generator=torch.Generator().manual_seed(0))
    splits = make_splits(x, _label(x), test_fraction=0.2, val_fraction=0.3, noise=0.2, seed=0)
    teachers = [_teacher(1), _teacher(2)]
    cfg = OptimConfig(epochs=3, batch_size=32, lr=0.1)

    def trainer(run_dir, seed):
        torch.manual_seed(seed)
        model = MLP(DIM, C, hidden=(8,), dropout=0.2)  # dropout: the global RNG must be restored too
        opt = make_optimizer(model, cfg)
        meta = make_baseline(name, model, teachers, len(splits.train), splits.val, opt)
        return Trainer(model, meta, opt, splits.train, splits.val, cfg, run_dir=str(run_dir), seed=1)

    full = trainer(tmp_path / "full", 0).fit()

    def stop(epoch):
        if epoch == 0:
            raise _Stop

    with pytest.raises(_Stop):
        trainer(tmp_path / "cut", 0).fit(on_epoch_end=stop)
    torch.manual_seed(777)
    resumed = trainer(tmp_path / "cut", 5).fit(resume=True)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["meta"]["table"]["values"], b["meta"]["table"]["values"])
    assert a["meta"].keys() == b["meta"].keys()
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in full.rows]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in resumed.rows]
    assert all(math.isfinite(r["train_loss"]) for r in full.rows)
    col = a["meta"]["table"]["columns"][-1]
    assert f"lambda_{col}_mean" in full.rows[-1]
    if name in ("superloss", "l2rw"):  # per-instance weights were recorded
        assert a["meta"]["table"]["values"].std() > 0

"""float64 checks of both hypergradient engines against independent references."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amal.core.batch import Batch
from amal.core.engines import Chunk, EngineContext, ValSample, make_engine
from amal.core.term import logit_grads
from amal.losses import CrossEntropy, Distillation


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _setup(seed=0, n=12, m=9, d=5, c=4, batches=(5, 4, 3)):
    g = torch.Generator().manual_seed(seed)
    body = nn.Sequential(nn.Linear(d, 6), nn.Tanh())
    head = nn.Linear(6, c)
    model = nn.Sequential(body, head).double()
    teacher = nn.Linear(d, c).double()
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    xv = torch.randn(m, d, generator=g)
    yv = torch.randint(0, c, (m,), generator=g)
    terms = [CrossEntropy(), Distillation(teacher, temperature=3.0)]
    out, s = [], 0
    for b in batches:
        bt = Batch(x[s : s + b], y[s : s + b], torch.arange(s, s + b))
        for t in terms:
            t.prepare(bt)
        out.append(bt)
        s += b
    inv_b = torch.cat([torch.full((len(b),), 1.0 / len(b)) for b in out])
    lam = torch.rand(n, 2, generator=g) * 1.5 + 0.1
    return model, body, head, terms, out, inv_b, xv, yv, lam


@pytest.fixture(autouse=True, params=["dense", "factored"])
def _form(request, monkeypatch):
    """Every last_layer check runs with G built explicitly and with G applied in factored form."""
    from amal.core.engines import LastLayerEngine

    monkeypatch.setattr(LastLayerEngine, "form", request.param)


def test_auto_form_picks_the_cheaper_one():
    from amal.core.engines import LastLayerEngine

    eng = LastLayerEngine()
    eng.form = "auto"
    assert eng.use_factored(m=1000, n=384, d=32) and not eng.use_factored(m=1000, n=384, d=2048)


def _last_layer_grad(model, body, head, terms, batches, inv_b, xv, yv, lam, lr):
    with torch.no_grad():
        feats = torch.cat([body(b.x) for b in batches])
        deltas = torch.cat([logit_grads(terms, model(b.x), b) for b in batches])
        hv = body(xv)
        zv = head(hv)
    chunk = Chunk(idx=torch.cat([b.idx for b in batches]), inv_b=inv_b, features=feats, deltas=deltas)
    val = ValSample(y=yv, features=hv, logits=zv)
    obj = make_engine("last_layer").make_objective(EngineContext(model, head, terms), chunk, val, lr)
    return obj(lam)


def _explicit_head_step_grad(model, body, head, terms, batches, inv_b, xv, yv, lam, lr):
    """Reference: autograd through an explicit SGD step on (W, c) only."""
    lam = lam.clone().requires_grad_(True)
    W, c = head.weight, head.bias
    total, s = 0.0, 0
    for b in batches:
        z = F.linear(body(b.x).detach(), W, c)
        per = torch.stack([t.per_instance(z, b) for t in terms], 1)
        total = total + (lam[s : s + len(b)] * per).sum() / len(b)
        s += len(b)
    gW, gc = torch.autograd.grad(total, (W, c), create_graph=True)
    zv = F.linear(body(xv).detach(), W - lr * gW, c - lr * gc)
    lv = F.cross_entropy(zv, yv)
    return torch.autograd.grad(lv, lam)[0], lv


def test_last_layer_equals_autograd_through_explicit_head_step():
    setup = _setup()
    g_fast, lv_fast = _last_layer_grad(*setup, lr=0.7)
    g_ref, lv_ref = _explicit_head_step_grad(*setup, lr=0.7)
    assert torch.allclose(lv_fast, lv_ref, atol=1e-12)
    assert torch.allclose(g_fast, g_ref, atol=1e-12, rtol=1e-10)
    assert g_ref.abs().max() > 1e-4  # the check is not vacuous


def test_last_layer_without_bias():
    model, body, _, terms, batches, inv_b, xv, yv, lam = _setup(seed=3)
    head = nn.Linear(6, 4, bias=False).double()
    model = nn.Sequential(body, head)
    with torch.no_grad():
        feats = torch.cat([body(b.x) for b in batches])
        deltas = torch.cat([logit_grads(terms, model(b.x), b) for b in batches])
    chunk = Chunk(idx=torch.cat([b.idx for b in batches]), inv_b=inv_b, features=feats, deltas=deltas)
    val = ValSample(y=yv, features=body(xv).detach(), logits=model(xv).detach())
    g_fast, _ = make_engine("last_layer").make_objective(EngineContext(model, head, terms), chunk, val, 0.5)(lam)
    lam_ = lam.clone().requires_grad_(True)
    total = sum(
        (lam_[b.idx] * torch.stack([t.per_instance(model(b.x), b) for t in terms], 1)).sum() / len(b)
        for b in batches
    )
    (gW,) = torch.autograd.grad(total, head.weight, create_graph=True)
    lv = F.cross_entropy(F.linear(body(xv), head.weight - 0.5 * gW), yv)
    (g_ref,) = torch.autograd.grad(lv, lam_)
    assert torch.allclose(g_fast, g_ref, atol=1e-12)


def test_lookahead_equals_finite_differences():
    model, body, head, terms, batches, inv_b, xv, yv, lam = _setup(seed=1)
    model.eval()
    chunk = Chunk(idx=torch.cat([b.idx for b in batches]), inv_b=inv_b, batches=batches)
    val = ValSample(y=yv, x=xv)
    lr = 0.3
    obj = make_engine("lookahead").make_objective(EngineContext(model, head, terms), chunk, val, lr)
    grad, _ = obj(lam)

    def val_loss(lam_):
        params = dict(model.named_parameters())
        total = sum(
            (lam_[b.idx] * torch.stack([t.per_instance(model(b.x), b) for t in terms], 1)).sum() / len(b)
            for b in batches
        )
        grads = torch.autograd.grad(total, list(params.values()))
        new = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
        return F.cross_entropy(torch.func.functional_call(model, new, (xv,)), yv).item()

    eps = 1e-6
    fd = torch.zeros_like(lam)
    for i in range(lam.shape[0]):
        for k in range(lam.shape[1]):
            lp, lm = lam.clone(), lam.clone()
            lp[i, k] += eps
            lm[i, k] -= eps
            fd[i, k] = (val_loss(lp) - val_loss(lm)) / (2 * eps)
    assert torch.allclose(grad, fd, atol=1e-8, rtol=1e-6)
    assert fd.abs().max() > 1e-4


def test_engines_agree_when_only_head_trains():
    model, body, head, terms, batches, inv_b, xv, yv, lam = _setup(seed=2)
    for p in body.parameters():
        p.requires_grad_(False)
    model.eval()
    g_fast, lv_fast = _last_layer_grad(model, body, head, terms, batches, inv_b, xv, yv, lam, lr=1.3)
    chunk = Chunk(idx=torch.cat([b.idx for b in batches]), inv_b=inv_b, batches=batches)
    obj = make_engine("lookahead").make_objective(
        EngineContext(model, head, terms), chunk, ValSample(y=yv, x=xv), 1.3
    )
    g_exact, lv_exact = obj(lam)
    assert torch.allclose(g_fast, g_exact, atol=1e-12, rtol=1e-10)
    assert torch.allclose(lv_fast, lv_exact, atol=1e-12)


def test_last_layer_reproduces_materialised_per_instance_gradients():
    """The authors' form: build every per-instance head gradient (C×D) explicitly, take the λ-weighted step,
    and score each instance by −η/b_i · <∇L_V(θ'), ∇ℓ_ik>. The kernel form must give the same numbers."""
    model, body, head, terms, batches, inv_b, xv, yv, lam = _setup(seed=4)
    lr = 0.9
    g_fast, _ = _last_layer_grad(model, body, head, terms, batches, inv_b, xv, yv, lam, lr)
    with torch.no_grad():
        h = torch.cat([body(b.x) for b in batches])  # [n, D]
        delta = torch.cat([logit_grads(terms, model(b.x), b) for b in batches])  # [n, K, C]
        per_w = torch.einsum("nkc,nd->nkcd", delta, h)  # [n, K, C, D]: what we never build in the engine
        per_c = delta
        w_new = head.weight - lr * torch.einsum("nk,nkcd->cd", lam * inv_b[:, None], per_w)
        c_new = head.bias - lr * torch.einsum("nk,nkc->c", lam * inv_b[:, None], per_c)
        hv = body(xv)
        e = torch.softmax(F.linear(hv, w_new, c_new), 1)
        e[torch.arange(len(yv)), yv] -= 1
        e /= len(yv)
        gw_val, gc_val = e.T @ hv, e.sum(0)
        ref = -lr * inv_b[:, None] * (
            torch.einsum("nkcd,cd->nk", per_w, gw_val) + torch.einsum("nkc,c->nk", per_c, gc_val)
        )
    assert torch.allclose(g_fast, ref, atol=1e-13, rtol=1e-10)


def test_lookahead_bias_off_moves_only_the_head_weights():
    """lookahead_bias=False: both engines take the look-ahead step on W alone (c fixed); checked against autograd
    through that explicit step, for the kernel form and for the exact engine."""
    model, body, head, terms, batches, inv_b, xv, yv, lam = _setup(seed=5)
    for p in body.parameters():
        p.requires_grad_(False)
    model.eval()
    lr = 0.8
    with torch.no_grad():
        feats = torch.cat([body(b.x) for b in batches])
        deltas = torch.cat([logit_grads(terms, model(b.x), b) for b in batches])
    chunk = Chunk(idx=torch.cat([b.idx for b in batches]), inv_b=inv_b, features=feats, deltas=deltas,
                  batches=batches)
    val = ValSample(y=yv, features=body(xv).detach(), logits=model(xv).detach(), x=xv)
    ctx = EngineContext(model, head, terms, lookahead_bias=False)
    g_fast, _ = make_engine("last_layer").make_objective(ctx, chunk, val, lr)(lam)
    g_exact, _ = make_engine("lookahead").make_objective(ctx, chunk, val, lr)(lam)
    lam_ = lam.clone().requires_grad_(True)
    total = sum((lam_[b.idx] * torch.stack([t.per_instance(model(b.x), b) for t in terms], 1)).sum() / len(b)
                for b in batches)
    (gW,) = torch.autograd.grad(total, head.weight, create_graph=True)
    lv = F.cross_entropy(F.linear(body(xv), head.weight - lr * gW, head.bias), yv)
    (g_ref,) = torch.autograd.grad(lv, lam_)
    assert torch.allclose(g_fast, g_ref, atol=1e-12) and torch.allclose(g_exact, g_ref, atol=1e-12)
    g_with, _ = make_engine("last_layer").make_objective(EngineContext(model, head, terms), chunk, val, lr)(lam)
    assert not torch.allclose(g_with, g_ref)  # the bias does matter when it moves

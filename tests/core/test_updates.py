"""λ update rules chosen by name: sgd (the authors'), normalized and adam (scale-free)."""

import pytest
import torch

from amal.core.updates import UPDATES, AdamUpdate, make_update
from amal.errors import AmalError


def _lam_grad(n=6, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(n, k, generator=g, dtype=torch.float64)
    grad = torch.randn(n, k, generator=g, dtype=torch.float64)
    return lam, grad


def _adam(n=6, k=2, lr=0.1):
    upd = make_update("adam", lr)
    upd.bind(n, k, torch.device("cpu"))
    return upd


def _rms(t):
    return float(t.pow(2).mean().sqrt())


def test_registry_names():
    assert set(UPDATES) == {"sgd", "normalized", "adam"}


def test_unknown_name_raises():
    with pytest.raises(AmalError, match="unknown lambda update"):
        make_update("rmsprop")


@pytest.mark.parametrize("lr", [0.0, -1.0])
def test_non_positive_lr_raises(lr):
    with pytest.raises(AmalError, match="positive"):
        make_update("sgd", lr)


@pytest.mark.parametrize(("name", "lr"), [("sgd", 1500.0), ("normalized", 0.05), ("adam", 0.02)])
def test_default_lr(name, lr):
    assert make_update(name).lr == lr


def test_sgd_is_plain_gradient_step():
    lam, grad = _lam_grad()
    upd = make_update("sgd", 3.5)
    assert torch.allclose(upd.step(lam, grad, torch.arange(6)), lam - 3.5 * grad, atol=0, rtol=0)


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e9])
def test_normalized_step_has_rms_lr_whatever_the_scale(scale):
    lam, grad = _lam_grad()
    upd = make_update("normalized", 0.05)
    ref = upd.step(lam, grad, torch.arange(6))
    step = upd.step(lam, grad * scale, torch.arange(6)) - lam
    assert _rms(step) == pytest.approx(0.05, rel=1e-9)
    assert torch.allclose(lam + step, ref, atol=1e-12)
    # it goes against the gradient
    assert (step * grad < 0).all()


def test_normalized_zero_gradient_is_a_no_op():
    lam, _ = _lam_grad()
    out = make_update("normalized").step(lam, torch.zeros_like(lam), torch.arange(6))
    assert torch.equal(out, lam)


def test_adam_first_step_is_lr_times_sign():
    lam, grad = _lam_grad()
    upd = _adam(lr=0.1)
    out = upd.step(lam, grad, torch.arange(6))
    assert torch.allclose(out, lam - 0.1 * grad.sign(), atol=1e-9)


def test_adam_state_persists_per_index():
    n, k = 6, 2
    lam, grad = _lam_grad(n, k)
    upd = _adam(n, k)
    a, b = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    upd.step(lam[a], grad[a], a)
    upd.step(lam[a], grad[a], a)
    assert torch.equal(upd.t, torch.tensor([2.0, 2, 2, 0, 0, 0], dtype=torch.float64))
    assert (upd.m[b] == 0).all() and (upd.v[b] == 0).all()
    assert (upd.m[a] != 0).all()

    # rows with history move differently from fresh rows given the same (lam, grad)
    g2 = -grad[a]  # gradient sign flips: momentum from the two earlier steps damps the move
    seasoned = upd.step(lam[a], g2, a) - lam[a]
    fresh_upd = _adam(n, k)
    fresh = fresh_upd.step(lam[a], g2, a) - lam[a]
    assert (seasoned.abs() < fresh.abs()).all()

    # rows b were never touched by the steps on a: their first step is a plain first Adam step
    out_b = upd.step(lam[b], grad[b], b)
    assert torch.allclose(out_b, lam[b] - upd.lr * grad[b].sign(), atol=1e-9)


def test_adam_matches_hand_written_reference():
    n, k = 4, 3
    upd = _adam(n, k, lr=0.01)
    b1, b2, eps = upd.betas[0], upd.betas[1], upd.eps
    lam, _ = _lam_grad(n, k)
    m = torch.zeros(n, k, dtype=torch.float64)
    v = torch.zeros(n, k, dtype=torch.float64)
    ref = lam.clone()
    for t in range(1, 5):
        _, grad = _lam_grad(n, k, seed=t)
        lam = upd.step(lam, grad, torch.arange(n))
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        ref = ref - 0.01 * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    assert torch.allclose(lam, ref, atol=1e-12)


def test_adam_state_dict_roundtrip():
    n, k = 5, 2
    lam, grad = _lam_grad(n, k)
    upd = _adam(n, k)
    upd.step(lam, grad, torch.arange(n))
    state = {key: v.clone() for key, v in upd.state_dict().items()}
    copy = _adam(n, k)
    copy.load_state_dict(state)
    assert torch.equal(copy.step(lam, grad, torch.arange(n)), upd.step(lam, grad, torch.arange(n)))


def test_adam_state_dict_is_a_snapshot():
    n, k = 3, 2
    lam, grad = _lam_grad(n, k)
    upd = _adam(n, k)
    upd.step(lam, grad, torch.arange(n))
    state = upd.state_dict()
    t_saved = state["t"].clone()
    upd.step(lam, grad, torch.arange(n))
    assert torch.equal(state["t"], t_saved), "state_dict() must not alias the live moment buffers"


def test_stateless_rules_have_empty_state():
    for name in ("sgd", "normalized"):
        assert make_update(name).state_dict() == {}
    assert isinstance(make_update("adam"), AdamUpdate)
    assert make_update("adam").state_dict() == {}  # not bound yet

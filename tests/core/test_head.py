"""find_head and FeatureCapture: locate the output nn.Linear, capture its input, refuse post-processing."""

import pytest
import torch
from torch import nn

from amal.core.head import FeatureCapture, find_head
from amal.errors import AmalError


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.aux = nn.Linear(8, 2)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.norm(self.body(x)))


class _Scaled(nn.Module):
    """Something runs after the head: the output is head(x) * 2."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x)) * 2


def _captured(model, head, x):
    cap = FeatureCapture(head)
    with cap.capture():
        out = model(x)
    return cap, out


def test_finds_last_linear():
    model = _TwoHeads()
    assert find_head(model) is model.out


def test_finds_last_linear_in_sequential():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5))
    assert find_head(model) is model[2]


def test_named_head():
    model = _TwoHeads()
    assert find_head(model, "aux") is model.aux
    assert find_head(model, "body.0") is model.body[0]


def test_named_head_must_be_linear():
    with pytest.raises(AmalError, match="not an nn.Linear"):
        find_head(_TwoHeads(), "norm")


def test_named_head_must_exist():
    with pytest.raises(AmalError, match="no submodule"):
        find_head(_TwoHeads(), "missing")


def test_model_without_linear_raises():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(AmalError, match="no nn.Linear"):
        find_head(model)


def test_capture_returns_head_input():
    torch.manual_seed(0)
    model = _TwoHeads()
    x = torch.randn(5, 4)
    cap, out = _captured(model, model.out, x)
    feats = cap.checked(out)
    assert torch.equal(feats, model.norm(model.body(x)))
    assert cap.logits is out


def test_capture_only_while_active():
    model = _TwoHeads()
    cap = FeatureCapture(model.out)
    model(torch.randn(2, 4))
    assert cap.features is None and cap.logits is None
    cap.remove()
    with cap.capture():
        model(torch.randn(2, 4))
    assert cap.features is None  # hook removed


def test_checked_accepts_equal_copy_of_output():
    model = _TwoHeads()
    cap, out = _captured(model, model.out, torch.randn(3, 4))
    assert cap.checked(out.clone()).shape == (3, 8)


def test_checked_refuses_something_after_head():
    torch.manual_seed(0)
    model = _Scaled()
    cap, out = _captured(model, find_head(model), torch.randn(3, 4))
    with pytest.raises(AmalError, match="something runs after the head"):
        cap.checked(out)


def test_checked_refuses_wrong_head():
    model = _TwoHeads()
    cap, out = _captured(model, model.aux, torch.randn(3, 4))  # aux is never called
    with pytest.raises(AmalError, match="not called"):
        cap.checked(out)


def test_checked_refuses_non_2d_features():
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 3))
    cap, out = _captured(model, model[1], torch.randn(2, 5, 4))
    with pytest.raises(AmalError, match=r"\[B, D\]"):
        cap.checked(out)

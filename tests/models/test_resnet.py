"""CIFAR ResNets and WRN-16-k: shapes, parameter counts against the literature, the head AMAL needs."""

import pytest
import torch
from torch import nn

import amal
from amal.core.head import FeatureCapture
from amal.errors import AmalError
from amal.models import MODEL_NAMES, ResNet, WideResNet, build_model
from amal.train.config import load_config


def _params(m):
    return sum(p.numel() for p in m.parameters())


# published sizes for 10 classes: ResNet-20 0.27M, -56 0.85M, -110 1.7M (He et al.), WRN-16-1 0.17M, -16-2 0.69M
@pytest.mark.parametrize("spec,millions", [
    ({"name": "resnet8"}, 0.078), ({"name": "resnet14"}, 0.175), ({"name": "resnet20"}, 0.27),
    ({"name": "resnet32"}, 0.46), ({"name": "resnet56"}, 0.85), ({"name": "resnet110"}, 1.7),
    ({"name": "wrn", "width": 1}, 0.17), ({"name": "wrn", "k": 2}, 0.69), ({"name": "wrn", "k": 4, "depth": 16}, 2.7),
])
def test_parameter_counts(spec, millions):
    m = build_model(spec, (3, 32, 32), 10)
    assert _params(m) == pytest.approx(millions * 1e6, rel=0.03)


def test_pad_shortcut_is_the_original_parameter_free_design():
    assert _params(ResNet(20, shortcut="pad")) == 269_722  # He et al.'s option A


@pytest.mark.parametrize("spec", [{"name": "resnet8"}, {"name": "resnet20", "shortcut": "pad"},
                                  {"name": "wrn", "k": 2, "dropout": 0.3}, {"name": "resnet8", "width": 2}])
def test_forward_shapes_and_head(spec, single_thread):
    torch.manual_seed(0)
    m = build_model(spec, (3, 32, 32), 100)
    out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100) and torch.isfinite(out).all()
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert isinstance(m.head, nn.Linear) and linears[-1] is m.head and amal.find_head(m) is m.head
    assert amal.find_head(m, "head") is m.head
    cap = FeatureCapture(m.head)
    with cap.capture():
        logits = m(torch.randn(3, 3, 32, 32))
    assert torch.allclose(cap.checked(logits) @ m.head.weight.T + m.head.bias, logits, atol=1e-5)


def test_deep_resnet_runs_and_downsamples(single_thread):
    m = build_model({"name": "resnet110"}, (3, 32, 32), 10).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        assert m.layer3(m.layer2(m.layer1(m.conv1(torch.randn(1, 3, 32, 32))))).shape == (1, 64, 8, 8)
    assert len(m.layer1) == 18 and m.head.in_features == 64


def test_other_input_shapes(single_thread):
    assert build_model({"name": "resnet8"}, (1, 28, 28), 10)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert WideResNet(16, 1, n_classes=5, in_channels=1)(torch.randn(2, 1, 28, 28)).shape == (2, 5)


def test_dropout_only_in_training_mode(single_thread):
    torch.manual_seed(0)
    m = build_model({"name": "wrn", "k": 1, "dropout": 0.5}, (3, 32, 32), 10)
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    assert any(isinstance(mod, nn.Dropout) for mod in m.modules())


def test_bad_models_and_options():
    with pytest.raises(AmalError, match="needs image inputs"):
        build_model({"name": "resnet20"}, (64,), 10)
    with pytest.raises(AmalError, match="'width' or 'k', not both"):
        build_model({"name": "wrn", "k": 2, "width": 2}, (3, 32, 32), 10)
    with pytest.raises(AmalError, match="bad option for model 'resnet20'"):
        build_model({"name": "resnet20", "widht": 2}, (3, 32, 32), 10)
    with pytest.raises(AmalError, match="depth must be 6n\\+2"):
        ResNet(21)
    with pytest.raises(AmalError, match="depth must be 6n\\+4"):
        build_model({"name": "wrn", "depth": 15}, (3, 32, 32), 10)
    with pytest.raises(AmalError, match="shortcut must be"):
        ResNet(8, shortcut="proj")
    with pytest.raises(AmalError, match="unknown model 'resnet18'"):
        build_model({"name": "resnet18"}, (3, 32, 32), 10)


def test_config_accepts_the_new_names():
    for name in MODEL_NAMES:
        cfg = load_config(None, [f"model={{name: {name}}}", f"teachers.0.model={{name: {name}}}"])
        assert cfg.model["name"] == name
    cfg = load_config(None, ["data.name=cifar100", "data.data_dir=/data", "data.noise_type=asymmetric",
                             "data.augment=true"])
    assert cfg.data.name == "cifar100" and cfg.data.augment is True
    with pytest.raises(AmalError, match="model.name must be one of"):
        load_config(None, ["model={name: resnet18}"])


def test_amal_step_on_a_resnet(single_thread):
    torch.manual_seed(0)
    student, teacher = (build_model({"name": "resnet8"}, (3, 32, 32), 4) for _ in range(2))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    opt = torch.optim.SGD(student.parameters(), lr=0.05)
    meta = amal.AMAL(student, [amal.CrossEntropy(), amal.Distillation(teacher.eval(), temperature=4)], n_train=8,
                     val=(x[:4], y[:4]), optimizer=opt, schedule="online", every=1, warmup=0)
    before = meta.table.values.clone()
    loss, logits = meta.loss((x, y, torch.arange(8)))
    assert logits.shape == (8, 4) and torch.isfinite(loss)
    assert not torch.equal(meta.table.values, before)  # the look-ahead through the ResNet's head moved Λ
    loss.backward()
    assert student.conv1.weight.grad is not None

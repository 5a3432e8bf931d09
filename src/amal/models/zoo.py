"""Reference models: MLP, a small CNN, CIFAR ResNets and WRN-16-k (see :mod:`amal.models.resnet`). Each exposes
its output layer as ``self.head`` (an ``nn.Linear``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from amal.errors import AmalError
from amal.models.resnet import RESNET_DEPTHS, ResNet, WideResNet

MODEL_NAMES = ("logreg", "mlp", "cnn", *RESNET_DEPTHS, "wrn")


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: the head alone (so the ``last_layer`` engine is exact for it)."""

    def __init__(self, in_features: int, n_classes: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.head = nn.Linear(in_features, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.flatten(x))


class MLP(nn.Module):
    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (64,), dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class SmallCNN(nn.Module):
    """Conv-BN-ReLU blocks with pooling, then global average pooling and a linear head."""

    def __init__(self, in_channels: int, n_classes: int, width: Sequence[int] = (16, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for w in width:
            layers += [nn.Conv2d(prev, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            prev = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def build_model(spec: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Build from a config mapping such as ``{"name": "logreg"}``, ``{"name": "mlp", "hidden": [64]}``,
    ``{"name": "resnet20"}`` or ``{"name": "wrn", "width": 2, "dropout": 0.3}`` (WRN-16-k; ``k`` is an alias of
    ``width``, ``depth`` defaults to 16)."""
    spec = dict(spec)
    name = spec.pop("name", None)
    try:
        if name == "logreg":
            return LogisticRegression(math.prod(input_shape), n_classes, **spec)
        if name == "mlp":
            return MLP(math.prod(input_shape), n_classes, **spec)
        if name in MODEL_NAMES:  # the convolutional ones
            if len(input_shape) != 3:
                raise AmalError(f"model {name!r} needs image inputs [C, H, W], got shape {input_shape}")
            if name == "cnn":
                return SmallCNN(input_shape[0], n_classes, **spec)
            if name == "wrn":
                if "k" in spec:
                    if "width" in spec:
                        raise AmalError("model 'wrn' takes its width factor as 'width' or 'k', not both")
                    spec["width"] = spec.pop("k")
                k = spec.pop("width", 1)
                return WideResNet(k=k, n_classes=n_classes, in_channels=input_shape[0], **spec)
            return ResNet(RESNET_DEPTHS[name], n_classes=n_classes, in_channels=input_shape[0], **spec)
    except TypeError as e:
        raise AmalError(f"bad option for model {name!r}: {e}") from None
    raise AmalError(f"unknown model {name!r}; choose from {list(MODEL_NAMES)}")

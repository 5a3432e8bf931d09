"""Reference models. Each exposes its output layer as ``self.head`` (an ``nn.Linear``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from amal.errors import AmalError


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
    """Build from a config mapping such as ``{"name": "mlp", "hidden": [64]}``."""
    spec = dict(spec)
    name = spec.pop("name", None)
    try:
        if name == "mlp":
            return MLP(math.prod(input_shape), n_classes, **spec)
        if name == "cnn":
            if len(input_shape) != 3:
                raise AmalError(f"model 'cnn' needs image inputs [C, H, W], got shape {input_shape}")
            return SmallCNN(input_shape[0], n_classes, **spec)
    except TypeError as e:
        raise AmalError(f"bad option for model {name!r}: {e}") from None
    raise AmalError(f"unknown model {name!r}; choose from ['mlp', 'cnn']")

"""CIFAR-style residual networks used in the knowledge-distillation literature.

* ``ResNet`` — the 6n+2 design for 32×32 inputs: a 3×3 stem conv, three stages of ``n`` basic blocks with
  16/32/64 channels (stride 2 at the start of stages 2 and 3), global average pooling and a linear head.
  resnet8/14/20/32/44/56/110 are n = 1/2/3/5/7/9/18. ``width`` multiplies the channels (resnet32 with width 4
  is the "resnet32x4" teacher of the KD papers).
* ``WideResNet`` — WRN-d-k: pre-activation basic blocks, (d − 4)/6 per stage, channels 16k/32k/64k, optional
  dropout between the two convolutions of a block.

Every model ends in ``self.head`` (an ``nn.Linear`` on the pooled features), which is also the last
``nn.Linear`` registered, so ``amal.find_head`` finds it with or without a name.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from amal.errors import AmalError

RESNET_DEPTHS = {"resnet8": 8, "resnet14": 14, "resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56,
                 "resnet110": 110}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut, then ReLU. When the shape changes the shortcut is a strided 1×1
    conv + BN (``shortcut="conv"``) or parameter-free subsampling with zero-padded channels (``"pad"``)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "conv") -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = _conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.stride, self.extra = stride, cout - cin
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            if shortcut == "conv":
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            elif shortcut != "pad" or cout < cin:
                raise AmalError(f"shortcut must be 'conv' or 'pad' (pad needs cout >= cin), got {shortcut!r}")

    def _identity(self, x: Tensor) -> Tensor:
        if self.shortcut is not None:
            return self.shortcut(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = nn.functional.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self._identity(x))



def _stages(cin: int, widths: list[int], n: int, block: Callable[[int, int, int], nn.Module]
            ) -> tuple[list[nn.Sequential], int]:
    """Three stages of ``n`` blocks; the first block of stages 2 and 3 halves the resolution."""
    stages = []
    for i, w in enumerate(widths):
        blocks = []
        for j in range(n):
            blocks.append(block(cin, w, 2 if (i > 0 and j == 0) else 1))
            cin = w
        stages.append(nn.Sequential(*blocks))
    return stages, cin

class ResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2 (see the module docstring)."""

    def __init__(self, depth: int = 20, n_classes: int = 10, in_channels: int = 3, width: int = 1,
                 shortcut: str = "conv") -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise AmalError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), got {depth}")
        if width < 1:
            raise AmalError(f"ResNet width must be >= 1, got {width}")
        if shortcut not in ("conv", "pad"):
            raise AmalError(f"shortcut must be 'conv' or 'pad', got {shortcut!r}")
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.depth = depth
        self.conv1, self.bn1, self.relu = _conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(True)
        (self.layer1, self.layer2, self.layer3), cin = _stages(
            widths[0], widths, n, lambda cin, w, stride: BasicBlock(cin, w, stride=stride, shortcut=shortcut))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, n_classes)
        _init(self)

    def features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.pool(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv, (dropout), BN-ReLU-conv, plus a 1×1-conv shortcut when the shape
    changes (taken from the pre-activated input, as in the WRN paper)."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), _conv3x3(cout, cout)
        self.relu = nn.ReLU(inplace=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if (stride != 1 or cin != cout) else None

    def forward(self, x: Tensor) -> Tensor:
        a = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.dropout(self.conv1(a)))))
        return out + (self.shortcut(a) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """WRN-depth-k for 32×32 inputs (depth = 6n+4; WRN-16-k has n = 2 blocks per stage)."""

    def __init__(self, depth: int = 16, k: int = 1, n_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise AmalError(f"WideResNet depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if k < 1:
            raise AmalError(f"WideResNet width factor k must be >= 1, got {k}")
        if not 0 <= dropout < 1:
            raise AmalError(f"WideResNet dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        self.depth, self.k = depth, k
        widths = [16 * k, 32 * k, 64 * k]
        self.conv1 = _conv3x3(in_channels, 16)
        (self.layer1, self.layer2, self.layer3), cin = _stages(
            16, widths, n, lambda cin, w, stride: WideBlock(cin, w, stride=stride, dropout=dropout))
        self.bn, self.relu = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, n_classes)
        _init(self)

    def features(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.pool(self.relu(self.bn(x))).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def cifar_resnet(name: str, n_classes: int = 10, in_channels: int = 3, **options: object) -> ResNet:
    """``cifar_resnet("resnet20", 10)`` etc.; names in :data:`RESNET_DEPTHS`."""
    if name not in RESNET_DEPTHS:
        raise AmalError(f"unknown ResNet {name!r}; choose from {list(RESNET_DEPTHS)}")
    return ResNet(RESNET_DEPTHS[name], n_classes=n_classes, in_channels=in_channels, **options)  # type: ignore[arg-type]

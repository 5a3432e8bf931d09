"""Raw data sources returned as (x, y) tensors. No torchvision: IDX files are read directly."""

from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np
import torch
from torch import Tensor

from amal.errors import AmalError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 8×8 digits (1,797 images), scaled to [0, 1] and flattened: the embedded default."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target, dtype=torch.long)


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzipped), as used by MNIST and Fashion-MNIST."""
    if not os.path.exists(path):
        raise AmalError(f"missing data file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise AmalError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise AmalError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise AmalError(f"{path} is truncated (header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != need:
        raise AmalError(f"{path} is corrupt: expected {need} data bytes for shape {shape}, got {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_fashion_mnist(data_dir: str = FASHION_MNIST_DIR, split: str = "train") -> tuple[Tensor, Tensor]:
    """Fashion-MNIST from its four IDX files (Debian package ``dataset-fashion-mnist``).

    Returns images as float tensors [N, 1, 28, 28] in [0, 1] and labels [N].
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise AmalError(f"split must be 'train' or 'test', got {split!r}")
    if not os.path.isdir(data_dir):
        raise AmalError(
            f"Fashion-MNIST folder not found: {data_dir} (apt-get install dataset-fashion-mnist, or pass --data-dir)"
        )

    def find(stem: str) -> str:
        for name in (f"{stem}.gz", stem):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise AmalError(f"missing data file: {os.path.join(data_dir, stem + '.gz')}")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise AmalError(f"Fashion-MNIST files in {data_dir} disagree: images {images.shape}, labels {labels.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def synthetic_gmm(
    n: int = 10_000, n_classes: int = 20, dim: int = 14, spread: float = 1.0, seed: int = 0,
    separation: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The paper's Gaussian mixture: one isotropic Gaussian per class, means ~ N(0, separation²·I).

    With the default separation the classes overlap (an MLP reaches about 79 % accuracy), so methods can
    differ; at separation 2 every method is near 100 %."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n_classes, dim, generator=g) * separation
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = means[y] + spread * torch.randn(n, dim, generator=g)
    return x, y


def synthetic_spiral(
    n_per_class: int = 1_500, n_classes: int = 4, noise: float = 0.2, turns: float = 1.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Interleaved 2-d spirals, one arm per class (the paper's 4-class spiral: 1,500 points per class).

    Arm ``c`` runs from near the origin out to radius 1, its angle growing by ``turns`` full turns along the way
    and offset by ``c / n_classes`` of a turn; ``noise`` is the standard deviation of Gaussian jitter added to
    each point's angle (in radians), so larger values blur the arms into each other. Returned shuffled.
    """
    if n_per_class < 1 or n_classes < 2:
        raise AmalError(f"synthetic_spiral needs n_per_class >= 1 and n_classes >= 2, got {n_per_class}, {n_classes}")
    if noise < 0:
        raise AmalError(f"synthetic_spiral noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    r = torch.linspace(0.05, 1.0, n_per_class).repeat(n_classes)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    theta = 2 * math.pi * (y.float() / n_classes + turns * r) + noise * torch.randn(r.shape[0], generator=g)
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)
    perm = torch.randperm(x.shape[0], generator=g)
    return x[perm], y[perm]

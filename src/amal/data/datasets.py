"""Seeded train/validation/test splits, symmetric or class-dependent label noise on the training split, and the
index wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from amal.errors import AmalError


class TensorData(Dataset):
    """(x, y) tensors as a Dataset."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if x.shape[0] != y.shape[0]:
            raise AmalError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.y[i]


class Indexed(Dataset):
    """Yields ``(x, y, i)``: Λ is addressed by instance, so every batch must carry its indices."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        x, y = self.base[i]
        return x, y, i


@dataclass
class DataSplits:
    train: TensorData
    val: TensorData
    test: TensorData
    n_classes: int
    noise_mask: Tensor  # [n_train] bool: labels changed by noise injection
    clean_train_y: Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


def _symmetric_noise(y: Tensor, rate: float, n_classes: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Each label is replaced, with probability ``rate``, by a uniformly chosen *different* class."""
    flip = torch.from_numpy(rng.random(y.shape[0]) < rate)
    offset = torch.from_numpy(rng.integers(1, n_classes, size=y.shape[0]))
    noisy = torch.where(flip, (y + offset) % n_classes, y)
    return noisy, flip


def _asymmetric_noise(
    y: Tensor, rate: float, n_classes: int, rng: np.random.Generator, pair: Sequence[int] | Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Class-dependent noise: a label ``c`` becomes ``pair[c]`` (default ``(c + 1) % n_classes``) with
    probability ``rate``. The mask marks labels that actually changed (a class paired with itself never does)."""
    if pair is None:
        target = (torch.arange(n_classes) + 1) % n_classes
    else:
        target = torch.as_tensor(pair, dtype=torch.long).flatten()
        if target.numel() != n_classes:
            raise AmalError(f"noise_pair must give one target per class ({n_classes}), got {target.numel()}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
            raise AmalError(f"noise_pair targets must be classes in [0, {n_classes}), got {target.tolist()}")
    flip = torch.from_numpy(rng.random(y.shape[0]) < rate)
    noisy = torch.where(flip, target[y], y)
    return noisy, noisy != y


NOISE_TYPES = ("symmetric", "asymmetric")


def add_label_noise(
    y: Tensor, rate: float, n_classes: int, rng: np.random.Generator, noise_type: str = "symmetric",
    pair: Sequence[int] | Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Noisy copy of ``y`` and the bool mask of changed labels. ``symmetric``: a flipped label goes to a uniformly
    chosen other class; ``asymmetric``: class ``c`` goes to ``pair[c]`` (default ``c + 1`` mod C)."""
    if noise_type == "symmetric":
        if pair is not None:
            raise AmalError("noise_pair only applies to noise_type 'asymmetric'")
        return _symmetric_noise(y, rate, n_classes, rng)
    if noise_type == "asymmetric":
        return _asymmetric_noise(y, rate, n_classes, rng, pair)
    raise AmalError(f"noise_type must be one of {list(NOISE_TYPES)}, got {noise_type!r}")


def make_splits(
    x: Tensor, y: Tensor, *, test: tuple[Tensor, Tensor] | None = None, test_fraction: float = 0.2,
    val_fraction: float = 0.1, noise: float = 0.0, seed: int = 0, n_train: int | None = None,
    noise_type: str = "symmetric", noise_pair: Sequence[int] | Tensor | None = None,
) -> DataSplits:
    """Seeded splits; the validation set is carved from the training part and keeps clean labels, and so does
    the test set: label noise (``noise_type`` ``symmetric`` or ``asymmetric``, see :func:`add_label_noise`)
    touches the training split only."""
    if x.shape[0] != y.shape[0]:
        raise AmalError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    if not 0 < val_fraction < 1:
        raise AmalError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0 <= noise < 1:
        raise AmalError(f"noise must be in [0, 1), got {noise}")
    if noise_type not in NOISE_TYPES:
        raise AmalError(f"noise_type must be one of {list(NOISE_TYPES)}, got {noise_type!r}")
    rng = np.random.default_rng(seed)
    n_classes = int(max(int(y.max()), int(test[1].max()) if test is not None else 0)) + 1
    perm = torch.from_numpy(rng.permutation(x.shape[0]))
    if test is None:
        if not 0 < test_fraction < 1:
            raise AmalError(f"test_fraction must be in (0, 1), got {test_fraction}")
        n_test = max(1, int(round(test_fraction * x.shape[0])))
        xt, yt = x[perm[:n_test]], y[perm[:n_test]]
        perm = perm[n_test:]
    else:
        xt, yt = test
    n_val = max(1, int(round(val_fraction * perm.shape[0])))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if n_train is not None:
        train_idx = train_idx[:n_train]
    if train_idx.numel() == 0:
        raise AmalError("the training split is empty")
    ytr = y[train_idx]
    if noise > 0:
        noisy, mask = add_label_noise(ytr, noise, n_classes, rng, noise_type, noise_pair)
    else:
        noisy, mask = ytr, torch.zeros_like(ytr, dtype=torch.bool)
    return DataSplits(
        train=TensorData(x[train_idx], noisy), val=TensorData(x[val_idx], y[val_idx]), test=TensorData(xt, yt),
        n_classes=n_classes, noise_mask=mask, clean_train_y=ytr,
    )


DATASETS = ("digits", "fashion-mnist", "synthetic-gmm", "synthetic-spiral", "cifar10", "cifar100")


def load_dataset(
    name: str, *, data_dir: str | None = None, val_fraction: float = 0.1, test_fraction: float = 0.2,
    noise: float = 0.0, seed: int = 0, n_train: int | None = None, noise_type: str = "symmetric",
    noise_pair: Sequence[int] | None = None, download: bool = False, normalize: bool = False,
    sha256: str | None = None,
) -> DataSplits:
    """Named data sets: ``digits`` (embedded), ``fashion-mnist`` (IDX files), ``synthetic-gmm``,
    ``synthetic-spiral``, and ``cifar10`` / ``cifar100`` (official python archives in ``data_dir``; the test
    split is the official test set; ``download=True`` fetches a missing archive, checked against its published
    MD5 and the given ``sha256``; ``normalize=True`` standardises each colour channel with the training
    images' mean and standard deviation)."""
    from amal.data import sources

    common = dict(val_fraction=val_fraction, noise=noise, seed=seed, n_train=n_train, noise_type=noise_type,
                  noise_pair=noise_pair)
    if name == "digits":
        x, y = sources.load_digits()
        return make_splits(x, y, test_fraction=test_fraction, **common)
    if name == "fashion-mnist":
        d = data_dir or sources.FASHION_MNIST_DIR
        x, y = sources.load_fashion_mnist(d, "train")
        test = sources.load_fashion_mnist(d, "test")
        return make_splits(x, y, test=test, **common)
    if name == "synthetic-gmm":
        x, y = sources.synthetic_gmm(seed=seed)
        return make_splits(x, y, test_fraction=test_fraction, **common)
    if name == "synthetic-spiral":
        x, y = sources.synthetic_spiral(seed=seed)
        return make_splits(x, y, test_fraction=test_fraction, **common)
    if name in ("cifar10", "cifar100"):
        from amal.data import cifar

        if data_dir is None:
            raise AmalError(f"data set {name!r} needs data_dir (a folder holding the official archive or its "
                            f"extracted folder)")
        x, y = cifar.load_cifar(data_dir, name, "train", download=download, sha256=sha256)
        xt, yt = cifar.load_cifar(data_dir, name, "test")
        if normalize:
            mean, std = cifar.channel_stats(x)
            cifar.normalize(x, mean, std, inplace=True), cifar.normalize(xt, mean, std, inplace=True)
        return make_splits(x, y, test=(xt, yt), **common)
    raise AmalError(f"unknown data set {name!r}; choose from {list(DATASETS)}")


class TensorLoader:
    """A shuffling batch iterator over in-memory tensors that yields ``(x, y, idx)`` by slicing whole
    batches: per-item ``__getitem__`` + collate costs more than the step itself for small models."""

    def __init__(self, data: TensorData, batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None, pin_memory: bool = False) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.generator, self.pin_memory = generator, pin_memory

    def __len__(self) -> int:
        return (len(self.data) + self.batch_size - 1) // self.batch_size

    def __iter__(self):  # noqa: ANN204
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for s in range(0, n, self.batch_size):
            idx = order[s : s + self.batch_size]
            x, y = self.data.x[idx], self.data.y[idx]
            if self.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y, idx


def load_splits(data: Any, seed: int) -> DataSplits:
    """Splits for a ``DataConfig`` (the ``data:`` section of a run config)."""
    return load_dataset(
        data.name, data_dir=data.data_dir, val_fraction=data.val_fraction, test_fraction=data.test_fraction,
        noise=data.noise, seed=seed, n_train=data.n_train, noise_type=data.noise_type, noise_pair=data.noise_pair,
        download=data.download, normalize=data.normalize,
    )

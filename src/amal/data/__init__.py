"""Data sets as tensors, seeded splits, label noise, batch augmentation, and the index wrapper AMAL needs."""

from amal.data.augment import Augment, build_augment
from amal.data.cifar import RestrictedUnpickler, cifar_class_names, download_cifar, load_cifar
from amal.data.datasets import (
    DATASETS,
    NOISE_TYPES,
    DataSplits,
    Indexed,
    TensorData,
    add_label_noise,
    load_dataset,
    make_splits,
)
from amal.data.sources import load_digits, load_fashion_mnist, read_idx, synthetic_gmm, synthetic_spiral

__all__ = [
    "DATASETS", "NOISE_TYPES", "Augment", "DataSplits", "Indexed", "RestrictedUnpickler", "TensorData",
    "add_label_noise", "build_augment", "cifar_class_names", "download_cifar", "load_cifar", "load_dataset",
    "load_digits", "load_fashion_mnist", "make_splits", "read_idx", "synthetic_gmm", "synthetic_spiral",
]

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
from amal.data.text import TEXT_DATASETS, TextDataset, load_sms_spam, load_text_dataset, load_youtube_spam

__all__ = [
    "DATASETS", "NOISE_TYPES", "TEXT_DATASETS", "Augment", "DataSplits", "Indexed", "RestrictedUnpickler",
    "TensorData", "TextDataset", "add_label_noise", "build_augment", "cifar_class_names", "download_cifar",
    "load_cifar", "load_dataset", "load_digits", "load_fashion_mnist", "load_sms_spam", "load_text_dataset",
    "load_youtube_spam", "make_splits", "read_idx", "synthetic_gmm", "synthetic_spiral",
]

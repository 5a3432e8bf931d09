"""Data sets as tensors, seeded splits, and the index wrapper AMAL needs."""

from amal.data.datasets import DataSplits, Indexed, TensorData, load_dataset, make_splits
from amal.data.sources import load_digits, load_fashion_mnist, read_idx, synthetic_gmm

__all__ = [
    "DataSplits", "Indexed", "TensorData", "load_dataset", "load_digits", "load_fashion_mnist", "make_splits",
    "read_idx", "synthetic_gmm",
]

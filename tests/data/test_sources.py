import gzip
import struct

import numpy as np
import pytest
import torch

from amal.data import load_dataset, make_splits, read_idx
from amal.data.sources import load_fashion_mnist
from amal.errors import AmalError


def _idx(path, arr, gz=True):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _fake_fmnist(folder, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,), dtype=np.uint8))


def test_fashion_mnist_from_generated_idx_files(tmp_path):
    _fake_fmnist(tmp_path)
    x, y = load_fashion_mnist(str(tmp_path), "train")
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (20,) and y.dtype == torch.long
    splits = load_dataset("fashion-mnist", data_dir=str(tmp_path))
    assert len(splits.test) == 10 and len(splits.train) + len(splits.val) == 20


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(AmalError, match="not found"):
        load_fashion_mnist(str(tmp_path / "absent"))
    _fake_fmnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(AmalError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(str(tmp_path), "test")
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.open(bad).read()
    gzip.open(bad, "wb").write(raw[:-5])
    with pytest.raises(AmalError, match="train-images-idx3-ubyte.gz is corrupt"):
        load_fashion_mnist(str(tmp_path), "train")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(AmalError, match="not an IDX file"):
        read_idx(str(junk))


def test_splits_are_seeded_and_noise_only_on_train():
    x, y = torch.randn(1000, 3), torch.randint(0, 5, (1000,))
    a = make_splits(x, y, noise=0.4, seed=1)
    b = make_splits(x, y, noise=0.4, seed=1)
    assert torch.equal(a.train.y, b.train.y) and torch.equal(a.val.x, b.val.x)
    flipped = a.train.y != a.clean_train_y
    assert torch.equal(flipped, a.noise_mask)  # every noisy label really differs from the clean one
    assert 0.33 < a.noise_mask.float().mean() < 0.47
    assert len(a.val) == round(0.1 * 800) and len(a.test) == 200


def test_bad_split_arguments():
    x, y = torch.randn(10, 2), torch.randint(0, 2, (10,))
    with pytest.raises(AmalError, match="val_fraction"):
        make_splits(x, y, val_fraction=0)
    with pytest.raises(AmalError, match="rows"):
        make_splits(x, y[:5])
    with pytest.raises(AmalError, match="unknown data set"):
        load_dataset("imagenet")

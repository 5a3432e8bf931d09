"""CIFAR-10/100 from generated archives in the official python-pickle format: restricted unpickling, safe
extraction, checksummed (monkeypatched) download, tensors and splits."""

import dataclasses
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from amal.data import cifar, load_dataset
from amal.data.cifar import CIFAR_SPECS, RestrictedUnpickler, cifar_class_names, load_cifar, safe_unpickle
from amal.errors import AmalError


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings, as the official (Python 2) CIFAR pickles do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str8(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write((b"U" + bytes([len(raw)])) if len(raw) < 256 else (b"T" + struct.pack("<i", len(raw))))
        self.write(raw)
        self.memoize(obj)

    dispatch[bytes] = _save_str8
    dispatch[str] = _save_str8


def _py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 2 names the module numpy._core; Python 2-era files say numpy.core
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _batch(rng, n, n_classes, label_key):
    return {"batch_label": "batch", label_key: [int(v) for v in rng.integers(0, n_classes, n)],
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}


def _add(tar, name, payload: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _make_archive(path, name="cifar10", n_per_batch=4, n_test=3, modern=False):
    """A tiny archive laid out like the official one; returns {file: batch dict}."""
    spec = CIFAR_SPECS[name]
    rng = np.random.default_rng(0)
    n_classes = 10 if name == "cifar10" else 100
    label_key = spec.label_key.decode()
    batches = {f: _batch(rng, n_per_batch, n_classes, label_key) for f in spec.train_files}
    batches.update({f: _batch(rng, n_test, n_classes, label_key) for f in spec.test_files})
    meta = {spec.names_key.decode(): [f"class{i}" for i in range(n_classes)]}
    dump = (lambda o: pickle.dumps(o, protocol=2)) if modern else _py2_pickle
    with tarfile.open(path, "w:gz") as tar:
        for f, b in batches.items():
            _add(tar, f"{spec.folder}/{f}", dump(b))
        _add(tar, f"{spec.folder}/{spec.meta_file}", dump(meta))
    return batches


def test_cifar10_from_archive_path(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    batches = _make_archive(archive)
    x, y = load_cifar(str(archive), "cifar10", "train")
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == torch.long and y.tolist() == sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    raw = batches["data_batch_1"]["data"][0]  # 1024 red, then green, then blue values, row-major
    assert x[0, 1, 2, 5] == pytest.approx(raw[1024 + 2 * 32 + 5] / 255.0)
    assert (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()  # extracted beside the archive
    xt, yt = load_cifar(str(tmp_path), "cifar10", "test")  # the folder now serves directly
    assert xt.shape == (3, 3, 32, 32) and yt.tolist() == batches["test_batch"]["labels"]
    assert load_cifar(str(tmp_path / "cifar-10-batches-py"), "cifar10", "test")[1].tolist() == yt.tolist()
    assert cifar_class_names(str(tmp_path))[:2] == ["class0", "class1"]


def test_cifar100_fine_labels_and_load_dataset(tmp_path):
    batches = _make_archive(tmp_path / "cifar-100-python.tar.gz", "cifar100", n_per_batch=50, n_test=7, modern=True)
    x, y = load_cifar(str(tmp_path), "cifar100", "train")
    assert x.shape == (50, 3, 32, 32) and y.tolist() == batches["train"]["fine_labels"]
    splits = load_dataset("cifar100", data_dir=str(tmp_path), val_fraction=0.2, noise=0.2, normalize=True)
    assert len(splits.test) == 7 and len(splits.val) == 10 and len(splits.train) == 40
    assert torch.equal(splits.test.y, torch.tensor(batches["test"]["fine_labels"]))  # official test split, clean
    assert splits.input_shape == (3, 32, 32)
    pooled = torch.cat([splits.train.x, splits.val.x])  # normalised with the training images' statistics
    assert pooled.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (pooled.transpose(0, 1).reshape(3, -1).std(dim=1) - 1).abs().max() < 1e-3
    with pytest.raises(AmalError, match="needs data_dir"):
        load_dataset("cifar10")


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    victim = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (victim.touch, ())

    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(AmalError, match=r"data_batch_1 is not a safe CIFAR pickle: .*not allowed"):
        safe_unpickle(str(bad))
    assert not victim.exists()
    for module, name in (("builtins", "eval"), ("os", "system"), ("numpy", "load")):
        with pytest.raises(pickle.UnpicklingError, match="not allowed"):
            RestrictedUnpickler(io.BytesIO(b"c" + f"{module}\n{name}\n".encode() + b".")).load()


def test_corrupt_and_malformed_batches_name_the_file(tmp_path):
    _make_archive(tmp_path / "cifar-10-python.tar.gz")
    folder = tmp_path / "cifar-10-batches-py"
    load_cifar(str(tmp_path), "cifar10", "test")
    f = folder / "data_batch_3"
    f.write_bytes(f.read_bytes()[:-40])
    with pytest.raises(AmalError, match="data_batch_3 is corrupt"):
        load_cifar(str(tmp_path), "cifar10", "train")
    f.write_bytes(_py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(AmalError, match=r"data_batch_3: b'data' must be a uint8 array \[N, 3072\]"):
        load_cifar(str(tmp_path), "cifar10", "train")
    (folder / "test_batch").unlink()
    with pytest.raises(AmalError, match="missing data file: .*test_batch"):
        load_cifar(str(tmp_path), "cifar10", "test")
    with pytest.raises(AmalError, match="split must be"):
        load_cifar(str(tmp_path), "cifar10", "val")


@pytest.mark.parametrize("member", ["../evil", "/tmp/amal-evil-abs", "cifar-10-batches-py/../../evil", "link"])
def test_unsafe_archive_members_are_rejected(tmp_path, member):
    root = tmp_path / "root"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/batches.meta", b"x")
        if member == "link":
            info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            _add(tar, member, b"evil")
    with pytest.raises(AmalError, match="cifar-10-python.tar.gz has .*(unsafe member path|not a plain file)"):
        load_cifar(str(archive), "cifar10")
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]  # nothing extracted
    assert not (tmp_path / "evil").exists()


def test_download_is_opt_in_and_checksummed(tmp_path, monkeypatch):
    source = tmp_path / "server" / "cifar-10-python.tar.gz"
    source.parent.mkdir()
    _make_archive(source)
    calls = []

    def fake_fetch(url, dest):
        calls.append(url)
        with open(dest, "wb") as f:
            f.write(source.read_bytes())

    monkeypatch.setattr(cifar, "_fetch", fake_fetch)
    root = tmp_path / "data"
    with pytest.raises(AmalError, match="cifar10 not found: no cifar-10-batches-py/ or cifar-10-python.tar.gz"):
        load_cifar(str(root), "cifar10")
    assert not calls
    # the tiny archive cannot match the published MD5 of the real one
    with pytest.raises(AmalError, match="failed its md5 check: expected c58f30108f718f92721af3b95e74349a"):
        load_cifar(str(root), "cifar10", download=True)
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert list(root.iterdir()) == []  # the rejected download is removed
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    monkeypatch.setitem(CIFAR_SPECS, "cifar10", dataclasses.replace(CIFAR_SPECS["cifar10"], md5=md5))
    with pytest.raises(AmalError, match="failed its sha256 check"):
        load_cifar(str(root), "cifar10", download=True, sha256="0" * 64)
    assert list(root.iterdir()) == []
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    x, y = load_cifar(str(root), "cifar10", download=True, sha256=sha)
    assert x.shape == (20, 3, 32, 32) and len(calls) == 3
    assert (root / "cifar-10-python.tar.gz").is_file() and (root / "cifar-10-batches-py").is_dir()
    load_cifar(str(root), "cifar10", download=True)  # present now: no second fetch
    assert len(calls) == 3

    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(cifar, "_fetch", offline)
    with pytest.raises(AmalError, match="download of https://.*cifar-10-python.tar.gz failed: OSError"):
        cifar.download_cifar(str(tmp_path / "other"), "cifar10")

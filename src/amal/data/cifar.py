"""CIFAR-10 / CIFAR-100 from the official python-pickle archives, read without unpickling arbitrary objects.

The archives hold pickled dicts (bytes keys) of uint8 image rows ``b"data"`` [N, 3072] and integer label lists.
:class:`RestrictedUnpickler` resolves only the few globals those files reference (numpy array and dtype
reconstruction); anything else in a pickle is an error, so a tampered file cannot run code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from amal.errors import AmalError


@dataclass(frozen=True)
class CifarSpec:
    archive: str  # file name of the .tar.gz
    folder: str  # top-level folder inside the archive
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes
    names_key: bytes


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        archive="cifar-10-python.tar.gz", folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",),
        meta_file="batches.meta", label_key=b"labels", names_key=b"label_names",
    ),
    "cifar100": CifarSpec(
        archive="cifar-100-python.tar.gz", folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",), test_files=("test",),
        meta_file="meta", label_key=b"fine_labels", names_key=b"fine_label_names",
    ),
}


def _numpy_global(name: str) -> Any:
    """numpy's own multiarray helper, wherever this numpy version keeps it (``numpy._core`` in 2.x)."""
    try:
        from numpy._core import multiarray  # type: ignore[attr-defined]
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, name)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import codecs

    reconstruct = _numpy_global("_reconstruct")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # pickles written by Python 3 at protocol <= 2 spell bytes objects as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): codecs.encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy array/dtype reconstruction; any other global in the stream raises."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        obj = RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR batch file")
        return obj


def safe_unpickle(path: str) -> Any:
    """Load a pickle with :class:`RestrictedUnpickler` and ``encoding="bytes"``; errors name the file."""
    if not os.path.isfile(path):
        raise AmalError(f"missing data file: {path}")
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise AmalError(f"{path} is not a safe CIFAR pickle: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError, RuntimeError) as e:
        raise AmalError(f"{path} is corrupt or not a CIFAR pickle: {type(e).__name__}: {e}") from None


def _load_dict(path: str) -> Any:
    """The unpickled file; a dict's ``str`` keys (a file re-pickled by Python 3) become ``bytes`` like the
    official Python 2 files'."""
    d = safe_unpickle(path)
    if isinstance(d, dict):
        d = {k.encode("latin1") if isinstance(k, str) else k: v for k, v in d.items()}
    return d


def read_batch(path: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    d = _load_dict(path)
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise AmalError(f"{path} lacks b'data' or {label_key!r} (found {keys})")
    data, labels = d[b"data"], d[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", None)
        raise AmalError(f"{path}: b'data' must be a uint8 array [N, 3072], got {type(data).__name__} {shape}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise AmalError(f"{path}: {label_key!r} is not a list of integers") from None
    if y.ndim != 1 or y.shape[0] != data.shape[0]:
        raise AmalError(f"{path}: {data.shape[0]} images but {y.shape} labels")
    if y.size and y.min() < 0:
        raise AmalError(f"{path}: negative label {int(y.min())}")
    return data.reshape(-1, 3, 32, 32), y


# ----------------------------------------------------------------------------------------------- archives


def file_digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: str, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise naming the file when a given MD5 or SHA-256 hex digest does not match."""
    for algorithm, want in (("md5", md5), ("sha256", sha256)):
        if want is None:
            continue
        got = file_digest(path, algorithm)
        if got.lower() != want.strip().lower():
            raise AmalError(f"{path} failed its {algorithm} check: expected {want}, got {got}")


def _safe_member(member: tarfile.TarInfo, archive: str) -> None:
    name = member.name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or os.path.isabs(member.name) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise AmalError(f"{archive} has an unsafe member path {member.name!r}; not extracting")
    if not (member.isfile() or member.isdir()):
        raise AmalError(f"{archive} has a member that is not a plain file or folder: {member.name!r}; not extracting")


def extract_archive(archive: str, dest: str | None = None) -> str:
    """Extract a .tar.gz into ``dest`` (default: the archive's folder) after checking every member; the files
    land in a temporary folder first and are moved into place, so a failed extraction leaves nothing half-done.
    Returns ``dest``."""
    dest = dest or os.path.dirname(os.path.abspath(archive))
    if not os.path.isfile(archive):
        raise AmalError(f"missing archive: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _safe_member(m, archive)
            os.makedirs(dest, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".extract-", dir=dest)
            try:
                for m in members:
                    target = os.path.join(tmp, *[p for p in m.name.replace("\\", "/").split("/") if p not in ("", ".")])
                    if m.isdir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    src = tar.extractfile(m)
                    if src is None:
                        raise AmalError(f"{archive}: cannot read member {m.name!r}")
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                for top in os.listdir(tmp):
                    final = os.path.join(dest, top)
                    if os.path.exists(final):
                        continue  # already extracted before: keep what is there
                    os.replace(os.path.join(tmp, top), final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise AmalError(f"cannot extract {archive}: {type(e).__name__}: {e}") from None
    return dest


def _fetch(url: str, dest: str) -> None:
    """Copy ``url`` to the file ``dest`` (the one network call; tests replace it)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f)


def download_cifar(root: str, name: str = "cifar10", sha256: str | None = None, md5: str | None = None) -> str:
    """Download the official archive into ``root`` unless it is already there; verify its MD5 (the published
    one unless ``md5`` is given) and, when given, its SHA-256. Returns the archive path."""
    spec = _spec(name)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, spec.archive)
    if os.path.isfile(path):
        return path
    part = path + ".part"
    try:
        _fetch(spec.url, part)
    except Exception as e:  # any network or disk failure becomes one line
        if os.path.exists(part):
            os.remove(part)
        if isinstance(e, AmalError):
            raise
        raise AmalError(f"download of {spec.url} failed: {type(e).__name__}: {e}") from None
    try:
        verify_checksum(part, md5=md5 or spec.md5, sha256=sha256)
    except AmalError:
        os.remove(part)
        raise
    os.replace(part, path)
    return path


def _spec(name: str) -> CifarSpec:
    spec = CIFAR_SPECS.get(name)
    if spec is None:
        raise AmalError(f"unknown CIFAR variant {name!r}; choose from {sorted(CIFAR_SPECS)}")
    return spec


def cifar_folder(root: str, name: str = "cifar10", download: bool = False, sha256: str | None = None) -> str:
    """The extracted batch folder (e.g. ``cifar-10-batches-py``) for ``root``, which may be that folder, a folder
    holding it or the archive, or the ``.tar.gz`` itself. Extracts the archive beside itself when needed; with
    ``download=True`` fetches it first when absent. A given ``sha256`` is checked before extracting."""
    spec = _spec(name)
    root = os.path.expanduser(root)
    if os.path.isfile(root) and root.endswith((".tar.gz", ".tgz")):
        archive, parent = root, os.path.dirname(os.path.abspath(root))
    else:
        if os.path.isdir(root) and os.path.basename(os.path.normpath(root)) == spec.folder:
            return root
        archive, parent = os.path.join(root, spec.archive), root
    folder = os.path.join(parent, spec.folder)
    if os.path.isdir(folder):
        return folder
    if not os.path.isfile(archive):
        if not download:
            raise AmalError(
                f"{name} not found: no {spec.folder}/ or {spec.archive} in {parent} (pass download=True "
                f"or put the official archive there)"
            )
        archive = download_cifar(parent, name, sha256=sha256)
    elif sha256 is not None:
        verify_checksum(archive, sha256=sha256)
    extract_archive(archive, parent)
    if not os.path.isdir(folder):
        raise AmalError(f"{archive} did not contain the folder {spec.folder}/")
    return folder


def load_cifar(
    root: str, name: str = "cifar10", split: str = "train", download: bool = False, sha256: str | None = None
) -> tuple[Tensor, Tensor]:
    """CIFAR-10 or CIFAR-100 (fine labels) as float images [N, 3, 32, 32] in [0, 1] and long labels [N]."""
    spec = _spec(name)
    files = {"train": spec.train_files, "test": spec.test_files}.get(split)
    if files is None:
        raise AmalError(f"split must be 'train' or 'test', got {split!r}")
    folder = cifar_folder(root, name, download=download, sha256=sha256)
    xs, ys = zip(*(read_batch(os.path.join(folder, f), spec.label_key) for f in files))
    images = np.concatenate(xs) if len(xs) > 1 else xs[0]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return x, torch.from_numpy(np.concatenate(ys))


def cifar_class_names(root: str, name: str = "cifar10") -> list[str]:
    """Class names from the meta file (``batches.meta`` or ``meta``)."""
    spec = _spec(name)
    path = os.path.join(cifar_folder(root, name), spec.meta_file)
    d = _load_dict(path)
    names = d.get(spec.names_key) if isinstance(d, dict) else None
    if not isinstance(names, list):
        raise AmalError(f"{path} lacks {spec.names_key!r}")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of images [N, C, H, W]."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(dim=1), flat.std(dim=1)


def normalize(x: Tensor, mean: Tensor, std: Tensor, inplace: bool = False) -> Tensor:
    """``(x - mean) / std`` per channel of images [N, C, H, W]; ``inplace`` overwrites ``x`` (saves a copy of a
    large image set)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    m, s = mean.to(x).view(shape), std.to(x).clamp_min(1e-12).view(shape)
    return x.sub_(m).div_(s) if inplace else (x - m) / s


def write_fake_cifar(root: str, name: str = "cifar100", n_train: int = 64, n_test: int = 32, seed: int = 0) -> str:
    """Random images in the official extracted layout, for dry runs and tests (never a stand-in for data)."""
    spec = _spec(name)
    n_classes = 10 if name == "cifar10" else 100
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, spec.folder)
    os.makedirs(folder, exist_ok=True)

    def dump(fname: str, obj: dict[str, Any]) -> None:
        with open(os.path.join(folder, fname), "wb") as f:
            pickle.dump(obj, f, protocol=2)

    per_file = max(1, n_train // len(spec.train_files))
    for fname, n in [*[(f, per_file) for f in spec.train_files], *[(f, n_test) for f in spec.test_files]]:
        dump(fname, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     spec.label_key.decode(): [int(v) for v in rng.integers(0, n_classes, n)]})
    dump(spec.meta_file, {spec.names_key.decode(): [f"class{i}" for i in range(n_classes)]})
    return root

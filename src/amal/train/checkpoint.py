"""Atomic checkpoint writes and safe loads: a crash mid-write never leaves a broken checkpoint, and
loading never unpickles arbitrary objects."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from amal.errors import AmalError


def atomic_save(obj: Any, path: str) -> None:
    """Write to a temporary file in the same folder, flush to disk, then rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_load(path: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers only."""
    if not os.path.exists(path):
        raise AmalError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure here means an unusable file
        raise AmalError(f"cannot load checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None

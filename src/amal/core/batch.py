"""A training batch that always carries instance indices, because Λ is addressed by instance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from amal.errors import AmalError


@dataclass
class Batch:
    """Inputs ``x``, labels ``y`` and dataset indices ``idx``; ``extras`` holds per-batch targets
    that loss terms prepare (e.g. teacher logits) so they are computed once per batch."""

    x: Tensor
    y: Tensor
    idx: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.x.to(device, non_blocking=non_blocking),
            self.y.to(device, non_blocking=non_blocking),
            self.idx.to(device, non_blocking=non_blocking),
            {k: v.to(device, non_blocking=non_blocking) for k, v in self.extras.items()},
        )

    @staticmethod
    def from_any(obj: Any) -> Batch:
        """Accept what a DataLoader over :class:`amal.data.Indexed` yields: ``(x, y, idx)``,
        a mapping with those keys, or a :class:`Batch`."""
        if isinstance(obj, Batch):
            return obj
        if isinstance(obj, Mapping):
            missing = [k for k in ("x", "y", "idx") if k not in obj]
            if missing:
                raise AmalError(f"batch mapping lacks keys {missing}; AMAL needs x, y and idx")
            return Batch(obj["x"], obj["y"], obj["idx"])
        if isinstance(obj, Sequence) and len(obj) == 3:
            x, y, idx = obj
            return Batch(x, y, torch.as_tensor(idx))
        raise AmalError(
            "a batch must be (x, y, idx) with dataset indices idx; wrap your dataset in amal.data.Indexed"
        )

    def validate(self, n_instances: int, n_classes: int | None = None) -> None:
        """Catch the silent failures early: index out of range, label out of range, shape mismatch."""
        b = self.x.shape[0]
        if self.y.shape[:1] != (b,) or self.idx.shape != (b,):
            raise AmalError(
                f"batch shapes disagree: x has {b} rows, y {tuple(self.y.shape)}, idx {tuple(self.idx.shape)}"
            )
        if b == 0:
            raise AmalError("empty batch")
        bad_idx = self.idx[(self.idx < 0) | (self.idx >= n_instances)]
        if bad_idx.numel():
            raise AmalError(
                f"instance index {int(bad_idx[0])} out of range for a Λ table of {n_instances} rows"
                " (is n_train the size of the training set?)"
            )
        if n_classes is not None:
            self.validate_labels(n_classes)

    def validate_labels(self, n_classes: int) -> None:
        if self.y.dtype in (torch.int64, torch.int32):
            bad_y = self.y[(self.y < 0) | (self.y >= n_classes)]
            if bad_y.numel():
                raise AmalError(f"label {int(bad_y[0])} out of range for {n_classes} classes")

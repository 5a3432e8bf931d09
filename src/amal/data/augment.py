"""Batch image augmentation on tensors: random crop after zero padding, and horizontal flips.

Works on a whole batch ``[B, C, H, W]`` at once (one gather, no per-image Python loop) on any device; the
randomness comes from an optional ``torch.Generator`` so a seeded run is reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from amal.errors import AmalError


class Augment:
    """``Augment(pad=4, flip=True)(x, generator)``: each image is padded by ``pad`` pixels on every side (with
    ``fill``), cropped back to its size at a uniformly random offset, and mirrored left-right with probability
    ``flip_p`` when ``flip``. Returns a new tensor; ``x`` is not changed."""

    def __init__(self, pad: int = 4, flip: bool = True, flip_p: float = 0.5, fill: float = 0.0) -> None:
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            raise AmalError(f"augment pad must be a non-negative integer, got {pad!r}")
        if not 0.0 <= flip_p <= 1.0:
            raise AmalError(f"augment flip_p must be in [0, 1], got {flip_p}")
        self.pad, self.flip, self.flip_p, self.fill = pad, flip, flip_p, fill

    def __repr__(self) -> str:
        return f"Augment(pad={self.pad}, flip={self.flip}, flip_p={self.flip_p}, fill={self.fill})"

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 4:
            raise AmalError(f"Augment expects images [B, C, H, W], got shape {tuple(x.shape)}")
        b, _, h, w = x.shape
        if b == 0 or (self.pad == 0 and not self.flip):
            return x.clone()
        dev = generator.device if generator is not None else torch.device("cpu")
        p = self.pad
        oy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev).to(x.device)
        cols = torch.arange(w, device=x.device)
        col_idx = ox[:, None] + cols[None, :]  # [B, W]
        if self.flip:
            flipped = (torch.rand(b, generator=generator, device=dev) < self.flip_p).to(x.device)
            col_idx = torch.where(flipped[:, None], ox[:, None] + (w - 1 - cols)[None, :], col_idx)
        row_idx = oy[:, None] + torch.arange(h, device=x.device)[None, :]  # [B, H]
        padded = F.pad(x, (p, p, p, p), value=self.fill) if p > 0 else x
        batch = torch.arange(b, device=x.device)[:, None, None]
        out = padded[batch, :, row_idx[:, :, None], col_idx[:, None, :]]  # advanced dims first: [B, H, W, C]
        return out.permute(0, 3, 1, 2).contiguous()


def build_augment(spec: bool | dict | None) -> Augment | None:
    """From a config value: ``false``/``None`` → no augmentation, ``true`` → ``Augment()``, a mapping →
    ``Augment(**mapping)``."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return Augment()
    if isinstance(spec, dict):
        try:
            return Augment(**spec)
        except TypeError as e:
            raise AmalError(f"bad augment option: {e}") from None
    raise AmalError(f"augment must be true, false or a mapping of options, got {spec!r}")

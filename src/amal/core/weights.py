"""The per-instance, per-loss weight table Λ (N × K, named columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from amal.errors import AmalError

DEFAULT_BOUNDS = (1e-7, 2.0 - 1e-7)


class LambdaTable:
    """Λ with one row per training instance and one named column per loss term.

    Rows are read and written by instance index only, so the same table can be kept consistent
    across data-parallel workers by exchanging (index, row) pairs.

    Entries can be *frozen* (:meth:`freeze`): they keep their value through every update. Recipes use this where
    a weight is fixed by design (CE on the labelled rows of rule denoising) or where a term does not apply to an
    instance (frozen at 0; such entries are left out of :meth:`stats`).
    """

    def __init__(
        self,
        n: int,
        columns: Sequence[str],
        init: Mapping[str, float],
        bounds: tuple[float, float] = DEFAULT_BOUNDS,
        normalize: bool = False,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if n <= 0:
            raise AmalError(f"Λ needs at least one training instance, got n={n}")
        columns = list(columns)
        if not columns or len(set(columns)) != len(columns):
            raise AmalError(f"Λ columns must be non-empty and unique, got {columns}")
        missing = [c for c in columns if c not in init]
        if missing:
            raise AmalError(f"no initial λ given for columns {missing}")
        lo, hi = float(bounds[0]), float(bounds[1])
        if not (lo < hi):
            raise AmalError(f"λ bounds must satisfy min < max, got {bounds}")
        self.columns = columns
        self.bounds = (lo, hi)
        self.normalize = normalize
        row = torch.tensor([float(init[c]) for c in columns], dtype=dtype)
        self.init_row = row.clamp(lo, hi)
        self.values = self.init_row.to(device).repeat(n, 1).contiguous()
        self.frozen: Tensor | None = None  # [N, K] bool, or None when every entry is learned

    @classmethod
    def paper_init(
        cls, n: int, columns: Sequence[str], supervised: Sequence[str], aux: float = 0.9, **kw: Any
    ) -> LambdaTable:
        """The authors' initialisation: every auxiliary column λ0, supervised columns 1 − λ0."""
        init = {c: (1.0 - aux) if c in supervised else aux for c in columns}
        return cls(n, columns, init, **kw)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> Tensor:
        try:
            return self.values[:, self.columns.index(name)]
        except ValueError:
            raise AmalError(f"no Λ column {name!r}; columns are {self.columns}") from None

    def rows(self, idx: Tensor) -> Tensor:
        return self.values[idx.to(self.values.device)]

    def project(self, rows: Tensor) -> Tensor:
        """Map updated rows back to the feasible set (optional normalisation, then the clamp)."""
        if self.normalize:
            target = self.init_row.to(rows).sum()
            rows = rows * (target / rows.sum(dim=1, keepdim=True).clamp_min(1e-12))
        return rows.clamp(*self.bounds)

    def set_rows(self, idx: Tensor, rows: Tensor) -> None:
        if not torch.isfinite(rows).all():
            raise AmalError("non-finite λ update (NaN/inf in a loss or its gradient?)")
        idx = idx.to(self.values.device)
        new = self.project(rows).to(self.values)
        if self.frozen is not None:
            new = torch.where(self.frozen[idx], self.values[idx], new)
        self.values[idx] = new

    def freeze(self, mask: Tensor, values: Tensor | float | None = None) -> None:
        """Freeze the entries where ``mask`` ([N, K] bool) is true, first setting them to ``values`` (a
        number or an [N, K] tensor read where ``mask`` holds) when given. Frozen values are not clamped."""
        mask = torch.as_tensor(mask, dtype=torch.bool, device=self.values.device)
        if mask.shape != self.values.shape:
            raise AmalError(f"freeze mask has shape {tuple(mask.shape)}, Λ has {tuple(self.values.shape)}")
        if values is not None:
            v = torch.as_tensor(values, dtype=self.values.dtype, device=self.values.device).expand_as(self.values)
            self.values[mask] = v[mask]
        self.frozen = mask.clone() if self.frozen is None else self.frozen | mask

    def learnable(self, idx: Tensor) -> Tensor | None:
        """``[len(idx), K]`` bool of the entries an update may change, or None when all may."""
        return None if self.frozen is None else ~self.frozen[idx.to(self.values.device)]

    def stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        q = torch.tensor([0.1, 0.5, 0.9], dtype=self.values.dtype, device=self.values.device)
        for k, name in enumerate(self.columns):
            col = self.values[:, k]
            if self.frozen is not None:  # a weight frozen at 0 switches its term off there: not a weight to report
                col = col[~(self.frozen[:, k] & (col == 0))]
            if col.numel() == 0:
                col = self.values[:, k]
            qs = torch.quantile(col, q).tolist()
            out[name] = {
                "mean": float(col.mean()),
                "std": float(col.std()) if col.numel() > 1 else 0.0,
                "min": float(col.min()),
                "p10": qs[0],
                "p50": qs[1],
                "p90": qs[2],
                "max": float(col.max()),
            }
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "values": self.values.detach().cpu().clone(),
            "bounds": list(self.bounds),
            "normalize": self.normalize,
            **({"frozen": self.frozen.detach().cpu().clone()} if self.frozen is not None else {}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["columns"]) != self.columns:
            raise AmalError(f"Λ columns differ: saved {state['columns']}, expected {self.columns}")
        values = state["values"]
        if tuple(values.shape) != tuple(self.values.shape):
            raise AmalError(f"Λ shape differs: saved {tuple(values.shape)}, expected {tuple(self.values.shape)}")
        self.values.copy_(values.to(self.values))
        frozen = state.get("frozen")
        self.frozen = None if frozen is None else frozen.to(device=self.values.device, dtype=torch.bool).clone()

    def save(self, path: str) -> None:
        from amal.train.checkpoint import atomic_save

        atomic_save(self.state_dict(), path)

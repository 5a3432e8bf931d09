"""Find a model's output ``nn.Linear`` and capture its input features with a hook, so AMAL works
with any model without a special ``forward`` signature."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from amal.errors import AmalError


def find_head(model: nn.Module, name: str | None = None) -> nn.Linear:
    """The named submodule, or else the last ``nn.Linear`` registered in the model."""
    if name:
        try:
            head = model.get_submodule(name)
        except AttributeError:
            raise AmalError(f"model has no submodule {name!r}") from None
        if not isinstance(head, nn.Linear):
            raise AmalError(f"head {name!r} is a {type(head).__name__}, not an nn.Linear")
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise AmalError("model has no nn.Linear output layer; name one with head=... or use engine='lookahead'")
    return linears[-1]


class FeatureCapture:
    """Records the head's input (features) and output (logits) on every forward pass."""

    def __init__(self, head: nn.Linear) -> None:
        self.head = head
        self.features: Tensor | None = None
        self.logits: Tensor | None = None
        self.active = False
        self._handle = head.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if self.active:
            self.features = inputs[0]
            self.logits = output

    @contextmanager
    def capture(self) -> Iterator[FeatureCapture]:
        self.active, self.features, self.logits = True, None, None
        try:
            yield self
        finally:
            self.active = False

    def checked(self, model_output: Tensor) -> Tensor:
        """Features for ``model_output``; refuses a head whose output is not the model's output
        (the fast engine's closed form would then be wrong)."""
        if self.features is None or self.logits is None:
            raise AmalError("the head was not called during the forward pass; name the output layer with head=...")
        if self.logits is not model_output and (
            self.logits.shape != model_output.shape or not torch.equal(self.logits, model_output)
        ):
            raise AmalError(
                "the model's output is not the head's output (something runs after the head);"
                " name the right layer with head=... or use engine='lookahead'"
            )
        if self.features.dim() != 2:
            raise AmalError(f"head input must be [B, D], got {tuple(self.features.shape)}")
        return self.features

    def remove(self) -> None:
        self._handle.remove()

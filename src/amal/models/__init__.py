"""Small reference models; each ends in an ``nn.Linear`` named ``head``."""

from amal.models.zoo import MLP, SmallCNN, build_model

__all__ = ["MLP", "SmallCNN", "build_model"]

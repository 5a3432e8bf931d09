"""amal — Adaptive Mixing of Auxiliary Losses (arXiv 2202.03250).

Per-instance, per-loss-term mixing weights Λ learned by one-step look-ahead on a validation set.
"""

from amal.core import AMAL, Batch, LambdaTable, MetaConfig, find_head
from amal.errors import AmalError
from amal.losses import CrossEntropy, CustomTerm, Distillation, FrozenTeacher, LossTerm

__version__ = "0.1.0"

__all__ = [
    "AMAL", "AmalError", "Batch", "CrossEntropy", "CustomTerm", "Distillation", "FrozenTeacher", "LambdaTable",
    "LossTerm", "MetaConfig", "find_head", "__version__",
]

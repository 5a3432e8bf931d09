"""Per-instance loss terms."""

from amal.losses.terms import CrossEntropy, CustomTerm, Distillation, FrozenTeacher, LossTerm

__all__ = ["CrossEntropy", "CustomTerm", "Distillation", "FrozenTeacher", "LossTerm"]

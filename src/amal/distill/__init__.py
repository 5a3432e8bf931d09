"""Knowledge distillation on top of the AMAL core."""

from amal.distill.recipes import kd_terms, make_meta, run, train_student
from amal.distill.teachers import load_teacher, save_teacher, train_classifier

__all__ = ["kd_terms", "load_teacher", "make_meta", "run", "save_teacher", "train_classifier", "train_student"]

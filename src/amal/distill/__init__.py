"""Knowledge distillation on top of the AMAL core: recipes, teachers and baselines."""

from amal.distill.baselines import BASELINES, make_baseline, takd_chain
from amal.distill.recipes import kd_terms, make_meta, run, train_student
from amal.distill.teachers import load_teacher, save_teacher, teach, train_classifier

__all__ = [
    "BASELINES", "kd_terms", "load_teacher", "make_baseline", "make_meta", "run", "save_teacher", "takd_chain",
    "teach", "train_classifier", "train_student",
]

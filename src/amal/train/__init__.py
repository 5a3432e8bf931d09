"""Training loop, evaluation, checkpoints, metrics and configuration."""

from amal.train.checkpoint import atomic_save, safe_load
from amal.train.config import RunConfig, load_config
from amal.train.trainer import FitResult, Trainer, evaluate, make_optimizer, make_scheduler

__all__ = ["FitResult", "RunConfig", "Trainer", "atomic_save", "evaluate", "load_config", "make_optimizer",
           "make_scheduler", "safe_load"]

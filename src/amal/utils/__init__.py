"""Small helpers shared by benchmarks, the training loop and tests."""

from amal.utils.memory import peak_extra_mb, tight_cpu_accounting

__all__ = ["peak_extra_mb", "tight_cpu_accounting"]

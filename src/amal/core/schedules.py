"""When Λ is updated: ``epochs`` (the paper: a sweep over the training set every ``every`` epochs after
``warmup``), ``online`` (the batch's rows before every training step) or ``fixed`` (never: the
baselines run through the same code with constant weights)."""

from __future__ import annotations

from dataclasses import dataclass

from amal.errors import AmalError


@dataclass(frozen=True)
class Schedule:
    name: str
    warmup: int = 0
    every: int = 10

    def sweep_before(self, epoch: int) -> bool:
        return self.name == "epochs" and epoch >= self.warmup and (epoch - self.warmup) % self.every == 0

    def online_at(self, epoch: int) -> bool:
        return self.name == "online" and epoch >= self.warmup


SCHEDULES = ("epochs", "online", "fixed")


def make_schedule(name: str, warmup: int = 0, every: int = 10) -> Schedule:
    if name not in SCHEDULES:
        raise AmalError(f"unknown schedule {name!r}; choose from {list(SCHEDULES)}")
    if warmup < 0:
        raise AmalError(f"warmup must be >= 0, got {warmup}")
    if every < 1:
        raise AmalError(f"every must be >= 1, got {every}")
    return Schedule(name, warmup, every)

"""Learning-rate schedules, as closed forms of the iteration.

``constant``, ``step`` (multiplied by ``gamma`` at each milestone, as torch's MultiStepLR) and
``cosine`` (annealed to 0 over the segment, as CosineAnnealingLR), each after an optional linear
``warmup`` (lr/warmup, 2·lr/warmup, ..., lr). The rate is a pure function of the iteration
rather than a torch scheduler's running state (torch's chainable schedulers update recursively,
so an offset start or a resume would need their state replayed): a segment resumed at iteration
i trains at exactly the rate an uninterrupted one had, and ``lr-rewind:K`` is the same schedule
read from position K. Torch-free.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from prunetui.config import ConfigError, SchemeSpec, TrainConfig


@dataclass(frozen=True)
class Schedule:
    """The learning rate at each position 0..length-1 of a full segment."""

    lr: float
    kind: str = "constant"
    milestones: tuple[int, ...] = ()  # iterations
    gamma: float = 0.1
    warmup: int = 0
    length: int = 1

    def rate(self, position: int) -> float:
        factor = (position + 1) / self.warmup if position < self.warmup else 1.0
        if self.kind == "step":
            factor *= self.gamma ** bisect.bisect_right(self.milestones, position)
        elif self.kind == "cosine":
            span = max(1, self.length - self.warmup)
            progress = min(1.0, max(0.0, (position - self.warmup) / span))
            factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * factor

    @property
    def final_rate(self) -> float:
        return self.rate(self.length - 1)


@dataclass(frozen=True)
class SegmentRates:
    """The rates of one segment: iteration i trains at ``schedule.rate(offset + i)``, or at
    ``constant`` throughout when it is set (``finetune``)."""

    schedule: Schedule
    offset: int = 0
    constant: float | None = None

    def at(self, iteration: int) -> float:
        if self.constant is not None:
            return self.constant
        return self.schedule.rate(self.offset + iteration)


def run_schedule(train: TrainConfig, per_epoch: int) -> Schedule:
    """The configured schedule in iterations; milestones given in epochs are converted. A
    warmup or milestone beyond a training sized in epochs is a ConfigError here (config
    validation checks those sized in iterations)."""
    length = train.epochs * per_epoch if train.epochs else train.iterations
    scale = per_epoch if train.epochs else 1
    if train.warmup >= length:
        raise ConfigError("train.warmup", train.warmup, "warmup must be shorter than training "
                          f"({length} iterations)")
    return Schedule(train.lr, train.schedule, tuple(m * scale for m in train.milestones),
                    train.gamma, train.warmup, length)


def segment_rates(spec: SchemeSpec | None, schedule: Schedule, finetune_lr: float = 0.0
                  ) -> SegmentRates:
    """What the scheme ``spec`` (None: the dense round) retrains with."""
    if spec is None or spec.lr == "schedule":
        return SegmentRates(schedule)
    if spec.lr == "final":
        return SegmentRates(schedule, constant=finetune_lr or schedule.final_rate)
    return SegmentRates(schedule, offset=spec.k)

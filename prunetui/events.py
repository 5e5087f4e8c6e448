"""Typed progress events that the engine hands to a callback.

Front ends (the Rich CLI, the Textual app) consume these; the engine never imports them.
Events are small frozen dataclasses of plain Python values so they can cross threads and be
posted as messages without copying tensors. What must survive a crash lives in the run store;
events add what the store does not keep (progress inside an epoch, log lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prunetui.store.checkpoint import SegmentOutcome
from prunetui.store.rows import MetricRow, SegmentKey


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class Log(Event):
    message: str
    level: str = "info"  # "info" | "warning" | "error"


@dataclass(frozen=True)
class RunStarted(Event):
    run_dir: str
    name: str
    dataset: str
    arch: str
    schemes: tuple[str, ...]
    rounds: int  # pruning rounds after the dense round 0
    replicates: int
    iterations_per_round: int
    iterations_per_epoch: int
    device: str
    resumed: bool = False
    threads: int = 0  # CPU threads training uses (recorded in runtime.json)
    cpu: str = ""  # how they were chosen and the OpenMP waiting, for first lines
    precision: str = "fp32"  # training precision used (recorded in runtime.json): fp32|bf16|tf32


@dataclass(frozen=True)
class SegmentEvent(Event):
    """An event about one segment: one (replicate, round, scheme)."""

    replicate: int
    round: int
    scheme: str  # "dense" for round 0

    @property
    def key(self) -> SegmentKey:
        return (self.replicate, self.round, self.scheme)


@dataclass(frozen=True)
class SegmentStarted(SegmentEvent):
    """Training of one segment begins or resumes at ``iteration``."""

    remaining: float  # fraction of prunable weights left
    layers: dict[str, float] = field(default_factory=dict)  # per-layer fraction left
    iteration: int = 0
    total_iterations: int = 0


@dataclass(frozen=True)
class TrainProgress(SegmentEvent):
    """Throttled progress inside a segment (a few per second at most)."""

    iteration: int
    total_iterations: int
    epoch: int
    train_loss: float


@dataclass(frozen=True)
class Evaluated(Event):
    """One evaluation; ``record`` is exactly the row appended to metrics.jsonl."""

    record: MetricRow


@dataclass(frozen=True)
class SegmentFinished(SegmentEvent):
    outcome: SegmentOutcome  # what it scored, at its early-stop iteration
    skipped: bool = False  # already done in an earlier (resumed) run


@dataclass(frozen=True)
class Checkpointed(Event):
    path: str
    iteration: int


@dataclass(frozen=True)
class RunFinished(Event):
    run_dir: str
    status: str  # "finished" | "interrupted" | "failed"
    message: str = ""


# --- face preparation -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareStarted(Event):
    src: str
    dst: str
    total: int  # photos to look at (already finished ones included)
    people: int


@dataclass(frozen=True)
class PrepareProgress(Event):
    done: int
    total: int
    person: str
    file: str
    faces_saved: int
    skipped_reason: str | None = None


@dataclass(frozen=True)
class PrepareFinished(Event):
    dst: str
    report_path: str
    photos: int
    faces_saved: int
    skipped: int
    cancelled: bool = False


EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    """An EventSink that drops everything."""

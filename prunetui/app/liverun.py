"""What the Monitor says about the run it follows, beyond its charts: log lines and progress bars.

Pure functions of the run store (:class:`RunData`) and the engine events of a run trained in
this app (:class:`Live`), so they are tested without a screen. Events only add what the store
cannot know yet: the iteration inside an epoch, the loss, the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prunetui import precision, store
from prunetui.app.rundata import RunData
from prunetui.app.tally import segment_label
from prunetui.events import (
    Checkpointed,
    Event,
    RunFinished,
    RunStarted,
    SegmentFinished,
    SegmentStarted,
    TrainProgress,
)
from prunetui.events import Log as LogEvent
from prunetui.store import SegmentKey


@dataclass
class Live:
    """What events say about the run trained here, beyond the store."""

    key: SegmentKey | None = None
    iteration: int = 0
    total: int = 0
    per_epoch: int = 0
    device: str = ""
    loss: float | None = None

    def take(self, ev: Event) -> None:
        """Keep what ``ev`` says about where training is."""
        if isinstance(ev, RunStarted):
            self.per_epoch, self.device = ev.iterations_per_epoch, ev.device
        elif isinstance(ev, SegmentStarted):
            self.key = ev.key
            self.iteration, self.total = ev.iteration, ev.total_iterations
        elif isinstance(ev, TrainProgress):
            self.key = ev.key
            self.iteration, self.total, self.loss = ev.iteration, ev.total_iterations, \
                ev.train_loss


def log_lines(ev: Event, replicates: int) -> list[str]:
    """The Monitor's log lines for one engine event (none for per-batch progress)."""
    def label(key: SegmentKey) -> str:
        return segment_label(key, replicates)

    if isinstance(ev, RunStarted):
        verb = "resuming" if ev.resumed else "training"
        started = (f"{verb} on {ev.device}, precision {precision.label(ev.precision)}: "
                   f"{ev.rounds} round{'s' if ev.rounds != 1 else ''}, "
                   f"{', '.join(ev.schemes)}")
        return [started, ev.cpu] if ev.cpu else [started]
    if isinstance(ev, SegmentStarted):
        return [f"{label(ev.key)} continues at it {ev.iteration}"] if ev.iteration else []
    if isinstance(ev, SegmentFinished):
        note = " (done before, from its checkpoint)" if ev.skipped else ""
        score = ev.outcome
        return [f"{label(ev.key)} finished{note}: test {100 * score.test_acc:.2f}% at it "
                f"{score.early_stop_iteration} (early stop), {100 * score.remaining:.1f}% left"]
    if isinstance(ev, Checkpointed):
        return [f"checkpoint at it {ev.iteration}"]
    if isinstance(ev, LogEvent):
        prefix = "" if ev.level == "info" else f"{ev.level}: "
        return [prefix + ev.message]
    if isinstance(ev, RunFinished):
        return [f"run {ev.status}" + (f": {ev.message}" if ev.message else "")]
    return []


@dataclass(frozen=True)
class ProgressRow:
    """One bar: ``total`` None while unknown (an empty bar, never the animated one)."""

    name: str  # "run", "segment" or "epoch"
    label: str
    progress: float = 0
    total: float | None = None


def progress_rows(data: RunData, live: Live) -> list[ProgressRow]:
    """The run, round and epoch bars: the store's count of finished trainings, the newest
    iteration the store or an event has seen in the current one."""
    key = live.key or data.current
    per_segment = live.total or data.iterations_per_segment
    per_epoch = live.per_epoch or data.per_epoch
    iteration = data.last_iteration.get(key, 0) if key else 0
    if key is not None and key == live.key:
        iteration = max(iteration, live.iteration)
    total_segments, done = data.total_segments, data.segments_done
    finished = data.state == store.FINISHED
    if finished and total_segments:
        done, iteration = total_segments, per_segment or iteration
    current_done = bool(per_segment) and iteration >= per_segment
    if total_segments and per_segment:
        progress = done * per_segment + (0 if current_done or finished else iteration)
        rows = [ProgressRow("run", f"Run  {done}/{total_segments} trainings", progress,
                            total_segments * per_segment)]
    else:
        rows = [ProgressRow("run", f"Run  {done} trainings")]
    if key is None:
        rows.append(ProgressRow("segment", "Round: not started"))
    else:
        left = data.remaining.get(key)
        left_text = f" {100 * left:.1f}%" if left is not None else ""
        rows.append(ProgressRow("segment", f"{segment_label(key, data.replicates)}{left_text}",
                                iteration, per_segment))
    if key is None or not (per_epoch and per_segment):
        rows.append(ProgressRow("epoch", "Epoch"))
        return rows
    epochs = math.ceil(per_segment / per_epoch)
    epoch = min(iteration // per_epoch, epochs - 1)
    length = min(per_epoch, per_segment - epoch * per_epoch)
    loss = f" loss {live.loss:.3f}" if live.loss and key == live.key else ""
    rows.append(ProgressRow("epoch", f"Epoch {epoch + 1}/{epochs}{loss}",
                            iteration - epoch * per_epoch, length))
    return rows

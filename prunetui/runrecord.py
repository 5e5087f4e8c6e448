"""What a run writes while it trains: metric rows, sparsity records and segment checkpoints.

Every segment checkpoint (``resume.pt`` each epoch and on stop, the segment's own file at its
end) carries what a resume needs to rebuild the metric files: the rows and sparsity record
written so far, the offsets and digests where both files ended, and the config text. A resume
cuts the files back to those offsets (integrity.plan_resume) and a :class:`RunRecord` goes on
appending from there, so an interrupted run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prunetui import store
from prunetui.config import Config, dumps
from prunetui.control import RunControl
from prunetui.results import SegmentResult, segment_result
from prunetui.segments import Segment
from prunetui.store.checkpoint import SegmentCheckpoint, save_segment
from prunetui.store.rows import MetricRow, SparsityRecord
from prunetui.training import EvalResult
from prunetui.trajectory import State


class RunClock:
    """Seconds spent running an experiment, over all its resumes, pauses excluded."""

    def __init__(self, control: RunControl, base: float = 0.0) -> None:
        self.control = control
        self.restart(base)

    def restart(self, base: float) -> None:
        """Count on from ``base`` seconds (what the checkpoint a resume starts from had)."""
        self.base = base
        self.started = time.monotonic()
        self.paused_before = self.control.paused_seconds

    def elapsed(self) -> float:
        paused = self.control.paused_seconds - self.paused_before
        return self.base + time.monotonic() - self.started - paused


def config_text(run: store.RunDir, cfg: Config) -> str:
    """config.toml as written (checkpoints keep it to restore a damaged one)."""
    if store.verify(run.config_path) in (store.INTACT, store.UNVERIFIED):
        return run.config_text()
    return dumps(cfg)


class RunRecord:
    """Appends a run's metric rows and sparsity records, and builds its segment checkpoints."""

    def __init__(self, run: store.RunDir, offsets: store.StoreOffsets, config: str,
                 clock: RunClock) -> None:
        """Continue the metric files of ``run``, already cut back to ``offsets``."""
        self.config = config
        self.clock = clock
        self.metrics_log = store.JsonlLog(run.metrics_path, offsets.metrics_offset)
        self.sparsity_log = store.JsonlLog(run.sparsity_path, offsets.sparsity_offset)
        self.sparsity: SparsityRecord | None = None  # the current segment's record

    def evaluated(self, seg: Segment, iteration: int, per_epoch: int, remaining: float,
                  train_loss: float, result: EvalResult) -> MetricRow:
        """Append one evaluation's row to metrics.jsonl and return it."""
        row = MetricRow(
            replicate=seg.replicate, round=seg.round, scheme=seg.scheme,
            epoch=round(iteration / per_epoch, 4), iteration=iteration,
            remaining=remaining, train_loss=train_loss,
            val_loss=result.val_loss, val_acc=result.val_acc,
            test_acc=result.test_acc, elapsed_s=round(self.clock.elapsed(), 3),
        )
        self.metrics_log.append(row)
        return row

    def record_sparsity(self, seg: Segment, fields: dict[str, Any]) -> None:
        """Append the segment's sparsity record (once, when it starts); ``fields`` are the
        record's remaining, layers, counts and, for unit runs, units."""
        record = SparsityRecord(replicate=seg.replicate, round=seg.round, scheme=seg.scheme,
                                **fields)
        self.sparsity_log.append(record)
        self.sparsity = record

    def resumed(self, sparsity: SparsityRecord | None) -> None:
        """A segment continues from its checkpoint: its record was appended before."""
        self.sparsity = sparsity

    def offsets(self) -> store.StoreOffsets:
        """Where the metric files end, and their digests (checked on resume)."""
        return store.StoreOffsets(self.metrics_log.offset, self.sparsity_log.offset,
                                  self.metrics_log.digest(), self.sparsity_log.digest(),
                                  self.clock.elapsed())

    def checkpoint(self, seg: Segment, weights: State, masks: State, trainer: dict[str, Any],
                   rows: list[MetricRow]) -> SegmentCheckpoint:
        """The segment's state with what rebuilds damaged run files on resume."""
        return SegmentCheckpoint(
            segment=seg.key, weights=weights, masks={k: v.bool() for k, v in masks.items()},
            trainer=trainer, store=self.offsets(), rows=rows, sparsity=self.sparsity,
            config=self.config)

    def save_final(self, seg: Segment, path: Path, weights: State, masks: State,
                   trainer: dict[str, Any], rows: list[MetricRow]) -> SegmentResult:
        """Write a finished segment's checkpoint, with what it scored, and return the score."""
        result = segment_result(rows)
        checkpoint = self.checkpoint(seg, weights, masks, trainer, rows)
        checkpoint.outcome = result
        save_segment(checkpoint, path)
        return result

"""TensorBoard logging of a run, live (an event sink) or afterwards from its run directory.

Layout: ``DIR/<run name>/<scheme>/`` holds one TensorBoard run per scheme (``r<k>-<scheme>``
per replicate when there are several), so TensorBoard overlays the schemes on each chart:

- ``round_NN/test_acc``, ``val_acc``, ``val_loss``, ``train_loss`` against the iteration of
  round NN (round 0 is the dense network, logged as the scheme ``dense``);
- ``lottery/test_acc_at_early_stop``, ``lottery/early_stop_iteration`` and
  ``lottery/weights_left_pct`` against the round (each scheme's line starts at the dense round);
- ``weights_left_pct/<layer>`` against the round.

Accuracies and losses are the values in metrics.jsonl. The live sink and :func:`export_run`
write the same scalars, so a finished run exported later matches one logged as it went.
Uses ``torch.utils.tensorboard``; the ``tensorboard`` package is the optional extra.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prunetui import extras, results
from prunetui.events import (
    Evaluated,
    Event,
    EventSink,
    RunFinished,
    RunStarted,
    SegmentFinished,
    SegmentStarted,
)
from prunetui.segments import round_owners
from prunetui.store import MetricRow, RunDir, SegmentKey, SegmentOutcome, segment_key

FEATURE = "TensorBoard logging"
METRIC_KEYS = ("test_acc", "val_acc", "val_loss", "train_loss")
FLUSH_SECS = 5  # a dashboard watching the run sees points within seconds


def require() -> None:
    extras.require("tensorboard", FEATURE)


class TensorBoardLog:
    """The writers of one run, opened lazily, one per (replicate, scheme)."""

    def __init__(self, root: str | Path, run_name: str, schemes: Iterable[str],
                 replicates: int) -> None:
        require()
        self.base = Path(root) / run_name
        self.schemes = tuple(schemes)
        self.replicates = replicates
        self._writers: dict[tuple[int, str], Any] = {}

    def _writer(self, replicate: int, scheme: str) -> Any:
        key = (replicate, scheme)
        if key not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            name = scheme.replace(":", "-")  # rewind:K: a colon is no folder name everywhere
            if self.replicates > 1:
                name = f"r{replicate}-{name}"
            self._writers[key] = SummaryWriter(str(self.base / name), flush_secs=FLUSH_SECS)
        return self._writers[key]

    def evaluation(self, row: MetricRow) -> None:
        writer = self._writer(row["replicate"], row["scheme"])
        for key in METRIC_KEYS:
            if key in row:  # train_loss may be absent (MetricRow: optional)
                writer.add_scalar(f"round_{row['round']:02d}/{key}", row[key],
                                  row["iteration"])

    def sparsity(self, replicate: int, round_: int, scheme: str,
                 layers: dict[str, float]) -> None:
        for owner in round_owners(scheme, self.schemes):
            writer = self._writer(replicate, owner)
            for layer, left in layers.items():
                writer.add_scalar(f"weights_left_pct/{layer}", 100 * left, round_)

    def segment(self, key: SegmentKey, outcome: SegmentOutcome) -> None:
        replicate, round_, scheme = key
        for owner in round_owners(scheme, self.schemes):
            writer = self._writer(replicate, owner)
            writer.add_scalar("lottery/test_acc_at_early_stop", outcome.test_acc, round_)
            writer.add_scalar("lottery/early_stop_iteration", outcome.early_stop_iteration,
                              round_)
            writer.add_scalar("lottery/weights_left_pct", 100 * outcome.remaining, round_)
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class TensorBoardSink:
    """An EventSink that logs to TensorBoard, then passes every event on unchanged."""

    def __init__(self, root: str | Path, run_name: str, downstream: EventSink) -> None:
        require()  # before any work: a missing extra stops the run at once
        self.root, self.run_name, self.downstream = root, run_name, downstream
        self.log: TensorBoardLog | None = None

    def __call__(self, event: Event) -> None:
        try:
            self._record(event)
        finally:
            self.downstream(event)

    def _record(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.log = TensorBoardLog(self.root, self.run_name, event.schemes,
                                      event.replicates)
            return
        log = self.log
        if log is None:
            return
        if isinstance(event, Evaluated):
            log.evaluation(event.record)
        elif isinstance(event, SegmentStarted) and event.iteration == 0:
            log.sparsity(*event.key, event.layers)
        elif isinstance(event, SegmentFinished) and not event.skipped:
            log.segment(event.key, event.outcome)
        elif isinstance(event, RunFinished):
            log.close()
            self.log = None


def export_run(run_dir: RunDir, root: str | Path) -> Path:
    """Write a run's scalars from its run directory; returns its log folder."""
    cfg = run_dir.config()
    log = TensorBoardLog(root, run_dir.name, cfg.prune.schemes, cfg.train.replicates)
    try:
        for record in run_dir.sparsity():
            log.sparsity(*segment_key(record), record["layers"])
        metrics = run_dir.metrics()
        for row in metrics:
            log.evaluation(row)
        for seg in results.segment_results(metrics):
            if not run_dir.segment_checkpoint(*seg.key).exists():
                continue  # still training: the live sink logs a segment once it finished
            log.segment(seg.key, seg)
    finally:
        log.close()
    return log.base

"""What the app knows about one run, read incrementally from its run store.

Every view of a run (live in this app, attached to a run started elsewhere, finished, or two
runs compared) is drawn from a :class:`RunData`. Reading is split in two so that a long run
never stalls the event loop: :meth:`RunData.read` tails ``metrics.jsonl`` and
``sparsity.jsonl``, re-reads ``status.json`` and folds the new rows into a
:class:`~prunetui.app.tally.Tally` (safe in a worker thread: it touches only the file tails);
:meth:`RunData.apply` merges that tally on the event loop, at a cost that depends on the number
of segments, not of rows. Engine events only add what the store does not keep: progress inside
an epoch and log lines.

Damaged lines (not JSON, keys missing, numbers the charts cannot draw) are skipped and kept as
:class:`~prunetui.store.LineProblem` for the views to warn about; a run folder damaged in any
other way (config, status, deleted while open) reads as what is left. Pure Python: no Textual,
no torch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunetui import results, segments, store
from prunetui.app.damage import config_problem
from prunetui.app.rowchecks import metrics_row_problem, sparsity_row_problem
from prunetui.app.tally import Tally
from prunetui.config import Config
from prunetui.store import (
    FINISHED,
    LineProblem,
    RunDir,
    SegmentKey,
    Status,
    segment_key,
    torn_tail,
)

# Up to this many new bytes a view reads right away on the event loop (a few ms, and the log
# keeps the order of engine events); more is read in a worker thread.
READ_ON_LOOP_BYTES = 64 * 1024
# A long metrics file is read and folded this much at a time (about 300 rows, a millisecond or
# two of work), and the reading thread hands the GIL over after each chunk: otherwise the event
# loop waits up to the 5 ms switch interval each time it gives the GIL up (for I/O), many
# times a frame. Only one chunk of rows is alive at once, too.
CHUNK_BYTES = 64 * 1024


# How the app labels a run of prune.structure = "unit" (Runs list, size view, summaries).
@dataclass
class Update:
    """What one read of the run store found; built by :meth:`RunData.read` (any thread)."""

    tally: Tally
    reset: bool  # the files were cut back (a resume) or deleted: start over
    problems: list[LineProblem]
    status: Status
    state: str
    segments_done: int
    bytes_read: int = 0
    error: str = ""  # the read itself failed (shown, never raised)


class RunData(Tally):
    def __init__(self, run: RunDir | str | Path, curves: bool = True) -> None:
        self.run = run if isinstance(run, RunDir) else RunDir(run)
        self.cfg: Config | None = None
        self.config_error = ""
        super().__init__(curves=curves)
        self.load_config()
        self.metrics_tail = store.JsonlTail(self.run.metrics_path, store.MetricRow,
                                            metrics_row_problem)
        self.sparsity_tail = store.JsonlTail(self.run.sparsity_path, store.SparsityRecord,
                                             sparsity_row_problem)
        self.status = Status("missing")
        self.state = "missing"  # effective state: running only while the pid lives
        self.version = 0
        self.segments_done = 0
        self.problems: list[LineProblem] = []  # every damaged line seen
        self.new_problems: list[LineProblem] = []  # not yet warned about (see drain_problems)
        self.loaded = False  # a first read has been applied
        self.reading = False  # a worker is reading (set by the views that start one)
        self._torn_seen = False  # a finished run's cut-off last line was reported
        self.lock = threading.Lock()  # for workers that share one RunData (Runs' scans)
        self._results: list[results.RoundResult] | None = None

    def load_config(self) -> None:
        try:
            self.cfg, self.config_error = self.run.config(), ""
        except (ValueError, OSError) as err:
            self.config_error = config_problem(self.run, err)
        if self.cfg:
            self.replicates = self.cfg.train.replicates

    def _clear(self) -> None:
        self.take(Tally(self.replicates, self.keep_curves))
        self.log_entries.clear()
        self.segments_done = 0
        self.problems = []
        self._results = None

    # ------------------------------------------------------------------ reading
    @property
    def _tails(self) -> tuple[store.JsonlTail, store.JsonlTail]:
        return (self.metrics_tail, self.sparsity_tail)

    def pending_bytes(self) -> int:
        """Bytes appended since the last read (a cheap stat; decides where to read)."""
        return sum(tail.pending_bytes() for tail in self._tails)

    def read(self, cancelled: Callable[[], bool] = lambda: False) -> Update | None:
        """Read what was appended since the last read; None when ``cancelled`` says stop.

        Touches only the file tails, never what the views draw: call it from one thread at a
        time, then hand the result to :meth:`apply` on the event loop.
        """
        reset = any(tail.cut_back() for tail in self._tails)
        if reset:  # a resume cut the files back to its checkpoint
            for tail in self._tails:
                tail.restart()
            self._torn_seen = False
        before = sum(tail.offset for tail in self._tails)
        tally, problems = Tally(self.replicates, self.keep_curves), []
        try:
            sparsity = self._read_all(self.sparsity_tail, problems)  # a few hundred records
            # A segment's sparsity record is written before its rows: merge the two files in
            # that order so log lines read as they happened.
            started = {segment_key(r): r for r in sparsity}
            more = True
            while more:
                if cancelled():
                    return None
                rows, bad, more = self.metrics_tail.read_chunk(CHUNK_BYTES)
                problems += bad
                for row in rows:
                    record = started.pop(segment_key(row), None)
                    if record is not None:
                        tally.add_sparsity(record)
                    tally.add_row(row)
                time.sleep(0)  # let a waiting event loop take the GIL now
        except OSError as err:  # unreadable file (permissions, a folder in its place)
            status = self.run.read_status()
            return Update(tally, reset, problems, status, status.effective_state,
                          self._count_done(),
                          error=f"cannot read {self.run.path}: {err.strerror or err}")
        for record in started.values():
            tally.add_sparsity(record)
        status = self.run.read_status()
        state = status.effective_state
        tail = self.metrics_tail
        if state == FINISHED and not self._torn_seen and torn_tail(tail.path):
            # Torn while running is a kill mid-write; once finished it is damage.
            self._torn_seen = True
            problems.append(LineProblem(tail.path, tail.lines + 1,
                                        "cut off (the run had finished)"))
        read = sum(tail.offset for tail in self._tails) - (0 if reset else before)
        return Update(tally, reset, problems, status, state, self._count_done(), read)

    @staticmethod
    def _read_all(tail: store.JsonlTail, problems: list[LineProblem]) -> list[Any]:
        records, more = [], True
        while more:
            new, bad, more = tail.read_chunk(CHUNK_BYTES)
            records += new
            problems += bad
        return records

    def apply(self, update: Update | None) -> bool:
        """Merge a read into what the views draw; True when anything changed."""
        if update is None:
            return False
        changed = update.reset or bool(update.tally.order) or bool(update.problems)
        if update.reset:
            self._clear()
            self.note("run store cut back to its last checkpoint (resumed)")
        if not self.evaluations and not self.order:
            self.take(update.tally)  # the first read: hand over, no per-row work here
        else:
            self.merge(update.tally)
        self.problems += update.problems
        self.new_problems += update.problems
        if update.error:
            self.note(f"warning: {update.error}")
        status, state = update.status, update.state
        if (state, status.message) != (self.state, self.status.message):
            changed = True
            if self.version:  # the first read only sets the scene
                note = f": {status.message}" if status.message else ""
                self.note(f"status {state}{note}")
        self.status, self.state = status, state
        self.segments_done = update.segments_done
        if changed or not self.version:
            self._results = None
            self.version += 1
        self.loaded = True
        return changed

    def poll(self) -> bool:
        """Read and apply in one go (in tests and where the run is known to be small)."""
        return self.apply(self.read())

    def _count_done(self) -> int:
        try:
            return len(self.run.final_checkpoints())
        except OSError:
            return 0

    # ------------------------------------------------------------------ derived views
    @property
    def name(self) -> str:
        return self.run.name

    @property
    def schemes(self) -> tuple[str, ...]:
        return self.cfg.prune.schemes if self.cfg else ()

    @property
    def structure_label(self) -> str:
        """``units`` for a unit-pruned run (whole neurons and channels), else ""."""
        return results.structure_label(self.cfg)

    @property
    def total_segments(self) -> int | None:
        return segments.segment_count(self.cfg) if self.cfg else None

    @property
    def iterations_per_segment(self) -> int | None:
        """None until known: a run counted in epochs needs a row to tell an epoch's length."""
        if not self.cfg or (self.cfg.train.epochs and not self.per_epoch):
            return None
        return segments.total_iterations(self.cfg, self.per_epoch or 0)

    @property
    def current(self) -> SegmentKey | None:
        return self.order[-1] if self.order else None

    def rounds(self) -> list[int]:
        return sorted({k[1] for k in self.order})

    def round_results(self) -> list[results.RoundResult]:
        if self._results is None:
            self._results = results.round_results(self.decisive_rows())
        return self._results

    def lottery_curves(self) -> dict[str, list[results.RoundResult]]:
        return results.lottery_curves(self.round_results())

    def accuracy_curves(self, round_: int, replicate: int | None = None
                        ) -> dict[str, list[tuple[float, float]]]:
        """Test accuracy (%) against epoch, per scheme, of one round of one replicate."""
        if replicate is None:
            replicate = self.current[0] if self.current else 0
        return {k[2]: curve.points() for k, curve in self.curves.items()
                if k[0] == replicate and k[1] == round_}

    def layer_fractions(self, round_: int) -> dict[str, float]:
        """Fraction of weights left per layer in a round (its first segment, latest replicate)."""
        keys = [k for k in self.order if k[1] == round_ and k in self.layers]
        return self.layers[keys[-1]] if keys else {}

    def drain_problems(self) -> list[LineProblem]:
        problems, self.new_problems = self.new_problems, []
        return problems

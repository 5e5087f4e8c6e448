"""What the app knows about one run, read incrementally from its run store.

Every view of a run (live in this app, attached to a run started elsewhere, finished, or two
runs compared) is drawn from a :class:`RunData`. Reading is split in two so that a long run
never stalls the event loop: :meth:`RunData.read` tails ``metrics.jsonl`` and
``sparsity.jsonl``, re-reads ``status.json`` and folds the new rows into a :class:`Tally`
(safe in a worker thread: it touches only the file tails); :meth:`RunData.apply` merges that
tally on the event loop, at a cost that depends on the number of segments, not of rows.
Engine events only add what the store does not keep: progress inside an epoch and log lines.

Per segment only the rows that decide its result are kept (lowest validation loss, highest
validation accuracy), so ``results.round_results`` stays cheap however long the run is, and it
returns exactly what it would on the full file. Damaged lines (not JSON, keys missing) are
skipped and kept as :class:`~prunetui.store.LineProblem` for the views to warn about; a run
folder damaged in any other way (config, status, deleted while open) reads as what is left.
Pure Python: no Textual, no torch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunetui import results, store
from prunetui.config import Config, ConfigError
from prunetui.store import FINISHED, INTERRUPTED, LineProblem, RunDir, Status, torn_tail

Key = tuple[int, int, str]  # (replicate, round, scheme)
LOG_KEEP = 200
# Up to this many new bytes a view reads right away on the event loop (a few ms, and the log
# keeps the order of engine events); more is read in a worker thread.
READ_ON_LOOP_BYTES = 64 * 1024
DAMAGED_STATUS = "status.json is damaged"
# A long metrics file is read and folded this much at a time (about 300 rows, a millisecond or
# two of work), and the reading thread hands the GIL over after each chunk: otherwise the event
# loop waits up to the 5 ms switch interval each time it gives the GIL up (for I/O), many
# times a frame. Only one chunk of rows is alive at once, too.
CHUNK_BYTES = 64 * 1024
LARGE = 1e12  # larger numbers in a row are damage (plotext's scaling overflows on them)


def key_of(record: dict[str, Any]) -> Key:
    return (int(record["replicate"]), int(record["round"]), str(record["scheme"]))


def segment_label(key: Key, replicates: int = 1) -> str:
    return results.segment_label(*key, replicates)


def layer_name(param: str) -> str:
    """``fc1.weight`` -> ``fc1`` (chart labels must be short)."""
    return param.removesuffix(".weight")


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number or NaN, infinite or huge (plotext
    cannot draw those: its scaling overflows)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            if -LARGE < (value := float(value)) < LARGE:  # False for NaN
                return value
    return None


def plausible_row(r: dict[str, Any]) -> bool:
    """Whether a metrics row's numbers can be drawn and compared (NaN fails every test). The
    test accuracy is drawn on a 0-100 % axis: plotext hangs drawing a line to a point far off
    its limits."""
    try:
        return (0.0 <= r["test_acc"] <= 1.0 and -LARGE < r["val_acc"] < LARGE
                and -LARGE < r["remaining"] < LARGE and -LARGE < r["val_loss"] < LARGE
                and -LARGE < r["iteration"] < LARGE)
    except (TypeError, KeyError):
        return False


def plausible_sparsity(r: dict[str, Any]) -> bool:
    try:
        return -LARGE < r["remaining"] < LARGE
    except (TypeError, KeyError):
        return False


def _drop_implausible(path: Path, chunk: bytes, first_line: int,
                      records: list[dict[str, Any]], skipped: list[LineProblem],
                      plausible: Callable[[dict[str, Any]], bool]
                      ) -> tuple[list[dict[str, Any]], list[LineProblem]]:
    """The records ``plausible`` accepts, and a LineProblem for each other one."""
    bad = [i for i, r in enumerate(records) if not plausible(r)]
    if not bad:
        return records, []
    # Records are the non-blank lines that were not skipped, in order: find their numbers.
    skipped_lines = {p.line for p in skipped}
    numbers = [n for n, line in enumerate(chunk.split(b"\n"), first_line)
               if line.strip() and n not in skipped_lines]
    dropped = set(bad)
    return ([r for i, r in enumerate(records) if i not in dropped],
            [LineProblem(path, numbers[i], "a number is NaN, infinite or out of range")
             for i in bad])


def safe_status(run: RunDir) -> tuple[Status, str]:
    """The run's status and its effective state, whatever ``status.json`` holds.

    A status file that is valid JSON but not the expected object (a list, a pid that is not a
    number) reads as interrupted, like one that is not JSON at all.
    """
    try:
        status = run.read_status()
        pid = status.pid
        if not isinstance(status.state, str) or (pid is not None and (
                not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0)):
            raise TypeError("unexpected values")
        if not status.updated and run.status_path.exists():  # written ones always have it
            raise ValueError("not a status written by prunetui")
        status.message = str(status.message or "")
        status.host = str(status.host or "")
        return status, status.effective_state
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        status = Status(INTERRUPTED, message=DAMAGED_STATUS)
        return status, INTERRUPTED


def config_problem(run: RunDir, err: Exception) -> str:
    """What is wrong with a run's config.toml, in one line (ConfigError says it already)."""
    if isinstance(err, ConfigError):
        return str(err)
    return f"{run.config_path} cannot be read: {err}"


def describe_problems(problems: list[LineProblem], most: int = 3) -> str:
    """``metrics.jsonl line 12: not valid JSON; ... (and 4 more)``: one line for a warning."""
    text = "; ".join(str(p) for p in problems[:most])
    more = len(problems) - most
    return text + (f" (and {more} more)" if more > 0 else "")


class ChunkedTail(store.JsonlTail):
    """A :class:`~prunetui.store.JsonlTail` that reads a long file a chunk at a time, and
    also skips (and names) the rows that ``plausible`` refuses."""

    def __init__(self, path: Path, required: store.Required,
                 plausible: Callable[[dict[str, Any]], bool]) -> None:
        super().__init__(path, required)
        self.plausible = plausible

    def read_chunk(self, size: int = CHUNK_BYTES
                   ) -> tuple[list[dict[str, Any]], list[LineProblem], bool]:
        """Complete lines from about ``size`` bytes on; True as the last value while more
        complete lines may follow."""
        if self.path.exists() and self.path.stat().st_size < self.offset:
            self.offset, self.lines, self.problems = 0, 0, []  # cut back by a resume
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(size)
                if len(data) == size:
                    data += fh.readline()  # up to the end of the line the chunk cut
        except FileNotFoundError:
            return [], [], False
        end = data.rfind(b"\n")
        if end < 0:
            return [], [], False
        chunk = data[:end]
        records, problems = store.jsonl.parse_lines(self.path, chunk, self.lines + 1, self.required)
        records, more = _drop_implausible(self.path, chunk, self.lines + 1, records, problems,
                                          self.plausible)
        problems = sorted(problems + more, key=lambda p: p.line)
        self.offset += end + 1
        self.lines += chunk.count(b"\n") + 1
        self.problems += problems
        return records, problems, len(data) >= size


class Curve:
    """One segment's (epoch, test accuracy %) points in two flat arrays: no Python object per
    point, so a 200,000-row run costs little memory and nothing to free or garbage-collect."""

    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x, self.y = array("d"), array("d")

    def append(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)

    def extend(self, other: Curve) -> None:
        self.x.extend(other.x)
        self.y.extend(other.y)

    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.x, self.y, strict=True))


class Tally:
    """Segments, curves and best rows folded from run-store records (in the order written)."""

    def __init__(self, replicates: int = 1, curves: bool = True) -> None:
        self.replicates = replicates
        self.keep_curves = curves  # False: results only (the Runs list)
        self.evaluations = 0
        self.curves: dict[Key, Curve] = {}
        self.last_iteration: dict[Key, int] = {}
        self.layers: dict[Key, dict[str, float]] = {}
        self.remaining: dict[Key, float] = {}
        self.order: list[Key] = []  # segments in the order they started
        self.per_epoch: int | None = None
        self._best: dict[Key, dict[str, Any]] = {}
        self._max_val: dict[Key, dict[str, Any]] = {}
        # Raw log entries, formatted only when drained (a 200K-row read keeps the last few):
        # ("started" | "row", key, record) or ("note", None, text).
        self.log_entries: deque[tuple[str, Key | None, Any]] = deque(maxlen=LOG_KEEP)

    def add_sparsity(self, record: dict[str, Any]) -> None:
        key = key_of(record)
        if key not in self.remaining:
            self.order.append(key)
        self.layers[key] = {layer_name(str(k)): f for k, v in record["layers"].items()
                            if (f := _number(v)) is not None and 0.0 <= f <= 1.0}  # 0-100 %
        self.remaining[key] = float(record["remaining"])
        self.log_entries.append(("started", key, record))

    def add_row(self, row: dict[str, Any]) -> None:
        key = key_of(row)
        if key not in self.remaining:
            self.order.append(key)
            self.remaining[key] = float(row["remaining"])
        self.evaluations += 1
        epoch = _number(row.get("epoch"))
        if epoch is not None:
            if self.keep_curves:
                curve = self.curves.get(key)
                if curve is None:
                    curve = self.curves[key] = Curve()
                curve.append(epoch, 100 * row["test_acc"])
            if epoch and not self.per_epoch:
                self.per_epoch = max(1, round(row["iteration"] / epoch))
        self.last_iteration[key] = row["iteration"]
        best = self._best.get(key)
        if best is None or (row["val_loss"], row["iteration"]) < (best["val_loss"],
                                                                  best["iteration"]):
            self._best[key] = row
        top = self._max_val.get(key)
        if top is None or row["val_acc"] > top["val_acc"]:
            self._max_val[key] = row
        self.log_entries.append(("row", key, row))

    def merge(self, new: Tally) -> None:
        """Add ``new`` (records read after this tally's) as if they had been added here."""
        for key in new.order:
            if key not in self.remaining:
                self.order.append(key)
        self.remaining.update(new.remaining)
        self.layers.update(new.layers)
        self.last_iteration.update(new.last_iteration)
        for key, curve in new.curves.items():
            self.curves.setdefault(key, Curve()).extend(curve)
        for key, row in new._best.items():
            best = self._best.get(key)
            if best is None or (row["val_loss"], row["iteration"]) < (best["val_loss"],
                                                                      best["iteration"]):
                self._best[key] = row
        for key, row in new._max_val.items():
            top = self._max_val.get(key)
            if top is None or row["val_acc"] > top["val_acc"]:
                self._max_val[key] = row
        self.evaluations += new.evaluations
        self.per_epoch = self.per_epoch or new.per_epoch
        self.log_entries.extend(new.log_entries)

    def _take(self, other: Tally) -> None:
        """Become ``other`` (the first read of a run: no merging of 200K rows)."""
        for name in ("evaluations", "curves", "last_iteration", "layers", "remaining", "order",
                     "per_epoch", "_best", "_max_val"):
            setattr(self, name, getattr(other, name))
        self.log_entries.extend(other.log_entries)


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
        self._metrics = ChunkedTail(self.run.metrics_path, store.METRICS_KEYS, plausible_row)
        self._sparsity = ChunkedTail(self.run.sparsity_path, store.SPARSITY_KEYS,
                                     plausible_sparsity)
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
        self._take(Tally(self.replicates, self.keep_curves))
        self.log_entries.clear()
        self.segments_done = 0
        self.problems = []
        self._results = None

    # ------------------------------------------------------------------ reading
    def _truncated(self) -> bool:
        for tail in (self._metrics, self._sparsity):
            try:
                if tail.path.stat().st_size < tail.offset:
                    return True
            except FileNotFoundError:
                if tail.offset:
                    return True
            except OSError:
                pass
        return False

    def pending_bytes(self) -> int:
        """Bytes appended since the last read (a cheap stat; decides where to read)."""
        pending = 0
        for tail in (self._metrics, self._sparsity):
            with contextlib.suppress(OSError):
                size = tail.path.stat().st_size
                pending += size - tail.offset if size >= tail.offset else size
        return pending

    def read(self, cancelled: Callable[[], bool] = lambda: False) -> Update | None:
        """Read what was appended since the last read; None when ``cancelled`` says stop.

        Touches only the file tails, never what the views draw: call it from one thread at a
        time, then hand the result to :meth:`apply` on the event loop.
        """
        reset = self._truncated()
        if reset:  # a resume cut the files back to its checkpoint
            for tail in (self._metrics, self._sparsity):
                tail.offset, tail.lines, tail.problems = 0, 0, []
            self._torn_seen = False
        before = self._metrics.offset + self._sparsity.offset
        tally, problems = Tally(self.replicates, self.keep_curves), []
        try:
            sparsity, more = [], True
            while more:  # one record per segment: a few hundred at most
                records, bad, more = self._sparsity.read_chunk()
                sparsity += records
                problems += bad
            # A segment's sparsity record is written before its rows: merge the two files in
            # that order so log lines read as they happened.
            started = {key_of(r): r for r in sparsity}
            more = True
            while more:
                if cancelled():
                    return None
                rows, bad, more = self._metrics.read_chunk()
                problems += bad
                for row in rows:
                    record = started.pop(key_of(row), None)
                    if record is not None:
                        tally.add_sparsity(record)
                    tally.add_row(row)
                time.sleep(0)  # let a waiting event loop take the GIL now
        except OSError as err:  # unreadable file (permissions, a folder in its place)
            status, state = safe_status(self.run)
            return Update(tally, reset, problems, status, state, self._count_done(),
                          error=f"cannot read {self.run.path}: {err.strerror or err}")
        for record in started.values():
            tally.add_sparsity(record)
        status, state = safe_status(self.run)
        if state == FINISHED and not self._torn_seen and torn_tail(self._metrics.path):
            # Torn while running is a kill mid-write; once finished it is damage.
            self._torn_seen = True
            problems.append(LineProblem(self._metrics.path, self._metrics.lines + 1,
                                        "cut off (the run had finished)"))
        read = self._metrics.offset + self._sparsity.offset - (0 if reset else before)
        return Update(tally, reset, problems, status, state, self._count_done(), read)

    def apply(self, update: Update | None) -> bool:
        """Merge a read into what the views draw; True when anything changed."""
        if update is None:
            return False
        changed = update.reset or bool(update.tally.order) or bool(update.problems)
        if update.reset:
            self._clear()
            self.note("run store cut back to its last checkpoint (resumed)")
        if not self.evaluations and not self.order:
            self._take(update.tally)  # the first read: hand over, no per-row work here
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
            return sum(1 for _ in self.run.checkpoints.glob("r*/round-*.pt"))
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
    def total_segments(self) -> int | None:
        if not self.cfg:
            return None
        return self.replicates * (1 + self.cfg.num_rounds * len(self.cfg.prune.schemes))

    @property
    def iterations_per_segment(self) -> int | None:
        if not self.cfg:
            return None
        if not self.cfg.train.epochs:
            return self.cfg.train.iterations
        return self.cfg.train.epochs * self.per_epoch if self.per_epoch else None

    @property
    def current(self) -> Key | None:
        return self.order[-1] if self.order else None

    def rounds(self) -> list[int]:
        return sorted({k[1] for k in self.order})

    def decisive_rows(self) -> list[dict[str, Any]]:
        """Per segment the rows that decide its result: ``results.round_results`` of these is
        that of every row."""
        return [r for k in self._best for r in (self._best[k], self._max_val[k])]

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

    def note(self, text: str) -> None:
        self.log_entries.append(("note", None, text))

    def _format(self, kind: str, key: Key | None, record: Any) -> str:
        if key is None:
            return record
        label = segment_label(key, self.replicates)
        if kind == "started":
            return f"{label} started: {100 * float(record['remaining']):.1f}% of weights left"
        return (f"{label} it {record['iteration']}: val {100 * record['val_acc']:.2f}% "
                f"test {100 * record['test_acc']:.2f}% loss {record['val_loss']:.4f}")

    def drain_log(self) -> list[str]:
        """Log lines since the last call, in the order they happened."""
        lines = [self._format(*entry) for entry in self.log_entries]
        self.log_entries.clear()
        return lines

    def drain_problems(self) -> list[LineProblem]:
        problems, self.new_problems = self.new_problems, []
        return problems


RUN_FILES = (store.CONFIG_FILE, store.STATUS_FILE, store.METRICS_FILE, store.SPARSITY_FILE,
             store.CHECKPOINT_DIR)


def list_run_dirs(models_dir: str | Path) -> list[RunDir]:
    """``store.list_runs``, plus folders that lost their config.toml but hold other run files:
    a damaged run is listed (and named as such), never hidden. Newest first."""
    try:
        folders = [p for p in Path(models_dir).iterdir() if p.is_dir()]
    except OSError:
        return []
    found = []
    for folder in folders:
        for name in RUN_FILES:  # config.toml first: its time orders the runs, as list_runs
            try:
                found.append(((folder / name).stat().st_mtime, RunDir(folder)))
                break
            except OSError:
                continue
    return [run for _, run in sorted(found, key=lambda f: f[0], reverse=True)]


class _FoldedRun(RunDir):
    """The RunDir ``results.run_summary_checked`` reads: its status never fails to read (see
    :func:`safe_status`) and its metrics come from a results-only RunData, read a chunk at a
    time and incrementally, folded to the rows that decide each segment's result: the same
    summary at a fraction of the cost."""

    def __init__(self, data: RunData) -> None:
        super().__init__(data.run.path)
        self.data = data
        self.error = ""  # the metrics could not be read at all

    def read_status(self) -> Status:
        return safe_status(RunDir(self.path))[0]

    def metrics_checked(self) -> tuple[list[dict[str, Any]], list[LineProblem]]:
        update = self.data.read()
        self.data.apply(update)
        self.error = update.error if update else ""
        return self.data.decisive_rows(), self.data.problems


def run_summary(run: RunDir, folded: dict[str, RunData] | None = None) -> dict[str, str]:
    """``results.run_summary`` for the Runs screen, whatever the damage (it never raises).

    ``warning`` names what is damaged ("" when nothing): lines skipped (file and line, in
    either JSON-lines file), files that cannot be read. ``folded`` keeps what was read of each
    run between calls, so a growing run is read from where the last call stopped.
    """
    data = folded.get(str(run.path)) if folded is not None else None
    if data is None:
        data = RunData(run, curves=False)
        if folded is not None:
            folded[str(run.path)] = data
    warnings, problems, folded_run = [], [], _FoldedRun(data)
    try:
        with data.lock:  # a scan started while another still reads waits for it
            summary, problems = results.run_summary_checked(folded_run)
            problems = list(problems)
    except Exception as err:  # one damaged run must never hide the others
        summary = {"name": run.name, "status": safe_status(run)[1], "dataset": "?", "schemes": "?",
                   "rounds": "?", "dense": "-", "best": "-"}
        warnings.append(f"cannot summarize: {type(err).__name__}: {err}")
    if folded_run.error:
        warnings.append(folded_run.error)
    try:
        run.config()
    except (ValueError, OSError) as err:
        warnings.append(config_problem(run, err))
    if problems:
        warnings.append(f"{len(problems)} damaged line(s) skipped: "
                        f"{describe_problems(problems, 2)}")
    if safe_status(run)[0].message == DAMAGED_STATUS:
        warnings.append(DAMAGED_STATUS)
    summary["warning"] = "; ".join(warnings)
    return summary

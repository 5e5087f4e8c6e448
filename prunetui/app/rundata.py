"""What the app knows about one run, read incrementally from its run store.

Every view of a run (live in this app, attached to a run started elsewhere, finished, or two
runs compared) is drawn from a :class:`RunData`: ``poll()`` tails ``metrics.jsonl`` and
``sparsity.jsonl`` (results.JsonlTail) and re-reads ``status.json``. Engine events only add
what the store does not keep: progress inside an epoch and log lines.

Per segment only the rows that decide its result are kept (lowest validation loss, highest
validation accuracy), so ``results.round_results`` stays cheap however long the run is, and it
returns exactly what it would on the full file. Pure Python: no Textual, no torch.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from prunetui import results
from prunetui.config import Config, ConfigError
from prunetui.store import JsonlTail, RunDir, Status

Key = tuple[int, int, str]  # (replicate, round, scheme)
LOG_KEEP = 200


def key_of(record: dict[str, Any]) -> Key:
    return (int(record["replicate"]), int(record["round"]), str(record["scheme"]))


def segment_label(key: Key, replicates: int = 1) -> str:
    return results.segment_label(*key, replicates)


def layer_name(param: str) -> str:
    """``fc1.weight`` -> ``fc1`` (chart labels must be short)."""
    return param.removesuffix(".weight")


class RunData:
    def __init__(self, run: RunDir | str | Path) -> None:
        self.run = run if isinstance(run, RunDir) else RunDir(run)
        self.cfg: Config | None = None
        self.config_error = ""
        try:
            self.cfg = self.run.config()
        except (ConfigError, OSError) as err:
            self.config_error = str(err)
        self._metrics = JsonlTail(self.run.metrics_path)
        self._sparsity = JsonlTail(self.run.sparsity_path)
        self.status = Status("missing")
        self.state = "missing"  # effective state: running only while the pid lives
        self.version = 0
        self.log_lines: deque[str] = deque(maxlen=LOG_KEEP)
        self._clear()

    # ------------------------------------------------------------------ reading
    def _clear(self) -> None:
        self.evaluations = 0
        self.curves: dict[Key, list[tuple[float, float]]] = {}  # (epoch, test acc)
        self.last_iteration: dict[Key, int] = {}
        self.layers: dict[Key, dict[str, float]] = {}
        self.remaining: dict[Key, float] = {}
        self.order: list[Key] = []  # segments in the order they started
        self.per_epoch: int | None = None
        self.segments_done = 0
        self._best: dict[Key, dict[str, Any]] = {}
        self._max_val: dict[Key, dict[str, Any]] = {}
        self._results: list[results.RoundResult] | None = None

    def _truncated(self) -> bool:
        for tail in (self._metrics, self._sparsity):
            try:
                if tail.path.stat().st_size < tail.offset:
                    return True
            except FileNotFoundError:
                if tail.offset:
                    return True
        return False

    def poll(self) -> bool:
        """Read what was appended since the last call; True when anything changed."""
        changed = False
        if self._truncated():  # a resume cut the files back to its checkpoint
            self._clear()
            self._metrics.offset = self._sparsity.offset = 0
            self.log_lines.append("run store cut back to its last checkpoint (resumed)")
            changed = True
        # A segment's sparsity record is written before its rows: merge the two files in that
        # order so log lines read as they happened.
        started = {key_of(r): r for r in self._sparsity.read_new()}
        rows = self._metrics.read_new()
        for row in rows:
            record = started.pop(key_of(row), None)
            if record is not None:
                self._add_sparsity(record)
            self._add_row(row)
        for record in started.values():
            self._add_sparsity(record)
        changed = changed or bool(rows) or bool(started)
        status = self.run.read_status()
        state = status.effective_state
        if (state, status.message) != (self.state, self.status.message):
            changed = True
            if self.version:  # the first read only sets the scene
                note = f": {status.message}" if status.message else ""
                self.log_lines.append(f"status {state}{note}")
        self.status, self.state = status, state
        if changed or not self.version:
            self._count_done()
            self._results = None
            self.version += 1
        return changed

    def _add_sparsity(self, record: dict[str, Any]) -> None:
        key = key_of(record)
        if key not in self.remaining:
            self.order.append(key)
        self.layers[key] = {layer_name(k): float(v) for k, v in record["layers"].items()}
        self.remaining[key] = float(record["remaining"])
        self.log_lines.append(f"{segment_label(key, self.replicates)} started: "
                              f"{100 * self.remaining[key]:.1f}% of weights left")

    def _add_row(self, row: dict[str, Any]) -> None:
        key = key_of(row)
        if key not in self.remaining:
            self.order.append(key)
            self.remaining[key] = float(row["remaining"])
        self.evaluations += 1
        self.curves.setdefault(key, []).append((float(row["epoch"]), 100 * row["test_acc"]))
        self.last_iteration[key] = int(row["iteration"])
        if row["epoch"] and not self.per_epoch:
            self.per_epoch = max(1, round(row["iteration"] / row["epoch"]))
        best = self._best.get(key)
        if best is None or (row["val_loss"], row["iteration"]) < (best["val_loss"],
                                                                  best["iteration"]):
            self._best[key] = row
        top = self._max_val.get(key)
        if top is None or row["val_acc"] > top["val_acc"]:
            self._max_val[key] = row
        self.log_lines.append(
            f"{segment_label(key, self.replicates)} it {row['iteration']}: "
            f"val {100 * row['val_acc']:.2f}% test {100 * row['test_acc']:.2f}% "
            f"loss {row['val_loss']:.4f}")

    def _count_done(self) -> None:
        try:
            self.segments_done = sum(1 for _ in self.run.checkpoints.glob("r*/round-*.pt"))
        except OSError:
            self.segments_done = 0

    # ------------------------------------------------------------------ derived views
    @property
    def name(self) -> str:
        return self.run.name

    @property
    def replicates(self) -> int:
        return self.cfg.train.replicates if self.cfg else 1

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

    def round_results(self) -> list[results.RoundResult]:
        if self._results is None:
            rows = [r for k in self._best for r in (self._best[k], self._max_val[k])]
            self._results = results.round_results(rows)
        return self._results

    def lottery_curves(self) -> dict[str, list[results.RoundResult]]:
        return results.lottery_curves(self.round_results())

    def accuracy_curves(self, round_: int, replicate: int | None = None
                        ) -> dict[str, list[tuple[float, float]]]:
        """Test accuracy (%) against epoch, per scheme, of one round of one replicate."""
        if replicate is None:
            replicate = self.current[0] if self.current else 0
        return {k[2]: pts for k, pts in self.curves.items()
                if k[0] == replicate and k[1] == round_}

    def layer_fractions(self, round_: int) -> dict[str, float]:
        """Fraction of weights left per layer in a round (its first segment, latest replicate)."""
        keys = [k for k in self.order if k[1] == round_ and k in self.layers]
        return self.layers[keys[-1]] if keys else {}

    def drain_log(self) -> list[str]:
        lines = list(self.log_lines)
        self.log_lines.clear()
        return lines

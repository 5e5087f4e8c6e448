"""Run-store records folded into what the views draw: segments in order, accuracy curves,
fractions left per layer, and per segment only the rows that decide its result.

Keeping per segment just the row of lowest validation loss and the row of highest validation
accuracy keeps ``results.round_results`` cheap however long the run is, and it returns exactly
what it would on every row (:meth:`Tally.decisive_rows`). Pure Python: no Textual, no torch.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any

from prunetui import results
from prunetui.app.rowchecks import drawable
from prunetui.store import MetricRow, SegmentKey, SparsityRecord, segment_key

LOG_KEEP = 200


def segment_label(key: SegmentKey, replicates: int = 1) -> str:
    return results.segment_label(*key, replicates)


def layer_name(param: str) -> str:
    """``fc1.weight`` -> ``fc1`` (chart labels must be short)."""
    return param.removesuffix(".weight")


def lower_loss(row: MetricRow, best: MetricRow | None) -> bool:
    """Whether ``row`` beats ``best`` on validation loss (ties: the earlier iteration)."""
    return best is None or (row["val_loss"], row["iteration"]) < (best["val_loss"],
                                                                  best["iteration"])


def higher_accuracy(row: MetricRow, top: MetricRow | None) -> bool:
    return top is None or row["val_acc"] > top["val_acc"]


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

    FOLDED = ("evaluations", "curves", "last_iteration", "layers", "remaining", "order",
              "per_epoch", "best_loss", "best_accuracy")

    def __init__(self, replicates: int = 1, curves: bool = True) -> None:
        self.replicates = replicates
        self.keep_curves = curves  # False: results only (the Runs list)
        self.evaluations = 0
        self.curves: dict[SegmentKey, Curve] = {}
        self.last_iteration: dict[SegmentKey, int] = {}
        self.layers: dict[SegmentKey, dict[str, float]] = {}
        self.remaining: dict[SegmentKey, float] = {}
        self.order: list[SegmentKey] = []  # segments in the order they started
        self.per_epoch: int | None = None
        self.best_loss: dict[SegmentKey, MetricRow] = {}  # per segment, its decisive rows
        self.best_accuracy: dict[SegmentKey, MetricRow] = {}
        # Raw log entries, formatted only when drained (a 200K-row read keeps the last few):
        # ("started" | "row", key, record) or ("note", None, text).
        self.log_entries: deque[tuple[str, SegmentKey | None, Any]] = deque(maxlen=LOG_KEEP)

    def add_sparsity(self, record: SparsityRecord) -> None:
        key = segment_key(record)
        if key not in self.remaining:
            self.order.append(key)
        self.layers[key] = {layer_name(str(k)): f for k, v in record["layers"].items()
                            if (f := drawable(v)) is not None and 0.0 <= f <= 1.0}  # 0-100 %
        self.remaining[key] = float(record["remaining"])
        self.log_entries.append(("started", key, record))

    def add_row(self, row: MetricRow) -> None:
        key = segment_key(row)
        if key not in self.remaining:
            self.order.append(key)
            self.remaining[key] = float(row["remaining"])
        self.evaluations += 1
        epoch = drawable(row.get("epoch"))
        if epoch is not None:
            if self.keep_curves:
                curve = self.curves.get(key)
                if curve is None:
                    curve = self.curves[key] = Curve()
                curve.append(epoch, 100 * row["test_acc"])
            if epoch and not self.per_epoch:
                self.per_epoch = max(1, round(row["iteration"] / epoch))
        self.last_iteration[key] = row["iteration"]
        self._keep_decisive(key, row, row)
        self.log_entries.append(("row", key, row))

    def _keep_decisive(self, key: SegmentKey, low: MetricRow, high: MetricRow) -> None:
        if lower_loss(low, self.best_loss.get(key)):
            self.best_loss[key] = low
        if higher_accuracy(high, self.best_accuracy.get(key)):
            self.best_accuracy[key] = high

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
        for key, low in new.best_loss.items():
            self._keep_decisive(key, low, new.best_accuracy[key])
        self.evaluations += new.evaluations
        self.per_epoch = self.per_epoch or new.per_epoch
        self.log_entries.extend(new.log_entries)

    def take(self, other: Tally) -> None:
        """Become ``other`` (the first read of a run: no merging of 200K rows); log entries
        are added to this tally's."""
        for name in self.FOLDED:
            setattr(self, name, getattr(other, name))
        self.log_entries.extend(other.log_entries)

    def decisive_rows(self) -> list[MetricRow]:
        """Per segment the rows that decide its result: ``results.round_results`` of these is
        that of every row."""
        return [r for k in self.best_loss for r in (self.best_loss[k], self.best_accuracy[k])]

    # ------------------------------------------------------------------ log
    def note(self, text: str) -> None:
        self.log_entries.append(("note", None, text))

    def format_entry(self, kind: str, key: SegmentKey | None, record: Any) -> str:
        if key is None:
            return record
        label = segment_label(key, self.replicates)
        if kind == "started":
            return f"{label} started: {100 * float(record['remaining']):.1f}% of weights left"
        return (f"{label} it {record['iteration']}: val {100 * record['val_acc']:.2f}% "
                f"test {100 * record['test_acc']:.2f}% loss {record['val_loss']:.4f}")

    def drain_log(self) -> list[str]:
        """Log lines since the last call, in the order they happened."""
        lines = [self.format_entry(*entry) for entry in self.log_entries]
        self.log_entries.clear()
        return lines

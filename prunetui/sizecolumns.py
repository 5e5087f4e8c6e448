"""Columns and cell formats of the size-and-speed view, shared by ``prunetui report --size`` and
the app's size screen.

Plain Python only (no torch, Rich or Textual), so the app can build its tables without importing
the CLI or torch. A row is a :class:`prunetui.footprint.Footprint` (read by attribute only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prunetui.footprint import Footprint

# The export formats whose file sizes are shown, in column order.
SIZE_FORMATS = ("sparse", "dense", "shrunk")
# (column label, latency backend measured by prunetui.footprint), in column order.
LATENCY_BACKENDS = (("dense", "dense"), ("sparse", "scipy-csr"), ("shrunk", "shrunk"))
# The batch sizes the app shows (prunetui.footprint.measure times these by default).
LATENCY_BATCHES = (1, 256)
# The size table: the round, its accuracy and ratios, then one file size (KiB) per format.
SIZE_COLUMNS = ("round", "left %", "test %", "compr.", "speedup", *SIZE_FORMATS)


def kib(n: int | None) -> str:
    """A byte count as KiB with one decimal; ``-`` when not measured."""
    return "-" if n is None else f"{n / 1024:,.1f}"


def micros(seconds: float | None) -> str:
    """A duration in whole microseconds; ``-`` when not measured."""
    return "-" if seconds is None else f"{1e6 * seconds:,.0f}"


def size_cells(row: Footprint) -> tuple[str, ...]:
    """The cells of ``row`` under :data:`SIZE_COLUMNS`."""
    return (str(row.round), f"{100 * row.remaining:.1f}", f"{100 * row.test_acc:.2f}",
            f"{row.compression:.1f}x", f"{row.speedup:.1f}x",
            *(kib(row.sizes.get(f)) for f in SIZE_FORMATS))


def latency_columns(batches: tuple[int, ...] = LATENCY_BATCHES) -> tuple[str, ...]:
    """Latency column labels (µs): ``b1 dense``, ``b1 sparse``, ... per batch and backend."""
    return tuple(f"b{b} {label}" for b in batches for label, _ in LATENCY_BACKENDS)


def latency_cells(row: Footprint, device: str = "cpu",
                  batches: tuple[int, ...] = LATENCY_BATCHES) -> tuple[str, ...]:
    """The latency cells of ``row`` on ``device`` under :func:`latency_columns`."""
    return tuple(micros(row.latency.get((device, backend, b)))
                 for b in batches for _, backend in LATENCY_BACKENDS)

"""Columns and cell formats of the size-and-speed view, shared by ``prunetui report --size`` and
the app's size screen.

Plain Python only (no torch, Rich or Textual), so the app can build its tables without importing
the CLI or torch. A row is a :class:`prunetui.footprint.Footprint` (read by attribute only).

A unit-pruned run (``prune.structure = "unit"``) has columns of its own, which show what
removing whole units buys: the shrunk network's parameters and FLOPs against the dense
network's, its file size, and its latency against the dense network's (``gain``: dense /
shrunk seconds per call). Both kinds of table fit 80 columns in the app.
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

UNIT = "unit"  # prune.structure of a unit-pruned run
# Unit runs: the shrunk network's parameters and FLOPs, their ratios to the dense network's
# (compr., speedup), and the shrunk file (KiB).
UNIT_SIZE_COLUMNS = ("round", "left %", "test %", "params", "compr.", "FLOPs", "speedup",
                     "shrunk")
# Unit runs: (column label, latency backend) in column order, then dense / shrunk.
UNIT_LATENCY_BACKENDS = (("dense", "dense"), ("shrunk", "shrunk"))
GAIN = "gain"


def kib(n: int | None) -> str:
    """A byte count as KiB with one decimal; ``-`` when not measured."""
    return "-" if n is None else f"{n / 1024:,.1f}"


def micros(seconds: float | None) -> str:
    """A duration in whole microseconds; ``-`` when not measured."""
    return "-" if seconds is None else f"{1e6 * seconds:,.0f}"


def count(n: int | None) -> str:
    """A parameter or FLOP count in four digits: ``266.6k``, ``11.69M``, ``1.503G``."""
    if n is None:
        return "-"
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.4g}{suffix}"
    return str(n)


def ratio(dense: float | None, shrunk: float | None) -> str:
    """``dense / shrunk`` as ``1.62x``; ``-`` when either is not measured."""
    if dense is None or shrunk is None or not shrunk > 0 or not dense > 0:
        return "-"
    return f"{dense / shrunk:.2f}x"


def is_unit(structure: str) -> bool:
    return structure == UNIT


def size_columns(structure: str = "weight") -> tuple[str, ...]:
    """The size table's columns for a run of ``prune.structure = structure``."""
    return UNIT_SIZE_COLUMNS if is_unit(structure) else SIZE_COLUMNS


def size_cells(row: Footprint) -> tuple[str, ...]:
    """The cells of ``row`` under :func:`size_columns` of its structure."""
    head = (str(row.round), f"{100 * row.remaining:.1f}", f"{100 * row.test_acc:.2f}")
    if is_unit(row.structure):
        shrunk = kib(row.sizes.get("shrunk"))
        if row.shrunk is None:  # no shrunk network could be made
            return (*head, "-", "-", "-", "-", shrunk)
        return (*head, count(row.shrunk.params), f"{row.compression:.1f}x",
                count(row.shrunk.flops), f"{row.speedup:.1f}x", shrunk)
    return (*head, f"{row.compression:.1f}x", f"{row.speedup:.1f}x",
            *(kib(row.sizes.get(f)) for f in SIZE_FORMATS))


def latency_columns(batches: tuple[int, ...] = LATENCY_BATCHES,
                    structure: str = "weight") -> tuple[str, ...]:
    """Latency column labels (µs): ``b1 dense``, ``b1 sparse``, ... per batch and backend; for
    unit runs ``b1 dense``, ``b1 shrunk``, ``b1 gain`` (dense / shrunk), ... per batch."""
    if is_unit(structure):
        return tuple(label for b in batches for label in
                     (*(f"b{b} {name}" for name, _ in UNIT_LATENCY_BACKENDS), f"b{b} {GAIN}"))
    return tuple(f"b{b} {label}" for b in batches for label, _ in LATENCY_BACKENDS)


def latency_cells(row: Footprint, device: str = "cpu",
                  batches: tuple[int, ...] = LATENCY_BATCHES) -> tuple[str, ...]:
    """The latency cells of ``row`` on ``device`` under :func:`latency_columns` of its
    structure."""
    if is_unit(row.structure):
        cells: list[str] = []
        for b in batches:
            dense, shrunk = (row.latency.get((device, backend, b))
                             for _, backend in UNIT_LATENCY_BACKENDS)
            cells += [micros(dense), micros(shrunk), ratio(dense, shrunk)]
        return tuple(cells)
    return tuple(micros(row.latency.get((device, backend, b)))
                 for b in batches for _, backend in LATENCY_BACKENDS)


def dense_summary(rows: list[Footprint]) -> str:
    """``Dense network: 266,610 parameters, 266.2k FLOPs, 1,045.0 KiB file`` from a unit run's
    rows ("" when none was counted)."""
    counted = next((r for r in rows if r.shrunk is not None), None)
    if counted is None:
        return ""
    size = next((r.sizes["dense"] for r in rows if r.sizes.get("dense") is not None), None)
    file = "" if size is None else f", {kib(size)} KiB file"
    return (f"Dense network: {counted.shrunk.dense_params:,} parameters, "
            f"{count(counted.shrunk.dense_flops)} FLOPs{file}")

"""Columns and cell formats of the size-and-speed view, shared by ``prunetui report --size`` and
the app's size screen.

Plain Python only (no torch, Rich or Textual), so the app can build its table without importing
the CLI or torch.
"""

from __future__ import annotations

# The export formats whose file sizes are shown, in column order.
SIZE_FORMATS = ("sparse", "dense", "shrunk")
# (column label, latency backend measured by prunetui.footprint), in column order.
LATENCY_BACKENDS = (("dense", "dense"), ("sparse", "scipy-csr"), ("shrunk", "shrunk"))


def kib(n: int | None) -> str:
    """A byte count as KiB with one decimal; ``-`` when not measured."""
    return "-" if n is None else f"{n / 1024:,.1f}"


def micros(seconds: float | None) -> str:
    """A duration in whole microseconds; ``-`` when not measured."""
    return "-" if seconds is None else f"{1e6 * seconds:,.0f}"

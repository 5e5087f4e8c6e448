"""Whether the numbers of a run-store row can be drawn and compared.

The run store accepts any well-formed row; the charts cannot: plotext's scaling overflows on
NaN, infinite or huge numbers, and it hangs drawing a line to a point far off its limits. The
app's tails skip such rows (see :class:`~prunetui.store.JsonlTail`'s ``check``) and name them
like damaged lines. Pure Python.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prunetui.store.rows import MetricRow, SparsityRecord

LARGE = 1e12  # larger numbers in a row are damage (plotext's scaling overflows on them)
IMPLAUSIBLE = "a number is NaN, infinite or out of range"


def drawable(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number or NaN, infinite or huge (plotext
    cannot draw those: its scaling overflows)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            if -LARGE < (value := float(value)) < LARGE:  # False for NaN
                return value
    return None


def plausible_row(r: MetricRow) -> bool:
    """Whether a metrics row's numbers can be drawn and compared (NaN fails every test). The
    test accuracy is drawn on a 0-100 % axis: plotext hangs drawing a line to a point far off
    its limits. ``r`` fits MetricRow: a tail runs its check only on rows that do."""
    return (0.0 <= r["test_acc"] <= 1.0 and -LARGE < r["val_acc"] < LARGE
            and -LARGE < r["remaining"] < LARGE and -LARGE < r["val_loss"] < LARGE
            and -LARGE < r["iteration"] < LARGE)


def plausible_sparsity(r: SparsityRecord) -> bool:
    return -LARGE < r["remaining"] < LARGE


def metrics_row_problem(r: MetricRow) -> str | None:
    """What is wrong with a metrics row for the charts (a tail's ``check``), or None."""
    return None if plausible_row(r) else IMPLAUSIBLE


def sparsity_row_problem(r: SparsityRecord) -> str | None:
    """What is wrong with a sparsity record for the charts (a tail's ``check``), or None."""
    return None if plausible_sparsity(r) else IMPLAUSIBLE

"""The two row schemas of a run directory: a ``metrics.jsonl`` row and a ``sparsity.jsonl``
record, each declared once.

They are TypedDicts: the run writes them, readers' type hints name them, and the JSON-lines
reader checks every line against them (in one C-level msgspec pass over a Struct derived from
each, so a long file reads as fast as before, and the rows stay plain dicts). A line that does
not fit its schema is reported as damaged, like a line that is not JSON. Keys marked
NotRequired may be absent from rows written by hand or by an older prunetui; readers give a
default for them.
"""

# No ``from __future__ import annotations`` here: on Python 3.11 a TypedDict does not see
# NotRequired in a string annotation, and would make every key required.

import functools
import typing
from typing import Any, NotRequired, TypedDict

import msgspec

SegmentKey = tuple[int, int, str]  # (replicate, round, scheme): one trained segment


class MetricRow(TypedDict):
    """One evaluation of one segment."""

    replicate: int
    round: int
    scheme: str  # "dense" for round 0
    iteration: int  # training iterations of this segment so far
    remaining: float  # fraction of the prunable weights left, 0..1
    val_loss: float
    val_acc: float  # fraction, 0..1
    test_acc: float  # fraction, 0..1
    epoch: NotRequired[float]  # iteration / iterations per epoch
    train_loss: NotRequired[float]  # mean over the iterations since the last evaluation
    elapsed_s: NotRequired[float]  # the run's seconds so far, over all resumes


class SparsityRecord(TypedDict):
    """What one segment keeps of its prunable weights (written once, when it starts)."""

    replicate: int
    round: int
    scheme: str
    remaining: float  # fraction of the prunable weights left, 0..1
    layers: dict[str, float]  # per layer weight: fraction left
    counts: dict[str, list[int]]  # per layer weight: [weights alive, weights]
    units: NotRequired[dict[str, list[int]]]  # unit runs: [units alive, units]


def segment_key(row: MetricRow | SparsityRecord) -> SegmentKey:
    """The segment a row belongs to."""
    return (row["replicate"], row["round"], row["scheme"])


def row_problem(record: Any, schema: type | None) -> str | None:
    """What is wrong with one decoded line against ``schema`` (a TypedDict; None: any JSON
    object), or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if schema is None:
        return None
    required = schema.__required_keys__
    for key, kind in _hints(schema).items():
        if key not in record and key not in required:
            continue
        value = record.get(key)
        if value is None and key in required:
            return f"{key!r} missing"
        try:
            msgspec.convert(value, kind)
        except msgspec.ValidationError:
            return f"{key!r} is not {_kind_name(kind)}"
    return None


def all_fit(records: list[Any], schema: type) -> bool:
    """Whether every record fits ``schema``: one C-level pass (the per-row check above runs
    only when this fails)."""
    try:
        msgspec.convert(records, _fit_check(schema))
    except msgspec.ValidationError:
        return False
    return True


@functools.cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


@functools.cache
def _fit_check(schema: type) -> Any:
    """``list[S]`` for a msgspec Struct with the TypedDict's fields (an optional key may be
    absent, not null, as in :func:`row_problem`): converting to it checks the same types 2.5x
    faster than converting to the TypedDict itself, which copies every row."""
    required = schema.__required_keys__  # type: ignore[attr-defined]
    fields = [(key, kind) if key in required else (key, kind, None)  # None: absent only
              for key, kind in _hints(schema).items()]
    return list[msgspec.defstruct(f"{schema.__name__}Check", fields, kw_only=True)]  # type: ignore[misc]


_NAMES = {float: ("a number", "numbers"), int: ("an integer", "integers"),
          str: ("a string", "strings"), bool: ("true or false", "booleans")}


def _kind_name(kind: Any, plural: bool = False) -> str:
    """``dict[str, list[int]]`` -> "an object of lists of integers" (for error messages)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return ("lists of " if plural else "a list of ") + _kind_name(args[0], True)
    if origin is dict:
        return ("objects of " if plural else "an object of ") + _kind_name(args[1], True)
    one, many = _NAMES.get(kind, (getattr(kind, "__name__", str(kind)),) * 2)
    return many if plural else one

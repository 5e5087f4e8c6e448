"""Calibrations: what a launch estimate measured, and the cache that keeps it for later launches.

A calibration is a :class:`Timing` (seconds per training step, per evaluated example, per
checkpoint) for one network, input shape, batch size, optimizer, precision, thread count,
device and host (:func:`timing_key`), plus the :class:`DataShape` of the dataset it ran on
(keyed by a digest of every data setting and the data folders' times). Both live in
``$XDG_CACHE_HOME/prunetui/calibration.json``; a calibration older than ``MAX_AGE_S`` is
measured again. Writing is best effort: a read-only home only costs a new measurement.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunetui.config import Config

CACHE_VERSION = 1
MAX_AGE_S = 7 * 86400  # an older calibration is measured again


@dataclass(frozen=True)
class DataShape:
    """What the plan needs to know about a dataset."""

    train_size: int
    eval_size: int  # validation + test examples, all evaluated each time
    input_shape: tuple[int, ...]
    num_classes: int
    load_s: float  # decoding it, as a run does once


@dataclass(frozen=True)
class Timing:
    """One calibration: seconds per training step, per evaluated example, per checkpoint."""

    per_step_s: float
    eval_example_s: float
    checkpoint_s: float
    steps: int  # training steps timed
    measured_at: float = 0.0  # time.time()
    busy_other: float = 0.0  # cores' worth of CPU other processes used while timing


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prunetui" / "calibration.json"


def read_cache(path: Path) -> dict[str, Any]:
    """The cache's content; an empty one when it is missing, damaged or of another version."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION:
        doc = {"version": CACHE_VERSION}
    for part in ("data", "timing"):
        if not isinstance(doc.get(part), dict):
            doc[part] = {}
    return doc


def write_cache(path: Path, doc: dict[str, Any]) -> None:
    """Best effort: a read-only home only means the next estimate measures again."""
    from prunetui.fileio import StoreError, atomic_write_text

    with contextlib.suppress(OSError, StoreError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def data_digest(cfg: Config) -> str:
    """The cache's key for the configured dataset: a digest of :func:`data_key`. Take it after
    the data were decoded: a first decode writes beside the data (torchvision extracts MNIST's
    ``.gz`` files, faces get their ``split.json``), which moves the folders' times."""
    from prunetui.data.recent import data_key

    return hashlib.sha256(repr(data_key(cfg)).encode()).hexdigest()[:20]


def timing_key(cfg: Config, device: str, input_shape: tuple[int, ...], threads: int,
               precision: str) -> str:
    t = cfg.train
    network = {k: v for k, v in asdict(cfg.model).items() if k != "init"}  # arch, width, ...
    parts = (socket.gethostname(), device, json.dumps(network, sort_keys=True, default=str),
             "x".join(map(str, input_shape)), t.batch_size, t.optimizer, precision, threads)
    return "|".join(map(str, parts))


def cached_entries(doc: dict[str, Any], dkey: str, tkey: Callable[[DataShape], str]
                   ) -> tuple[DataShape | None, Timing | None]:
    """The dataset's sizes and the calibration in the cache (None: absent, damaged, stale)."""
    try:
        shape = DataShape(**{**doc["data"][dkey], "input_shape":
                             tuple(doc["data"][dkey]["input_shape"])})
        timing = Timing(**doc["timing"][tkey(shape)])
    except (TypeError, KeyError):
        return None, None
    return shape, timing if time.time() - timing.measured_at < MAX_AGE_S else None

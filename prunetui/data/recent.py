"""The dataset decoded last in this process, handed to the next caller that asks for the same.

Decoding is the slow part of starting a run (MNIST 1-2 s, a folder of photos far more), and two
callers in one process often want the same data one after the other: the launch estimate and
the run it describes (``prunetui run``), the Setup screen's estimates and the run it launches
(the app). Sharing the tensors decodes once and holds one copy, not two. Only the last dataset
is kept. Streamed data is never kept: its reader's read-ahead belongs to one training loop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prunetui.config import Config
    from prunetui.data.tensors import TensorData

_last: dict[tuple, tuple[TensorData, float]] = {}


def data_key(cfg: Config) -> tuple:
    """Everything that decides what ``load_data`` returns: the data settings, the device
    (it sizes the memory budget that decides streaming) and the modification times of the
    root and the folders up to two levels below it (a folder's time moves when a file in it
    is created, deleted or renamed: a person, a photo, a class folder added or removed)."""
    root = Path(cfg.data.root).expanduser().resolve()
    depth = 1 if cfg.data.dataset == "faces" else 2  # faces: root/person/photo
    return (cfg.data, cfg.train.device, str(root), tuple(folder_times(root, depth)))


def folder_times(folder: Path, depth: int) -> Iterator[tuple[str, int]]:
    """(path, mtime in ns) of ``folder`` and the folders up to ``depth`` below it; a folder
    that is missing or unreadable gives nothing (loading says what is wrong)."""
    try:
        yield str(folder), folder.stat().st_mtime_ns
        if depth:
            with os.scandir(folder) as entries:
                below = sorted(Path(e.path) for e in entries if e.is_dir())
    except OSError:
        return
    for child in below if depth else ():
        yield from folder_times(child, depth - 1)


def load_recent(cfg: Config, keep: bool = True) -> tuple[TensorData, float]:
    """The configured dataset on CPU and the seconds its decoding took (when it was decoded
    earlier in this process, the same tensors and that first time). ``keep=False`` decodes
    without keeping: a run on a GPU moves its data there and the CPU copy would only hold
    memory."""
    from prunetui.data import load_data

    if (key := data_key(cfg)) in _last:
        return _last[key]
    _last.clear()  # before decoding: the old one must not share memory with the new one
    start = time.perf_counter()
    data = load_data(cfg)
    found = (data, time.perf_counter() - start)
    if keep and data.storage != "streamed":  # keyed after decoding (faces write split.json)
        _last[data_key(cfg)] = found
    return found


def forget() -> None:
    """Let go of the kept dataset (whoever still uses the tensors keeps them alive)."""
    _last.clear()

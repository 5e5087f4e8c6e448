"""Run control shared by a front end and the running engine (no torch: the app imports it)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class RunControl:
    """Thread-safe stop and pause flags shared by a front end and the running engine."""

    stop: threading.Event = field(default_factory=threading.Event)
    running: threading.Event = field(default_factory=threading.Event)
    paused_seconds: float = 0.0  # total time spent paused (not counted in elapsed_s)
    _paused_at: float | None = None

    def __post_init__(self) -> None:
        self.running.set()

    def request_stop(self) -> None:
        self.stop.set()
        self.resume()  # wake a paused loop so it can stop

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()
        self.running.clear()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.paused_seconds += time.monotonic() - self._paused_at
            self._paused_at = None
        self.running.set()

    @property
    def paused(self) -> bool:
        return not self.running.is_set()

"""The launch estimate under Setup's form: how long the config shown would take here.

:meth:`EstimateLine.follow` is called with every validated config; half a second after the
settings settle, :func:`prunetui.estimate.estimate` runs in a thread worker (exclusive: a newer
config supersedes an older one), so torch and the timed steps never touch the event loop.
Results are kept per config (by its TOML text: a Config may hold a dict, so it is not always
hashable) for the session: going back to a setting answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial
from typing import Any

from textual.widgets import Static

from prunetui import config, estimate

ESTIMATE_DELAY_S = 0.5  # settle time before an estimate starts (typing changes the config)
DWELL_S = 1.0  # and Setup must have been on screen this long
LONG_RUN_S = 3600.0  # above this the line is highlighted and a launch asks first

Result = estimate.Estimate | Exception


class EstimateLine(Static):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.results: dict[str, Result] = {}  # by config text
        self.wanted: str | None = None  # the config the line is about
        self.started: str | None = None  # the config the running worker measures
        self.timer: Any = None
        self.seen_since: float | None = None  # when Setup was last seen on screen

    def follow(self, cfg: config.Config | None) -> None:
        """Show the estimate of ``cfg`` (None: a form with errors, no line)."""
        key = None if cfg is None else config.dumps(cfg)
        if key == self.wanted:
            return
        self.wanted = key
        if self.timer is not None:
            self.timer.stop()
        if cfg is None:
            self.show("", False)
        elif key in self.results:
            self.show_result(key)
        else:
            self.show("Estimated time: estimating…", False)
            self.timer = self.set_timer(ESTIMATE_DELAY_S, partial(self.start, cfg))

    def start(self, cfg: config.Config) -> None:
        key = config.dumps(cfg)
        if key in self.results or key == self.started:
            return
        # Measuring imports torch: only once Setup has been on screen a moment, so browsing
        # past it costs nothing (the app's start imports no torch).
        now = time.monotonic()
        if not self.screen.is_current:
            self.seen_since = None
        elif self.seen_since is None:
            self.seen_since = now
        if self.seen_since is None or now - self.seen_since < DWELL_S:
            self.timer = self.set_timer(ESTIMATE_DELAY_S, partial(self.start, cfg))
            return
        self.started = key
        self.run_worker(partial(self._work, cfg, key), thread=True, exclusive=True,
                        group="estimate", exit_on_error=False)

    def _work(self, cfg: config.Config, key: str) -> None:
        # Measuring sets torch's threads for the whole process: never while a run trains in
        # this app (its float sums would change). A cached calibration still answers.
        monitor = self.app.monitor_if_created()  # type: ignore[attr-defined]
        training = monitor is not None and monitor.training
        try:
            result: Result = (estimate.estimate(cfg, measure_fn=_not_while_training)
                              if training else estimate.estimate(cfg))
        except Exception as err:  # missing data, a device that is not there: shown as such
            result = err
        with contextlib.suppress(RuntimeError):  # the app has closed meanwhile
            self.app.call_from_thread(self._done, key, result)

    def _done(self, key: str, result: Result) -> None:
        self.results[key] = result
        if self.started == key:
            self.started = None
        if key == self.wanted:
            self.show_result(key)

    def show_result(self, key: str) -> None:
        result = self.results[key]
        if isinstance(result, Exception):
            why = (str(result).splitlines() or [""])[0][:160]
            self.show(f"Estimated time: unknown ({type(result).__name__}: {why})", False)
        else:
            self.show(f"Estimated time: {result.describe()}", result.seconds > LONG_RUN_S)

    def show(self, text: str, long: bool) -> None:
        self.update(text)
        self.set_class(long, "-long")

    async def estimate_of(self, cfg: config.Config, wait_s: float = 120.0
                          ) -> estimate.Estimate | None:
        """The estimate of ``cfg`` now, waiting (without blocking) while it is measured;
        None when it cannot be made (the launch then reports the real problem)."""
        self.follow(cfg)
        self.start(cfg)
        key = config.dumps(cfg)
        deadline = time.monotonic() + wait_s
        while key not in self.results and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        result = self.results.get(key)
        return result if isinstance(result, estimate.Estimate) else None


def _not_while_training(*_: object) -> tuple:
    raise RuntimeError("not measured while a run trains in this app (it would change that "
                       "run's CPU threads); launch detached or wait for it to finish")

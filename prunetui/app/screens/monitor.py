"""Monitor: follow one run, trained in this app or elsewhere, round by round.

Everything drawn comes from the run store (:class:`RunData` polled on a timer), whoever runs the
experiment: this app's worker thread, ``prunetui run`` in another terminal, or a detached
process. For a run trained here, engine events add progress inside an epoch and log lines, and
the controls (pause, stop) talk to its :class:`RunControl`. An attached run on this host is
stopped with SIGINT, which ``prunetui run`` turns into a checkpoint and a clean exit.
What the progress bars and log lines say is worked out in :mod:`prunetui.app.liverun`.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Log, Static
from textual.worker import get_current_worker

from prunetui import store
from prunetui.app import runreader
from prunetui.app.damage import describe_problems
from prunetui.app.liverun import Live, log_lines, progress_rows
from prunetui.app.messages import EngineEvent, RunEnded
from prunetui.app.rundata import RunData
from prunetui.app.screens.base import AppScreen, toggle_zoom
from prunetui.app.widgets.charts import AccuracyChart, Chart, LayersChart, LotteryChart
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.progress import RunProgress
from prunetui.app.widgets.screenbar import ScreenBar
from prunetui.control import RunControl
from prunetui.events import (
    Checkpointed,
    RunFinished,
    RunStarted,
    SegmentFinished,
    SegmentStarted,
    TrainProgress,
)

POLL_S = 0.5  # store polling and chart redraws: about twice a second


class MonitorScreen(AppScreen):
    HELP = """\
# Monitor
Follows one run: launched here (Setup), opened from Runs, or found running when the app starts.
Charts: test accuracy against epoch in the current round (one line per scheme); the Lottery
Ticket plot, test accuracy at early stop against the share of weights left (log scale); the
weights left in each layer. They redraw at most twice a second.

| key | does |
| --- | --- |
| `p` | pause / continue (runs trained in this app) |
| `x` | stop at the next batch after writing a checkpoint; resume later from Runs |
| `z` | zoom the focused chart or log (again to restore); `tab` moves focus |
"""
    BINDINGS: ClassVar = [
        Binding("p", "pause", "Pause/continue"),
        Binding("x", "stop", "Stop (checkpoint)"),
        Binding("z", "zoom", "Zoom"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: RunData | None = None
        self.control: RunControl | None = None
        self.train_done = threading.Event()
        self.train_done.set()
        self.live = Live()
        self.spawned: set[int] = set()  # detached children of this app, reaped when they end
        self._stopping = False

    def compose(self) -> ComposeResult:
        yield ScreenBar("monitor")
        yield Static("No run followed. Launch one in Setup (2) or open one in Runs (4).",
                     id="monitor-status")
        yield RunProgress(id="progress")
        with Grid(id="monitor-grid"):
            yield AccuracyChart(id="chart-accuracy")
            yield LotteryChart(id="chart-lottery")
            yield LayersChart(id="chart-layers")
            yield Log(id="run-log", max_lines=2000)
        yield StableFooter()

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.tick)

    def on_unmount(self) -> None:
        self.request_stop()  # never leave a training thread behind

    # ------------------------------------------------------------------ following a run
    @property
    def training(self) -> bool:
        """True while a run trains in this app's worker thread."""
        return not self.train_done.is_set()

    def follow(self, run: store.RunDir, pid: int | None = None) -> bool:
        """Show ``run`` from its store (attach); refused while a run trains here."""
        if self.training and (self.data is None or self.data.run.path != run.path):
            self.notify("A run is training in this app; stop it (x) before following another.",
                        severity="warning")
            return False
        if pid is not None:
            self.spawned.add(pid)
        if self.data is None or self.data.run.path != run.path:
            runreader.cancel_reads(self)  # a long read of the run shown before
            self.data = RunData(run)
            self.live = Live()
            self.query_one("#run-log", Log).clear()
            self.query_one(RunProgress).clear()
            self._write_log([f"following {run.path}"])
            if self.data.config_error:
                self._write_log([f"warning: {self.data.config_error}"])
        self.tick()
        self._update_status()
        return True

    def start(self, run: store.RunDir) -> bool:
        """Train ``run`` (new or interrupted) in a worker thread of this app."""
        if self.training:
            self.notify("A run is already training in this app.", severity="warning")
            return False
        if not self.follow(run):
            return False
        self._write_log(["starting: loading torch and the dataset..."])
        self.control = RunControl()
        self._stopping = False
        self.train_done.clear()
        self._train(run, self.control)
        self._update_status()
        return True

    @work(thread=True, group="train", exit_on_error=False)
    def _train(self, run: store.RunDir, control: RunControl) -> None:
        worker = get_current_worker()
        path = str(run.path)
        try:
            # imports torch, off the event loop; a damaged config.toml is restored from a
            # checkpoint's copy by the Experiment, which logs it as a warning
            from prunetui.experiment import Experiment

            def sink(event) -> None:
                if worker.is_cancelled:
                    control.request_stop()
                self.post_message(EngineEvent(path, event))

            state = Experiment(run, sink, control).execute()
            self.post_message(RunEnded(path, state))
        except BaseException as err:  # shown to the user; the thread must never die silently
            self.post_message(RunEnded(path, store.FAILED, f"{type(err).__name__}: {err}"))
        finally:
            self.train_done.set()

    def request_stop(self) -> None:
        """Stop the run training here at its next batch, after a checkpoint."""
        if not self.training:
            return
        self._stopping = True
        if self.control is not None:
            self.control.request_stop()

    # ------------------------------------------------------------------ periodic store read
    def tick(self) -> None:
        for pid in list(self.spawned):  # reap our detached children (no zombies)
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.spawned.discard(pid)
        if self.data is None:
            return
        changed = runreader.poll(self, self.data)  # None: a worker reads a long file
        if changed is not None:
            self._show_read(changed)

    def on_run_read(self, message: runreader.RunRead) -> None:
        if message.data is self.data:
            self._show_read(message.apply())

    def _show_read(self, changed: bool) -> None:
        data = self.data
        if data is None:
            return
        self._write_log(data.drain_log())
        problems = data.drain_problems()
        if problems:
            self._write_log([f"warning: {p} (skipped)" for p in problems[:50]])
            if len(problems) > 50:
                self._write_log([f"warning: {len(problems) - 50} more damaged lines skipped"])
            self.notify(f"{data.name}: damaged lines skipped: {describe_problems(problems)}",
                        severity="warning", timeout=10)
        if changed:
            self.redraw()

    def redraw(self) -> None:
        data = self.data
        if data is None:
            return
        for chart in self.query(Chart):
            chart.show([data])
        self._update_progress()
        self._update_status()

    def _write_log(self, lines: list[str]) -> None:
        if lines:
            self.query_one("#run-log", Log).write_lines(lines)

    # ------------------------------------------------------------------ events (in-app runs)
    def on_engine_event(self, message: EngineEvent) -> None:
        if self.data is None or message.run_dir != str(self.data.run.path):
            return
        ev = message.event
        if isinstance(ev, (SegmentStarted, SegmentFinished, Checkpointed, RunFinished)):
            self.tick()  # what the store has now goes first, so the log reads in order
        if isinstance(ev, RunStarted) and self.data.cfg is None:
            self.data.load_config()  # config.toml was restored from a checkpoint
        self.live.take(ev)
        self._write_log(log_lines(ev, self.data.replicates))
        if isinstance(ev, TrainProgress):
            self._update_progress()

    def on_run_ended(self, message: RunEnded) -> None:
        self.control = None
        self._stopping = False
        self.tick()
        name = os.path.basename(message.run_dir)
        if message.error:
            self._write_log([f"error: {message.error}"])
            self.notify(f"{name} failed: {message.error}", severity="error", timeout=10)
        elif message.state == store.INTERRUPTED:
            self.notify(f"{name} stopped after a checkpoint; resume it from Runs (4) with r.")
        else:
            self.notify(f"{name} {message.state}.")
        self._update_status()

    # ------------------------------------------------------------------ progress and status
    def _update_progress(self) -> None:
        if self.data is None:
            return
        bars = self.query_one(RunProgress)
        for row in progress_rows(self.data, self.live):
            bars.set_row(row.name, row.label, row.progress, row.total)

    def _update_status(self) -> None:
        data = self.data
        if data is None:
            return
        if not data.loaded:
            text = f"{data.name}: reading its run store..."
        elif self.training:
            how = "paused" if self.control and self.control.paused else \
                "stopping (checkpointing)" if self._stopping else "training in this app"
            where = f" on {self.live.device}" if self.live.device else ""
            text = f"{data.name}: {how}{where}"
        else:
            pid = data.status.pid
            attached = data.state == store.RUNNING and pid != os.getpid()
            text = f"{data.name}: {data.state}" + (f" (attached, pid {pid})" if attached else "")
        self.query_one("#monitor-status", Static).update(text)
        self.sub_title = text

    # ------------------------------------------------------------------ actions
    def action_pause(self) -> None:
        if self.control is None:
            self.notify("Still starting; try again in a moment." if self.training else
                        "Pause works for runs trained in this app.", severity="warning")
            return
        if self.control.paused:
            self.control.resume()
            self._write_log(["continued"])
        else:
            self.control.pause()
            self._write_log(["paused (the run waits before its next batch)"])
        self._update_status()

    def action_stop(self) -> None:
        data = self.data
        if self.training:
            self.request_stop()
            self._write_log(["stop requested: checkpointing at the next batch"])
            self._update_status()
            return
        if data is None or data.state != store.RUNNING:
            self.notify("No running run to stop.", severity="warning")
            return
        status = data.status
        if status.pid is None or (status.host and status.host != os.uname().nodename):
            self.notify(f"{data.name} runs on {status.host}; stop it there.", severity="warning")
            return
        try:
            os.kill(status.pid, signal.SIGINT)  # prunetui run: checkpoint, then exit
        except OSError as err:
            self.notify(f"Cannot signal pid {status.pid}: {err.strerror}", severity="error")
            return
        self._write_log([f"sent SIGINT to pid {status.pid}: it checkpoints and stops"])

    def action_zoom(self) -> None:
        toggle_zoom(self, (Chart, Log), self.query_one(Chart))

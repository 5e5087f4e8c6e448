"""The Textual app: four screens (modes), global keys, launching and resuming runs, quitting.

The app holds no training logic: the Monitor trains a run through ``Experiment`` in a worker
thread, or follows a run trained elsewhere through its run store. torch is never imported
here; only workers import the engine modules that need it. The first paint needs Textual and
the Runs screen only: the run store is imported once a run is looked up (in a worker at
start-up), config only for annotations.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from prunetui.app.messages import RunningFound
from prunetui.app.screens.base import AppScreen

if TYPE_CHECKING:
    from prunetui import config, store
    from prunetui.app.screens.monitor import MonitorScreen

SCREEN_TITLES = {"data": "Data", "setup": "Setup", "monitor": "Monitor", "runs": "Runs"}
SCREEN_CLASSES = {"data": "data.DataScreen", "setup": "setup.SetupScreen",
                  "monitor": "monitor.MonitorScreen", "runs": "runs.RunsScreen"}
HANGUP_WAIT_S = 30.0
SCREENS_GROUP = Binding.Group("Screens", compact=True)


def screen_class(name: str) -> type[Screen]:
    """A screen's class, imported on first use: the first paint needs only the first screen."""
    module, cls = SCREEN_CLASSES[name].split(".")
    return getattr(importlib.import_module(f"prunetui.app.screens.{module}"), cls)


def screen_factory(name: str):
    return lambda: screen_class(name)()


class PruneApp(App[int]):
    TITLE = "prunetui"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    SCREENS: ClassVar = {name: screen_factory(name) for name in SCREEN_TITLES}
    MODES: ClassVar = {name: name for name in SCREEN_TITLES}
    BINDINGS: ClassVar = [
        *(Binding(str(i), f"show('{name}')", title, id=f"show-{name}", group=SCREENS_GROUP)
          for i, (name, title) in enumerate(SCREEN_TITLES.items(), start=1)),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "request_quit", "Quit", priority=True, show=False),
    ]

    def __init__(self, models_dir: str | Path = "models", data_root: str | Path = "data",
                 start: str | None = None) -> None:
        super().__init__()
        self.models_dir = Path(models_dir)
        self.data_root = Path(data_root)
        self.start_mode = start
        self._quitting = False
        self.hangup_timer: threading.Timer | None = None
        # No smooth scrolling or fades: every frame costs bandwidth over SSH, and tab through
        # the form must move at once.
        self.animation_level = "none"

    # ------------------------------------------------------------------ start-up
    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        await self.switch_mode(self.start_mode or "runs")
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self._install_signal_handlers()
        if self.start_mode is None:
            self._find_running()

    @work(thread=True, group="start-up")
    def _find_running(self) -> None:
        """Off the event loop: the store's import and a read of every run's status."""
        from prunetui import store

        running = None
        with contextlib.suppress(OSError):  # a run folder removed meanwhile: skip it
            running = next((r for r in store.list_runs(self.models_dir)
                            if r.read_status().effective_state == store.RUNNING), None)
        if running is not None:
            self.post_message(RunningFound(str(running.path)))

    async def on_running_found(self, message: RunningFound) -> None:
        from prunetui import store

        running = store.RunDir(message.run_dir)
        if await self.follow(running):
            self.notify(f"{running.name} is still running; the Monitor follows it.")

    def _install_signal_handlers(self) -> None:
        if self.is_headless:  # tests and benchmarks: leave the test runner's signals alone
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_hangup, sig)

    def _on_hangup(self, sig: int) -> None:
        """Terminal gone (SSH drop) or asked to end: checkpoint a run training here, then exit.

        The event loop blocks while the training thread writes its checkpoint: nobody is
        looking at the screen any more.
        """
        monitor = self.monitor_if_created()
        if monitor is not None and monitor.training:
            monitor.request_stop()
            monitor.train_done.wait(HANGUP_WAIT_S)
        self.exit(return_code=128 + sig)
        # A dead tty must not hang the exit; launch_app cancels this once run() returns.
        self.hangup_timer = threading.Timer(5.0, os._exit, (128 + sig,))
        self.hangup_timer.daemon = True
        self.hangup_timer.start()

    # ------------------------------------------------------------------ screens
    def monitor_if_created(self) -> MonitorScreen | None:
        screen = self._installed_screens.get("monitor")
        return screen if isinstance(screen, Screen) else None  # type: ignore[return-value]

    def monitor(self) -> MonitorScreen:
        return self.get_screen("monitor")  # type: ignore[return-value]

    async def action_show(self, name: str) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        await self.switch_mode(name)

    def action_help(self) -> None:
        from prunetui.app.screens.modals import HelpScreen

        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        self.push_screen(HelpScreen(getattr(screen, "HELP", "") or AppScreen.HELP))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists every key binding of every screen, then Textual's own commands."""
        seen = set()
        for number, (name, title) in enumerate(SCREEN_TITLES.items(), start=1):
            yield SystemCommand(f"{title}: show screen", f"key {number}",
                                partial(self.switch_mode, name))
            for binding in screen_class(name).BINDINGS:
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                label = f"{title}: {binding.description}"
                if label in seen:
                    continue
                seen.add(label)
                yield SystemCommand(label, f"key {binding.key}",
                                    partial(self._run_on_screen, name, binding.action))
        yield SystemCommand("Help", "key ?", self.action_help)
        yield from super().get_system_commands(screen)

    async def _run_on_screen(self, name: str, action: str) -> None:
        await self.switch_mode(name)
        await self.run_action(action, self.get_screen(name))

    # ------------------------------------------------------------------ runs
    async def launch(self, cfg: config.Config, name: str | None = None,
                     detached: bool = False) -> store.RunDir | None:
        """Create a run folder for ``cfg`` and start it (in this app, or detached)."""
        monitor = self.monitor_if_created()
        if not detached and monitor is not None and monitor.training:
            self.notify("A run is already training in this app: stop it in the Monitor (x) "
                        "first, or launch detached (ctrl+t).", severity="warning")
            return None
        from prunetui import store

        try:
            run = store.new_run(cfg, self.models_dir, name)
        except store.StoreError as err:
            self.notify(str(err), severity="error", timeout=10)
            return None
        await self._start(run, detached)
        return run

    async def resume(self, run: store.RunDir, detached: bool = False) -> bool:
        from prunetui import store

        state = run.read_status().effective_state
        if state == store.RUNNING:
            self.notify(f"{run.name} is already running; open it to follow it.")
            return False
        if state == store.FINISHED:
            self.notify(f"{run.name} has finished; nothing to resume.")
            return False
        try:
            run.config()
        except (ValueError, OSError) as err:  # ConfigError, or a file that is not UTF-8
            if not run.checkpoints.is_dir():
                self.notify(str(err), severity="error", timeout=10)
                return False
            self.notify(f"{run.name}: config.toml is damaged; resuming puts it back from the "
                        "copy in its checkpoints.", severity="warning")
        return await self._start(run, detached)

    async def _start(self, run: store.RunDir, detached: bool) -> bool:
        await self.switch_mode("monitor")
        monitor = self.monitor()
        if detached:
            from prunetui.detach import spawn_detached

            try:
                pid = spawn_detached(run.path)
            except OSError as err:
                self.notify(f"Cannot start {run.name}: {err}", severity="error")
                return False
            self.notify(f"{run.name} runs detached (pid {pid}); it keeps going if you log out.")
            return monitor.follow(run, pid=pid)
        return monitor.start(run)

    async def follow(self, run: store.RunDir) -> bool:
        """Show a run in the Monitor (attach); False when the Monitor is busy training."""
        monitor = self.monitor_if_created()
        if monitor is not None and monitor.training:
            if monitor.data is not None and monitor.data.run.path == run.path:
                await self.switch_mode("monitor")
                return True
            return False
        await self.switch_mode("monitor")
        return self.monitor().follow(run)

    # ------------------------------------------------------------------ quitting
    async def action_request_quit(self) -> None:
        monitor = self.monitor_if_created()
        if monitor is None or not monitor.training:
            self.exit()
            return
        if self._quitting:
            return
        from prunetui.app.screens.modals import ConfirmScreen

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._stop_and_exit(monitor)

        self.push_screen(ConfirmScreen(
            "A run is training in this app. Quit?\nIt checkpoints first; resume it later from "
            "Runs (4) with r.", yes="Checkpoint and quit", no="Stay"), answered)

    async def _stop_and_exit(self, monitor: MonitorScreen) -> None:
        self._quitting = True
        monitor.request_stop()
        self.notify("Writing a checkpoint...")
        while monitor.training:
            await asyncio.sleep(0.1)
        self.exit()

    async def on_unmount(self) -> None:
        monitor = self.monitor_if_created()
        if monitor is not None:
            monitor.request_stop()

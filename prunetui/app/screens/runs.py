"""Runs: every run in the models folder, its status and best results; open, compare, resume,
delete. Rows (results.run_summary_checked, shared with ``prunetui runs``) are computed in a worker
and cached per run until its files change; the status is re-checked on every refresh, so a run
whose process died shows as interrupted.

This is the first screen drawn: it imports Textual and its own widgets only. The run store,
sweeps and the run summaries are imported by the scan worker, which starts after the first
paint; the actions import what they need (on first use, long after the scan).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual.worker import Worker, get_current_worker

from prunetui.app.messages import RunsScanned
from prunetui.app.screens.base import AppScreen
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.screenbar import ScreenBar
from prunetui.app.workerror import unforeseen_error

if TYPE_CHECKING:
    from prunetui import store
    from prunetui.app.app import PruneApp
    from prunetui.app.rundata import RunData

REFRESH_S = 2.0
COLUMNS = ("", "name", "status", "rounds", "dense", "best", "dataset", "schemes")


@functools.cache
def _status_styles() -> dict[str, str]:
    from prunetui import store  # already imported by the scan worker that made the rows

    return {store.RUNNING: "bold green", store.FINISHED: "cyan",
            store.INTERRUPTED: "yellow", store.FAILED: "bold red"}


def _signature(run: store.RunDir) -> tuple:
    from prunetui import store

    return store.files_signature((run.config_path, run.metrics_path, run.status_path))


def _run_dir(key: str) -> store.RunDir:
    from prunetui import store

    return store.RunDir(key)


class RunsScreen(AppScreen):
    HELP = """\
# Runs
Every run in the models folder, newest first; refreshed every two seconds.

| key | does |
| --- | --- |
| `enter` or `o` | open: charts and results table; a run still going is followed in the Monitor |
| `space` | mark the run to compare, then `c` on another run |
| `c` | compare the marked run with this one on the same charts |
| `r` | resume an interrupted run in this app |
| `R` | resume it detached (own process, survives logout) |
| `d` | delete the run folder (asks first) |
| `f` | save a figure (png, svg, pdf) of this run, or of the marked run and this one |
| `s` | size and speed: file size and latency of each round |
| `e` | export a round as a compact model file (asks for round, scheme and format) |
| `t` | try it: an exported model's predictions on a folder of images |
| `g` | refresh now |
"""
    BINDINGS: ClassVar = [
        Binding("o", "open", "Open", show=False),  # enter opens too (the table binds it)
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "resume(False)", "Resume"),
        Binding("R", "resume(True)", "Detached"),
        Binding("d", "delete", "Delete"),
        Binding("f", "figure", "Figure"),
        Binding("g", "refresh", "Refresh", show=False),
        Binding("s", "footprint", "Size"),
        Binding("e", "export", "Export"),
        Binding("t", "try_it", "Try it"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: dict[str, dict[str, str]] = {}
        self.marked: str | None = None
        self._cache: dict[str, tuple[tuple, dict[str, str]]] = {}
        self._folded: dict[str, RunData] = {}  # results read so far, per run (runs_row)

    @property
    def prune_app(self) -> PruneApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ScreenBar("runs")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-details")
        yield StableFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col or "mark")
        self._timer = self.set_interval(REFRESH_S, self.action_refresh, pause=True)
        self.call_after_refresh(self.action_refresh)  # the scan's imports: after the paint

    def on_screen_resume(self) -> None:
        self._timer.resume()
        self.call_after_refresh(self.action_refresh)

    def on_screen_suspend(self) -> None:
        self._timer.pause()

    # ------------------------------------------------------------------ scanning
    def action_refresh(self) -> None:
        self._scan(self.prune_app.models_dir)

    @work(thread=True, exclusive=True, group="runs-scan", exit_on_error=False)
    def _scan(self, models_dir: Path) -> None:
        from prunetui import sweep as sweeps
        from prunetui.app.runlist import list_run_dirs, runs_row

        worker = get_current_worker()
        rows = []
        try:
            runs = sweeps.grouped_runs(models_dir)  # runs, then each sweep and its runs
            # and the run folders that lost their config.toml: listed as damaged, not hidden
            runs += [r for r in list_run_dirs(models_dir) if not r.exists()]
        except (OSError, sweeps.SweepError):
            # a run folder removed while listing: the next refresh has it right
            return
        for run in runs:
            if worker.is_cancelled:
                return
            if isinstance(run, sweeps.SweepDir):  # the sweep's own row: enter compares
                rows.append((str(run.path), sweeps.sweep_summary(run)))
                continue
            key, sig = str(run.path), _signature(run)
            cached = self._cache.get(key)
            if cached and cached[0] == sig:
                summary = dict(cached[1], status=run.read_status().effective_state)
            else:
                # never raises: damage is named in "warning"; a growing run is read from where
                # the last scan stopped
                summary = runs_row(run, self._folded)
                self._cache[key] = (sig, summary)
            if run.path.parent != Path(models_dir):  # a run of a sweep: shown under it
                summary = dict(summary, name=f"{run.path.parent.name}/{run.name}")
            rows.append((key, summary))
        self.post_message(RunsScanned(rows))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "runs-scan")) is not None:
            self.query_one("#run-details", Static).update(f"Cannot list the runs: {message}")

    def on_runs_scanned(self, message: RunsScanned) -> None:
        table = self.query_one(DataTable)
        current = self.current_key()
        self.summaries = dict(message.rows)
        if self.marked not in self.summaries:
            self.marked = None
        table.clear()
        for key, s in message.rows:
            status = Text(s["status"], style=_status_styles().get(s["status"], ""))
            if s.get("warning"):
                status.append(" damaged", style="bold red")
            name = Text(s["name"])
            if s.get("structure"):  # structured pruning: a badge beside the name
                name.append(f" {s['structure']}", style="bold magenta")
            table.add_row("*" if key == self.marked else " ", name, status, s["rounds"],
                          s["dense"], s["best"], s["dataset"], s["schemes"], key=key)
        if current in self.summaries:
            table.move_cursor(row=table.get_row_index(current), animate=False)
        if not message.rows:
            self.query_one("#run-details", Static).update(
                f"No runs in {self.prune_app.models_dir} yet. Set one up in Setup (2).")
        else:
            self._show_details()

    def current_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted)
    def _show_details(self) -> None:
        key = self.current_key()
        s = self.summaries.get(key or "")
        if s is None:
            return
        status = _run_dir(key).read_status()
        note = f" · {status.message}" if status.message else ""
        warning = f"\nwarning: {s['warning']}" if s.get("warning") else ""
        structured = f"structured ({s['structure']}) · " if s.get("structure") else ""
        self.query_one("#run-details", Static).update(
            f"{key}\n{s['status']}{note}\n{s['dataset']} · {structured}{s['schemes']} · rounds "
            f"{s['rounds']} · dense {s['dense']} · best {s['best']}{warning}")

    def _current_run(self) -> store.RunDir | None:
        key = self.current_key()
        if key is None:
            self.notify("No run selected.", severity="warning")
            return None
        from prunetui import sweep as sweeps

        if sweeps.is_sweep(key):
            self.notify("This row is a sweep: enter opens its comparison; its runs are listed "
                        "under it. Resume it with: prunetui sweep SWEEP.toml", severity="warning")
            return None
        return _run_dir(key)

    # ------------------------------------------------------------------ actions
    @on(DataTable.RowSelected)
    async def _selected(self) -> None:
        await self.action_open()

    async def action_open(self) -> None:
        from prunetui import store
        from prunetui import sweep as sweeps

        if sweeps.is_sweep(self.current_key() or ""):
            from prunetui.app.screens.sweeps import SweepScreen

            self.app.push_screen(SweepScreen(sweeps.SweepDir(self.current_key())))
            return
        run = self._current_run()
        if run is None:
            return
        running = run.read_status().effective_state == store.RUNNING
        if running and await self.prune_app.follow(run):
            return
        from prunetui.app.screens.results import ResultsScreen  # plotext: on first use

        self.app.push_screen(ResultsScreen([run]))

    def action_mark(self) -> None:
        key = self.current_key()
        if key is None or self._current_run() is None:  # a sweep's row is not a run
            return
        self.marked = None if self.marked == key else key
        table = self.query_one(DataTable)
        for row_key in self.summaries:
            table.update_cell(row_key, "mark", "*" if row_key == self.marked else " ")
        if self.marked:
            self.notify("Marked; move to another run and press c to compare.")

    def action_compare(self) -> None:
        key = self.current_key()
        if self.marked is None or key is None or key == self.marked:
            self.notify("Mark a run with space, then press c on another run.",
                        severity="warning")
            return
        from prunetui.app.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen([_run_dir(self.marked), _run_dir(key)]))

    def action_figure(self) -> None:
        from prunetui.app.screens.figure import save_figure

        key = self.current_key()
        if key is not None:
            keys = [self.marked, key] if self.marked not in (None, key) else [key]
            save_figure(self, [_run_dir(k) for k in keys])

    def action_footprint(self) -> None:
        from prunetui.app.screens.footprint import FootprintScreen

        run = self._current_run()
        if run is not None:
            self.app.push_screen(FootprintScreen(run))

    def action_export(self) -> None:
        from prunetui.app.screens.footprint import ExportScreen

        run = self._current_run()
        if run is not None:
            self.app.push_screen(ExportScreen(run))

    def action_try_it(self) -> None:
        from prunetui.app.screens.predict import PredictScreen

        run = self._current_run()
        if run is not None:
            self.app.push_screen(PredictScreen(run))

    async def action_resume(self, detached: bool) -> None:
        run = self._current_run()
        if run is not None:
            await self.prune_app.resume(run, detached=detached)

    def action_delete(self) -> None:
        from prunetui import store
        from prunetui.app.screens.modals import ConfirmScreen

        run = self._current_run()
        if run is None:
            return
        if run.read_status().effective_state == store.RUNNING:
            self.notify(f"{run.name} is running; stop it before deleting.", severity="warning")
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                shutil.rmtree(run.path)
            except OSError as err:
                self.notify(f"Cannot delete {run.path}: {err.strerror}", severity="error")
                return
            self._cache.pop(str(run.path), None)
            self._folded.pop(str(run.path), None)
            self.notify(f"Deleted {run.name}")
            self.action_refresh()

        self.app.push_screen(ConfirmScreen(
            f"Delete {run.name}?\nIts folder {run.path} and every checkpoint in it go for good.",
            yes="Delete", no="Keep"), delete)

"""Size and speed of a run's rounds (``prunetui report --size`` in the app), and the export dialog.

Measuring builds every round's export files and times inference, which takes seconds: it runs
in a thread worker (torch imported there, never at app start) that reports progress after each
round and stops between timings when the screen closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, get_current_worker

from prunetui import store
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.workerror import unforeseen_error
from prunetui.sizecolumns import (
    SIZE_FORMATS,
    dense_summary,
    is_unit,
    latency_cells,
    latency_columns,
    size_cells,
    size_columns,
)

if TYPE_CHECKING:
    from prunetui.footprint import Footprint


# The captions above the two tables, by prune.structure (see sizecolumns.py).
CAPTIONS = {
    "weight": ("File size (KiB)", "CPU latency (µs, median per call) at batch 1 and 256"),
    "unit": ("Shrunk network (whole units removed) against the dense one; file KiB",
             "CPU latency (µs, median per call), dense and shrunk; gain = dense / shrunk"),
}


class FootprintScreen(Screen):
    """One row per round of a scheme in two stacked tables that each fit 80 columns: weights
    left, accuracy, compression and file sizes; then CPU latency at batch 1 and 256. A
    unit-pruned run shows its shrunk network against the dense one instead: parameters,
    FLOPs, file size and latency at batch 1 and 256 (sizecolumns.py)."""

    HELP = """\
# Size and speed
File size of each export format and inference latency of every round of one scheme, measured
in a worker (the tables of `prunetui report RUN --size`): sizes first, CPU latency below.

| key | does |
| --- | --- |
| `e` | export a round as a compact model file (asks for round, scheme and format) |
| `escape` or `q` | back to Runs |
"""
    BINDINGS: ClassVar = [
        Binding("escape,q", "close", "Back"),
        Binding("e", "export", "Export"),
    ]

    def __init__(self, run: store.RunDir) -> None:
        super().__init__()
        self.run = run
        self.rows: list[Footprint] = []
        self.scheme = ""
        self.error = ""
        self.structure = self._structure()

    def _structure(self) -> str:
        """The run's ``prune.structure`` ("weight" when its config cannot be read)."""
        try:
            return self.run.config().prune.structure
        except (ValueError, OSError):
            return "weight"

    def compose(self) -> ComposeResult:
        sizes, latency = CAPTIONS["unit" if is_unit(self.structure) else "weight"]
        label = "  structured (units)" if is_unit(self.structure) else ""
        yield Label(f"Size and speed: {self.run.name}{label}", id="footprint-title")
        yield ProgressBar(id="footprint-progress", show_eta=False)
        yield Static("Measuring file sizes and latency, round by round...",
                     id="footprint-status")
        yield Label(sizes, classes="footprint-caption", id="footprint-size-caption")
        yield DataTable(id="footprint-sizes", zebra_stripes=True, cursor_type="row")
        yield Label(latency, classes="footprint-caption", id="footprint-latency-caption")
        yield DataTable(id="footprint-latency", zebra_stripes=True, cursor_type="row")
        yield StableFooter()

    def on_mount(self) -> None:
        self._set_columns()
        self.measure()

    def _set_columns(self) -> None:
        """The tables' columns and captions for the run's structure."""
        for table_id, columns in (
                ("#footprint-sizes", size_columns(self.structure)),
                ("#footprint-latency", ("round", *latency_columns(structure=self.structure)))):
            table = self.query_one(table_id, DataTable)
            table.clear(columns=True)
            for col in columns:
                table.add_column(col, key=col)
        sizes, latency = CAPTIONS["unit" if is_unit(self.structure) else "weight"]
        self.query_one("#footprint-size-caption", Label).update(sizes)
        self.query_one("#footprint-latency-caption", Label).update(latency)

    @work(thread=True, exclusive=True, group="footprint", exit_on_error=False)
    def measure(self) -> None:
        worker = get_current_worker()
        from prunetui.export import ExportError
        from prunetui.footprint import run_footprints

        def progress(done: int, total: int) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._progress, done, total)

        try:
            scheme, rows = run_footprints(self.run, on_progress=progress,
                                          should_stop=lambda: worker.is_cancelled)
        except ExportError as err:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, str(err))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, scheme, rows)

    def _progress(self, done: int, total: int) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "footprint")) is not None:
            self._failed(message)

    def _failed(self, message: str) -> None:
        self.error = message
        self.query_one("#footprint-status", Static).update(f"Cannot measure: {message}")

    def _show(self, scheme: str, rows: list[Footprint]) -> None:
        self.scheme, self.rows = scheme, rows
        if rows and rows[0].structure != self.structure:  # the config changed meanwhile
            self.structure = rows[0].structure
            self._set_columns()
        sizes = self.query_one("#footprint-sizes", DataTable)
        latency = self.query_one("#footprint-latency", DataTable)
        sizes.clear()
        latency.clear()
        for r in rows:
            sizes.add_row(*size_cells(r))
            latency.add_row(str(r.round), *latency_cells(r))
        self.query_one(ProgressBar).display = False
        gpu = any(d == "cuda" for r in rows for d, _, _ in r.latency)
        gpu_note = " GPU timings: prunetui report --size." if gpu else ""
        if is_unit(self.structure):
            dense = dense_summary(rows)
            self.query_one("#footprint-status", Static).update(
                f"Scheme {scheme}, structured: params and FLOPs of the shrunk network; compr., "
                f"speedup = dense / shrunk.{f' {dense}.' if dense else ''}{gpu_note} e exports "
                "a round.")
            return
        self.query_one("#footprint-status", Static).update(
            f"Scheme {scheme}. sparse = scipy CSR (LeNet; LightCNN loads sparse files into "
            f"dense convolutions).{' GPU timings: prunetui report --size.' if gpu else ''} "
            "e exports a round.")

    def action_close(self) -> None:
        self.workers.cancel_group(self, "footprint")
        self.dismiss()

    def action_export(self) -> None:
        self.app.push_screen(ExportScreen(self.run))


class ExportScreen(ModalScreen[str | None]):
    """Asks for the round, scheme and format, then writes the file; returns its path."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run: store.RunDir) -> None:
        super().__init__(classes="modal")
        self.run = run
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export a round of {self.run.name}", classes="question")
            yield Static("Finding finished rounds...", id="export-reason")
            yield Select([], prompt="round and scheme", id="export-segment")
            yield Select([(f, f) for f in SIZE_FORMATS], value="sparse", allow_blank=False,
                         id="export-format")
            yield Input(placeholder="file to write", id="export-path")
            yield ProgressBar(total=None, show_eta=False, id="export-progress")
            with Horizontal(classes="buttons"):
                yield Button("Export", id="export-go", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="export-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self.load_choices()

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def load_choices(self) -> None:
        from prunetui.export import ExportError, choose, finished_segments

        try:
            metrics = self.run.metrics()  # read once for both
            choice = choose(self.run, metrics=metrics)
            segs = finished_segments(self.run, 0, metrics=metrics)
        except ExportError as err:
            self.app.call_from_thread(self._reason, str(err))
            return
        options = [(f"round {s.round} {s.scheme}: {100 * s.remaining:.1f}% left, "
                    f"{100 * s.test_acc:.2f}%", (s.round, s.scheme)) for s in segs]
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._choices, options, (choice.round, choice.scheme),
                                      f"Suggested: round {choice.round} {choice.scheme}, "
                                      f"{choice.reason}.")

    def _reason(self, text: str) -> None:
        self.query_one("#export-reason", Static).update(text)

    def _choices(self, options: list, default: tuple[int, str], reason: str) -> None:
        self._reason(reason)
        select = self.query_one("#export-segment", Select)
        select.set_options(options)
        select.value = default
        self._suggest_path()

    def _suggest_path(self) -> None:
        segment = self.query_one("#export-segment", Select).value
        fmt = self.query_one("#export-format", Select).value
        if isinstance(segment, tuple):
            self.query_one("#export-path", Input).value = \
                f"{self.run.name}-round{segment[0]}-{segment[1].replace(':', '-')}-{fmt}.pt"

    def on_select_changed(self, event: Select.Changed) -> None:
        self._suggest_path()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export-cancel":
            self.action_cancel()
            return
        segment = self.query_one("#export-segment", Select).value
        path = self.query_one("#export-path", Input).value.strip()
        if not isinstance(segment, tuple) or not path:
            self.notify("Choose a round and a file name first.", severity="warning")
            return
        self.query_one(ProgressBar).display = True
        event.button.disabled = True
        self.write(segment, str(self.query_one("#export-format", Select).value), Path(path))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def write(self, segment: tuple[int, str], fmt: str, path: Path) -> None:
        from prunetui.export import Choice, ExportError, export, load_source

        try:
            src = load_source(self.run, Choice(0, segment[0], segment[1], ""))
            exported = export(src, fmt, path)
        except (ExportError, store.StoreError) as err:
            self.app.call_from_thread(self._write_failed, str(err))
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._written, path, exported.message)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "export")) is not None:
            self._reason(f"Cannot export: {message}")
            self._write_failed(message)

    def _write_failed(self, message: str) -> None:
        self.query_one(ProgressBar).display = False
        self.query_one("#export-go", Button).disabled = False
        self.notify(message, severity="error", timeout=10)

    def _written(self, path: Path, message: str) -> None:
        self.written = path
        self.notify(f"Wrote {path}. {message} Load it with prunetui.load_pruned('{path}').",
                    timeout=10)
        self.dismiss(str(path))

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "export")
        self.dismiss(None)

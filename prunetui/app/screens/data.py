"""Data: what is under the dataset root, and face preparation run in a worker.

Listing the root (inventory.scan_root, plus per-person counts of prepared face folders) and
preparing faces (data.prepare.prepare_faces, MTCNN on torch) both happen in worker threads;
the screen stays responsive and a preparation can be stopped between photos.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import (
    Button,
    DataTable,
    DirectoryTree,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker, get_current_worker

from prunetui.app.messages import PrepareEnded, PrepareEvent
from prunetui.app.screens.base import AppScreen
from prunetui.app.widgets.folders import FolderTree
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.screenbar import ScreenBar
from prunetui.app.workerror import unforeseen_error
from prunetui.events import Log, PrepareFinished, PrepareProgress, PrepareStarted

STATUS_STYLE = {"present": "green", "prepared": "green", "missing": "bold yellow"}


class DatasetsScanned(Message):
    def __init__(self, root: str, entries: list, people: dict[str, list[tuple[str, int]]],
                 error: str = "") -> None:
        super().__init__()
        self.root, self.entries, self.people, self.error = root, entries, people, error


class DataScreen(AppScreen):
    HELP = """\
# Data
**Datasets** lists what is under the dataset root: MNIST and Fashion-MNIST (present, or missing
with exactly how to get them) and prepared face folders (people, images, split).

**Prepare faces** turns a folder of photos, one sub-folder per person, into 144x144 gray face
crops (MTCNN) that the `faces` dataset reads. It can be stopped and started again: photos done
before are kept. Skipped files and their reasons are listed at the end.

| key | does |
| --- | --- |
| `s` / `f` | show the Datasets / Prepare faces tab |
| `ctrl+r` | scan the dataset root again |
| `ctrl+g` | start preparing faces |
| `ctrl+x` | stop the preparation (after the current photos) |
| `enter` in the folder tree | use that folder as the source (and name a destination) |
| `d` in the folder tree | use that folder as the destination |
| `backspace` in the folder tree | go to the parent folder |
"""
    BINDINGS: ClassVar = [
        Binding("s", "tab('tab-datasets')", "Datasets"),
        Binding("f", "tab('tab-prepare')", "Faces"),
        Binding("ctrl+r", "rescan", "Rescan", priority=True),
        Binding("ctrl+g", "start_prepare", "Prepare", priority=True),
        Binding("ctrl+x", "stop_prepare", "Stop", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list = []
        self.people: dict[str, list[tuple[str, int]]] = {}
        self.prep_stop = threading.Event()
        self.prep_done = threading.Event()
        self.prep_done.set()
        self.report: dict | None = None

    @property
    def data_root(self) -> str:
        return str(getattr(self.app, "data_root", "data"))

    def compose(self) -> ComposeResult:
        yield ScreenBar("data")
        with TabbedContent(id="data-tabs"):
            with TabPane("Datasets", id="tab-datasets"):
                with Horizontal(classes="field-line"):
                    yield Label("Dataset root", classes="field-label")
                    yield Input(self.data_root, id="data-root", compact=True,
                                select_on_focus=False)
                yield DataTable(id="datasets", cursor_type="row")
                yield Static("", id="dataset-details")
            with TabPane("Prepare faces", id="tab-prepare"):
                with Horizontal(id="prepare-top"):
                    with Vertical(id="prepare-form"):
                        yield from self._prepare_form()
                    with Vertical(id="prepare-browse"):
                        yield Label("enter: source · d: destination · backspace: up",
                                    classes="hint")
                        yield FolderTree(Path.cwd(), id="prep-tree")
                yield DataTable(id="prep-skipped", cursor_type="row")
        yield StableFooter()

    def _prepare_form(self) -> ComposeResult:
        yield Label("Photos in SRC/<person>/<photo> become 144x144 face crops in "
                    "DST/<person>/.", classes="hint wrap")
        with Horizontal(classes="field-line"):
            yield Label("Source", classes="short-label")
            yield Input(id="prep-src", compact=True, placeholder="~/photos/lfw",
                        select_on_focus=False)
        with Horizontal(classes="field-line"):
            yield Label("Destination", classes="short-label")
            yield Input(id="prep-dst", compact=True, placeholder=f"{self.data_root}/faces",
                        select_on_focus=False)
        with Horizontal(classes="field-line"):
            yield Label("Faces", classes="short-label")
            yield Select((("largest per photo", "largest"), ("all found", "all")),
                         value="largest", allow_blank=False, compact=True, id="prep-faces")
        with Horizontal(classes="buttons"):
            yield Button("Start ^g", id="prep-start", variant="success", compact=True)
            yield Button("Stop ^x", id="prep-stop", variant="error", compact=True,
                         disabled=True)
        yield ProgressBar(total=1, show_eta=True, id="prep-bar")
        yield Static("", id="prep-status")

    def on_mount(self) -> None:
        table = self.query_one("#datasets", DataTable)
        table.add_columns("dataset", "status", "details")
        skipped = self.query_one("#prep-skipped", DataTable)
        skipped.add_columns("skipped file", "reason")
        skipped.display = False
        table.focus()
        self.action_rescan()

    def on_unmount(self) -> None:
        self.prep_stop.set()

    # ------------------------------------------------------------------ datasets
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one("#prep-src" if tab == "tab-prepare" else "#datasets").focus()

    def action_rescan(self) -> None:
        root = self.query_one("#data-root", Input).value.strip() or self.data_root
        self._scan(root)

    @on(Input.Submitted, "#data-root")
    def _root_submitted(self) -> None:
        self.action_rescan()

    @work(thread=True, exclusive=True, group="data-scan", exit_on_error=False)
    def _scan(self, root: str) -> None:
        from prunetui.data.inventory import scan_root

        try:
            entries = scan_root(root)
            people = {}
            if any(e.kind == "faces" for e in entries):
                from prunetui.data.prepare import describe_prepared

                people = {e.path: describe_prepared(e.path) for e in entries if e.kind == "faces"}
            self.post_message(DatasetsScanned(root, entries, people))
        except OSError as err:
            self.post_message(DatasetsScanned(root, [], {}, f"Cannot read {root}: {err}"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "data-scan")) is not None:
            self.post_message(DatasetsScanned(self.data_root, [], {},
                                              f"Cannot scan the datasets: {message}"))

    def on_datasets_scanned(self, message: DatasetsScanned) -> None:
        self.entries, self.people = message.entries, message.people
        table = self.query_one("#datasets", DataTable)
        table.clear()
        for i, e in enumerate(message.entries):
            style = STATUS_STYLE.get(e.status, "")
            short = e.details if len(e.details) < 60 else e.details[:57] + "..."
            table.add_row(e.name, f"[{style}]{e.status}[/]" if style else e.status, short,
                          key=str(i))
        if message.error:
            self.query_one("#dataset-details", Static).update(message.error)
        else:
            self._details()

    @on(DataTable.RowHighlighted, "#datasets")
    def _details(self) -> None:
        table = self.query_one("#datasets", DataTable)
        if not self.entries or table.row_count == 0:
            return
        e = self.entries[min(table.cursor_row, len(self.entries) - 1)]
        text = f"{e.name} ({e.status}) in {e.path}\n{e.details}"
        people = self.people.get(e.path)
        if people:
            text += "\n" + ", ".join(f"{name} {n}" for name, n in people)
        self.query_one("#dataset-details", Static).update(text)

    # ------------------------------------------------------------------ choosing folders
    @on(Input.Submitted, "#prep-src")
    @on(Input.Submitted, "#prep-dst")
    def _path_submitted(self, event: Input.Submitted) -> None:
        self.query_one(FolderTree).show(event.value.strip())

    @on(DirectoryTree.DirectorySelected)
    def _source_picked(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#prep-src", Input).value = str(event.path)
        dst = self.query_one("#prep-dst", Input)
        if not dst.value.strip():
            dst.value = str(Path(self.data_root) / event.path.name)

    @on(FolderTree.DestinationChosen)
    def _destination_picked(self, event: FolderTree.DestinationChosen) -> None:
        self.query_one("#prep-dst", Input).value = str(event.path)

    # ------------------------------------------------------------------ preparing faces
    @on(Button.Pressed, "#prep-start")
    def _start_pressed(self) -> None:
        self.action_start_prepare()

    @on(Button.Pressed, "#prep-stop")
    def _stop_pressed(self) -> None:
        self.action_stop_prepare()

    @property
    def preparing(self) -> bool:
        return not self.prep_done.is_set()

    def action_start_prepare(self) -> None:
        if self.preparing:
            self.notify("A preparation is already running.", severity="warning")
            return
        src = self.query_one("#prep-src", Input).value.strip()
        dst = self.query_one("#prep-dst", Input).value.strip()
        if not src or not dst:
            self.query_one(TabbedContent).active = "tab-prepare"
            self.query_one("#prep-src" if not src else "#prep-dst", Input).focus()
            self.notify("Choose a source and a destination folder first.", severity="warning")
            return
        faces = str(self.query_one("#prep-faces", Select).value)
        self.query_one(TabbedContent).active = "tab-prepare"
        self.prep_stop.clear()
        self.prep_done.clear()
        self.report = None
        self.query_one("#prep-skipped", DataTable).display = False
        self.query_one("#prep-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#prep-status", Static).update("Loading the face detector...")
        self._set_running(True)
        self._prepare(src, dst, faces)

    def action_stop_prepare(self) -> None:
        if not self.preparing:
            self.notify("No preparation is running.", severity="warning")
            return
        self.prep_stop.set()
        self.query_one("#prep-status", Static).update("Stopping after the current photos...")

    def _set_running(self, running: bool) -> None:
        self.query_one("#prep-start", Button).disabled = running
        stop = self.query_one("#prep-stop", Button)
        stop.disabled = not running
        if running:
            # Out of the text fields: there ctrl+x means "cut", not "stop".
            stop.focus()

    @work(thread=True, exclusive=True, group="prepare", exit_on_error=False)
    def _prepare(self, src: str, dst: str, faces: str) -> None:
        worker = get_current_worker()
        ended = PrepareEnded(None, "stopped")
        try:
            from prunetui.data.prepare import prepare_faces  # torch, off the event loop

            report = prepare_faces(
                src, dst, faces=faces,
                on_event=lambda event: self.post_message(PrepareEvent(event)),
                should_stop=lambda: self.prep_stop.is_set() or worker.is_cancelled)
            ended = PrepareEnded(report.to_dict())
        except Exception as err:  # PrepareError / StoreError carry a message for the user
            ended = PrepareEnded(None, str(err) or type(err).__name__)
        finally:
            # Done before the UI hears of the end, so a new start from that moment is accepted.
            self.prep_done.set()
            self.post_message(ended)

    def on_prepare_event(self, message: PrepareEvent) -> None:
        ev = message.event
        bar = self.query_one("#prep-bar", ProgressBar)
        status = self.query_one("#prep-status", Static)
        if isinstance(ev, PrepareStarted):
            bar.update(total=max(1, ev.total), progress=0)
            status.update(f"{ev.total} photos of {ev.people} people")
        elif isinstance(ev, PrepareProgress):
            bar.update(total=max(1, ev.total), progress=ev.done)
            note = f" (skipped: {ev.skipped_reason})" if ev.skipped_reason else ""
            status.update(f"{ev.done}/{ev.total} {ev.person}/{ev.file}: "
                          f"{ev.faces_saved} faces saved{note}")
        elif isinstance(ev, Log):
            status.update(ev.message)
        elif isinstance(ev, PrepareFinished):
            bar.update(total=max(1, ev.photos), progress=ev.photos if not ev.cancelled else
                       bar.progress)

    def on_prepare_ended(self, message: PrepareEnded) -> None:
        self._set_running(False)
        status = self.query_one("#prep-status", Static)
        if message.report is None:
            self.query_one("#prep-bar", ProgressBar).update(total=1, progress=0)
            status.update(f"[b red]Failed:[/] {message.error}")
            self.notify(message.error, severity="error", timeout=10)
            return
        self.report = r = message.report
        totals = r["totals"]
        stopped = (f" Stopped with {totals['pending']} photos left: start again to continue."
                   if r["run"]["cancelled"] else "")
        status.update(f"{totals['faces_saved']} faces from {totals['photos']} photos into "
                      f"{r['dst']}, {totals['skipped']} skipped.{stopped}")
        skipped = self.query_one("#prep-skipped", DataTable)
        skipped.clear()
        reasons = r.get("reasons", {})
        for s in r["skipped"]:
            skipped.add_row(s["path"], s.get("message") or reasons.get(s["reason"], s["reason"]))
        skipped.display = bool(r["skipped"])
        self.action_rescan()

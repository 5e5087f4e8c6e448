"""'Try it' (``t`` on Runs): an exported model's predictions on a folder of images.

A dialog asks for a model file (left blank: the run's suggested round, exported in memory) and
a folder, then runs :func:`prunetui.predict.predict_images` in a thread worker (torch and the
face detector are imported there) with a progress bar, and shows a table of file, top name and
probability, with the accuracy when the folder's subfolders name the model's classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, DirectoryTree, Input, Label, ProgressBar, Static
from textual.worker import Worker, get_current_worker

from prunetui import store
from prunetui.app.widgets.folders import FolderTree
from prunetui.app.workerror import unforeseen_error

if TYPE_CHECKING:
    from prunetui.export import PrunedModel
    from prunetui.predict import Prediction

ROWS_SHOWN = 2000  # table rows; the accuracy line counts every image


class PredictScreen(ModalScreen[None]):
    """Pick a model and a folder; the predictions table fills in when the worker ends."""

    BINDINGS: ClassVar = [Binding("escape", "close", "Close")]

    def __init__(self, run: store.RunDir) -> None:
        super().__init__(classes="modal")
        self.run = run
        self.result: Prediction | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="predict-dialog"):
            yield Label(f"Try {self.run.name} on a folder of images", classes="question")
            yield Input(placeholder="exported model file (blank: export the suggested round)",
                        id="predict-model", compact=True)
            yield Input(placeholder="folder of images (or pick one below, enter)",
                        id="predict-folder", compact=True)
            yield FolderTree(Path.cwd(), id="predict-tree")
            with Horizontal(classes="buttons"):
                yield Button("Predict", id="predict-go", variant="primary", compact=True)
                yield Button("Close (esc)", id="predict-close", compact=True)
            yield ProgressBar(id="predict-progress", show_eta=False)
            yield Static("", id="predict-status")
            yield DataTable(id="predict-table", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        table = self.query_one(DataTable)
        for col in ("file", "face", "name", "probability", "label"):
            table.add_column(col, key=col)

    @on(DirectoryTree.DirectorySelected)
    def _folder_picked(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#predict-folder", Input).value = str(event.path)

    @on(FolderTree.DestinationChosen)
    def _folder_chosen(self, event: FolderTree.DestinationChosen) -> None:
        self.query_one("#predict-folder", Input).value = str(event.path)

    @on(Input.Submitted, "#predict-folder")
    def _folder_typed(self, event: Input.Submitted) -> None:
        self.query_one(FolderTree).show(event.value.strip())

    @on(Button.Pressed, "#predict-close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Button.Pressed, "#predict-go")
    def _go_pressed(self) -> None:
        folder = self.query_one("#predict-folder", Input).value.strip()
        if not folder or not Path(folder).expanduser().is_dir():
            self.notify("Pick a folder of images first.", severity="warning")
            return
        self.query_one("#predict-go", Button).disabled = True
        self.error = ""
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one(DataTable).clear()
        self._status("Loading the model...")
        self.predict(self.query_one("#predict-model", Input).value.strip(),
                     Path(folder).expanduser())

    @work(thread=True, exclusive=True, group="predict", exit_on_error=False)
    def predict(self, model_path: str, folder: Path) -> None:
        worker = get_current_worker()
        from prunetui.data.prepare import PrepareError
        from prunetui.export import ExportError
        from prunetui.predict import predict_images

        def progress(done: int, total: int, name: str) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._progress, done, total, name)

        try:
            model = self._load(model_path)
            if not worker.is_cancelled:
                self.app.call_from_thread(self._status, f"Predicting {folder}...")
            result = predict_images(model, [folder], top=1, on_progress=progress,
                                    should_stop=lambda: worker.is_cancelled)
        except (ExportError, PrepareError, store.StoreError, OSError) as err:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, str(err))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, result, model.meta.get("test_acc"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "predict")) is not None:
            self._failed(message)

    def _load(self, model_path: str) -> PrunedModel:
        """The file given, or the run's suggested round exported in memory."""
        from prunetui.export import (
            build_export,
            choose,
            load_pruned,
            load_source,
            model_from,
            read_bytes,
        )

        if model_path:
            return load_pruned(Path(model_path).expanduser())
        exported = build_export(load_source(self.run, choose(self.run)), "sparse")
        return model_from(*read_bytes(exported.data))

    def _status(self, text: str) -> None:
        self.query_one("#predict-status", Static).update(text)

    def _progress(self, done: int, total: int, name: str) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        self._status(f"{done}/{total} {name}")

    def _failed(self, message: str) -> None:
        self.error = message
        self.query_one(ProgressBar).display = False
        self.query_one("#predict-go", Button).disabled = False
        self._status(f"Cannot predict: {message}")

    def _show(self, result: Prediction, test_acc: float | None) -> None:
        self.result = result
        self.query_one(ProgressBar).display = False
        self.query_one("#predict-go", Button).disabled = False
        table = self.query_one(DataTable)
        rows = [(r, i, face) for r in result.images for i, face in enumerate(r.faces)]
        for r, i, face in rows[:ROWS_SHOWN]:
            name, p = face.top[0]
            table.add_row(r.name, "" if face.box is None else str(i + 1), name,
                          f"{100 * p:.1f}%", r.label or "")
        lines = [result.problem] if result.problem else []
        lines.append(f"{len(result.images)} images, {result.faces} predictions"
                     f"{f', {len(result.skipped)} skipped' if result.skipped else ''}"
                     f"{f' (first {ROWS_SHOWN} shown)' if len(rows) > ROWS_SHOWN else ''}.")
        accuracy = result.accuracy()
        if accuracy is not None:
            lines.append(f"Accuracy {100 * accuracy.value:.2f}% ({accuracy.correct} of "
                         f"{accuracy.total} labelled)"
                         + (f"; the run's test set: {100 * test_acc:.2f}%."
                            if isinstance(test_acc, (int, float)) else "."))
        lines += [f"skipped {s.path}: {s.reason}" for s in result.skipped[:3]]
        self._status("\n".join(lines))

    def action_close(self) -> None:
        self.workers.cancel_group(self, "predict")
        self.dismiss(None)

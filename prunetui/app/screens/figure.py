"""Save a run's (or a comparison's) figure from the Runs screen: the same matplotlib figure as
``prunetui report RUN --figure FILE``, drawn in a worker thread (prunetui[figures])."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label

from prunetui import extras, store

FIGURES_DIR = "figures"


def default_path(runs: Sequence[store.RunDir]) -> Path:
    return Path(FIGURES_DIR) / ("-vs-".join(r.name for r in runs) + ".png")


class SaveFigureScreen(ModalScreen[Path | None]):
    """Asks where to save; the suffix picks the format."""

    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(classes="modal")
        self.what, self.path = what, path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Save the figure of {self.what} (.png, .svg or .pdf); enter saves, "
                        "escape cancels:", classes="question")
            yield Input(str(self.path), id="figure-path", compact=True)
            yield Label("", id="figure-error", classes="field-error")

    @on(Input.Submitted, "#figure-path")
    def _submitted(self, event: Input.Submitted) -> None:
        from prunetui.figures import FigureError, check_path

        text = event.value.strip()
        try:
            path = check_path(Path(text).expanduser()) if text else None
        except FigureError as err:
            self.query_one("#figure-error", Label).update(f"↳ {err}")
            return
        if path is None:
            self.query_one("#figure-error", Label).update("↳ type a file name")
            return
        self.dismiss(path)


def save_figure(screen: Screen, runs: Sequence[store.RunDir]) -> None:
    """Ask for a path, then draw ``runs`` on one figure there without blocking the UI."""
    if not extras.available("figures"):
        try:
            extras.require("figures", "Saving figures")
        except extras.MissingExtra as err:
            screen.notify(str(err), severity="error", timeout=10)
        return
    runs = list(runs)
    what = " and ".join(r.name for r in runs)

    def draw(path: Path) -> None:
        from prunetui.figures import FigureError, save_run_figure

        try:
            save_run_figure([r.path for r in runs], path)
        except (FigureError, store.StoreError, extras.MissingExtra) as err:
            screen.app.call_from_thread(screen.notify, str(err), severity="error")
            return
        screen.app.call_from_thread(screen.notify, f"Saved {path}")

    def chosen(path: Path | None) -> None:
        if path is not None:
            screen.run_worker(lambda: draw(path), thread=True, group="figure",
                              exit_on_error=False)

    screen.app.push_screen(SaveFigureScreen(what, default_path(runs)), chosen)

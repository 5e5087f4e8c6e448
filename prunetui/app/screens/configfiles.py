"""Modals to pick a config to load (presets, saved configs, earlier runs) or a path to save to."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from prunetui import presets, store

SAVED_DIR = "configs"
RECENT_RUNS = 10


def config_choices(models_dir: str | Path) -> list[tuple[str, Path]]:
    """(label, path) of every config the user may want: presets, saved, recent runs."""
    choices: list[tuple[str, Path]] = []
    # The presets shipped in the package (run configs only: sweeps go to prunetui sweep).
    choices += [(f"preset  {p.name} · {p.description}", p.path)
                for p in presets.list_presets(presets.RUN)]
    saved = Path.cwd() / SAVED_DIR
    if saved.is_dir():
        choices += [(f"saved   {p.name}", p) for p in sorted(saved.glob("*.toml"))]
    for run in store.list_runs(models_dir)[:RECENT_RUNS]:
        choices.append((f"run     {run.name}", run.config_path))
    return choices


class LoadConfigScreen(ModalScreen[Path | None]):
    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, models_dir: str | Path) -> None:
        super().__init__(classes="modal")
        self.choices = config_choices(models_dir)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Load a config: pick one (enter), or type a TOML path (enter).")
            yield OptionList(*(Option(label, id=str(i)) for i, (label, _) in
                               enumerate(self.choices)), id="config-list")
            yield Input(placeholder="path/to/config.toml", id="config-path", compact=True)
            yield Label("", id="config-error", classes="field-error")

    def on_mount(self) -> None:
        if not self.choices:
            self.query_one("#config-path", Input).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)][1])

    @on(Input.Submitted, "#config-path")
    def _typed(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if not path.is_file():
            self.query_one("#config-error", Label).update(f"↳ {path} is not a file")
            return
        self.dismiss(path)


class SaveConfigScreen(ModalScreen[Path | None]):
    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Save the settings as TOML (enter to save, escape to cancel):")
            yield Input(f"{SAVED_DIR}/experiment.toml", id="save-path", compact=True)
            yield Label("", id="save-error", classes="field-error")

    def on_mount(self) -> None:
        self.add_class("modal")

    @on(Input.Submitted, "#save-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#save-error", Label).update("↳ type a file name")
            return
        path = Path(text).expanduser()
        if path.suffix != ".toml":
            path = path.with_suffix(path.suffix + ".toml")
        self.dismiss(path)

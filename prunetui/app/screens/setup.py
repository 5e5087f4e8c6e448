"""Setup: a form for every experiment setting, checked by the engine as you type.

Each field shows the engine's reason when its value cannot be used, and Launch stays blocked
until there is none. Configs load from presets, saved files or earlier runs and save as TOML.
The form opens on the config last launched from this models folder, else the ``quick`` preset.
Below it, the launch estimate (:class:`EstimateLine`) follows the settings; a launch estimated
at over an hour asks first and offers a detached launch.
"""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from prunetui import config, estimate, presets, store
from prunetui.app import formspec
from prunetui.app.formspec import FIELDS, Values
from prunetui.app.screens.base import AppScreen
from prunetui.app.screens.configfiles import LoadConfigScreen, SaveConfigScreen
from prunetui.app.screens.modals import LongLaunchScreen
from prunetui.app.widgets.estimateline import LONG_RUN_S, EstimateLine
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.form import FieldRow
from prunetui.app.widgets.screenbar import ScreenBar

if TYPE_CHECKING:
    from prunetui.app.app import PruneApp

LAST_CONFIG = ".last-config.toml"  # in the models folder: the config last launched from Setup


class SetupScreen(AppScreen):
    HELP = """\
# Setup
Every setting of an experiment. Values are checked by the same rules as `prunetui run`; a value
that cannot be used shows the reason under its field and blocks Launch.

| key | does |
| --- | --- |
| `ctrl+l` | launch in this app: a worker thread that ends with the app (resume from Runs) |
| `ctrl+t` | launch detached: its own process, survives logout; the Monitor follows it |
| `ctrl+o` | load a preset, a saved config or an earlier run's config |
| `ctrl+s` | save the current settings as TOML |
| `tab` / `shift+tab` | next / previous field; `enter` or `space` opens a list, toggles a scheme |

Below the form: how long the run should take here, from a few real training steps of this
network (cached per device and network). A launch estimated at over an hour asks first and
offers a detached launch. Setup opens on the last config launched, else the `quick` preset.
"""
    BINDINGS: ClassVar = [
        Binding("ctrl+l", "launch(False)", "Launch", priority=True),
        Binding("ctrl+t", "launch(True)", "Detached", priority=True),
        Binding("ctrl+o", "load", "Load", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cfg: config.Config | None = None
        self.errors: dict[str, str] = {}
        self._rows: dict[str, FieldRow] = {}
        self._check_pending = False
        self._launching = False

    @property
    def prune_app(self) -> PruneApp:
        return self.app  # type: ignore[return-value]

    def defaults(self) -> config.Config:
        root = str(getattr(self.app, "data_root", "data"))
        return config.Config(data=config.DataConfig(root=root))

    def last_config_path(self) -> Path:
        return Path(getattr(self.app, "models_dir", "models")) / LAST_CONFIG

    def initial(self) -> config.Config:
        """The config last launched from Setup, else the quick preset: never hours of work
        (``defaults()``, the paper's full scale, only fills what a loaded file leaves out)."""
        with contextlib.suppress(OSError, ValueError):  # missing, unreadable or invalid
            return config.load(self.last_config_path())
        root = str(getattr(self.app, "data_root", "data"))
        quick = config.load(presets.resolve("quick", presets.RUN))
        return config.apply_overrides(quick, [("data.root", root)], source="quick")

    def compose(self) -> ComposeResult:
        yield ScreenBar("setup")
        values = formspec.values_from_config(self.initial())
        with VerticalScroll(id="form", can_focus=False):
            section = ""
            for field in FIELDS:
                if field.section != section:
                    section = field.section
                    yield Static(section, classes="form-section")
                yield FieldRow(field, values.get(field.key))
        yield Static("", id="setup-summary")
        yield EstimateLine(id="setup-estimate")
        with Horizontal(id="launch-bar"):
            yield Input(placeholder="run name (blank: generated)", id="run-name", compact=True)
            yield Button("Launch ^l", id="launch", variant="success", compact=True)
            yield Button("Detached ^t", id="launch-detached", variant="primary", compact=True)
        yield StableFooter()

    def on_mount(self) -> None:
        self.validate_form()

    # ------------------------------------------------------------------ values
    def rows(self) -> dict[str, FieldRow]:
        if not self._rows:
            self._rows = {row.field.key: row for row in self.query(FieldRow)}
        return self._rows

    def values(self) -> Values:
        return {key: row.value for key, row in self.rows().items()}

    def fill(self, values: Values) -> None:
        for key, row in self.rows().items():
            if key in values:
                row.set_value(values[key])
        self.validate_soon()

    def validate_form(self) -> config.Config | None:
        values = self.values()
        self.cfg, self.errors = formspec.check(values, self.defaults())
        for key, row in self.rows().items():
            field = row.field
            visible = field.visible is None or field.visible(values)
            if row.display != visible:
                row.display = visible
            row.set_error(self.errors.get(key))
        summary = self.query_one("#setup-summary", Static)
        if self.cfg is not None:
            summary.update(formspec.summary(self.cfg))
            summary.remove_class("-error")
        else:
            hidden = [k for k in self.errors if k not in self.rows() or not self.rows()[k].display]
            extra = "; ".join(f"{k}: {self.errors[k]}" for k in hidden)
            n = len(self.errors)
            summary.update(f"{n} setting{'s' if n > 1 else ''} to fix before launching"
                           + (f" ({extra})" if extra else ""))
            summary.add_class("-error")
        self.query_one(EstimateLine).follow(self.cfg)
        for button in self.query("#launch-bar Button").results(Button):
            button.disabled = self.cfg is None
        return self.cfg

    def validate_soon(self) -> None:
        """Validate once after a burst of changes (a load changes every field at once)."""
        if not self._check_pending:
            self._check_pending = True
            self.call_after_refresh(self._validate_pending)

    def _validate_pending(self) -> None:
        self._check_pending = False
        self.validate_form()

    @on(Input.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self, event: Any) -> None:
        if getattr(event, "input", None) is None or event.input.id != "run-name":
            self.validate_soon()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "f-data-dataset":  # keep the model consistent with the dataset
            faces = event.value == "faces"
            arch = self.query_one("#f-model-arch", Input)
            if faces and arch.value != "lightcnn-9":
                arch.value = "lightcnn-9"
            elif not faces and arch.value == "lightcnn-9":
                arch.value = "lenet-300-100"
            self._suggest_root(faces)
        self.validate_soon()

    def _suggest_root(self, faces: bool) -> None:
        """Faces read a prepared folder (prepare's DST), MNIST the dataset root itself."""
        row = self.rows()["data.root"]
        row.query_one(".field-label", Label).update(
            "Prepared faces folder" if faces else row.field.label)
        root_input = row.widget
        assert isinstance(root_input, Input)
        data_root = str(getattr(self.app, "data_root", "data"))
        if faces and root_input.value.strip() in ("", data_root):
            from prunetui.data.inventory import scan_root

            prepared = [e.path for e in scan_root(data_root) if e.kind == "faces"]
            if prepared:
                root_input.value = prepared[0]

    # ------------------------------------------------------------------ launch
    @on(Button.Pressed, "#launch")
    async def _launch_pressed(self) -> None:
        await self.action_launch(False)

    @on(Button.Pressed, "#launch-detached")
    async def _detached_pressed(self) -> None:
        await self.action_launch(True)

    async def action_launch(self, detached: bool) -> None:
        cfg = self.validate_form()
        if cfg is None:
            first = next(iter(self.errors))
            self.notify(f"Cannot launch: {first}: {self.errors[first]}", severity="error")
            row = self.rows().get(first)
            if row is not None and row.display:
                row.widget.focus()
            return
        name = self.query_one("#run-name", Input).value.strip() or None
        try:
            if name:
                store.check_run_name(name)
        except store.StoreError as err:
            self.notify(str(err), severity="error")
            self.query_one("#run-name", Input).focus()
            return
        if self._launching:
            return
        self._launching = True
        try:
            found = await self.query_one(EstimateLine).estimate_of(cfg)
        finally:
            self._launching = False
        if found is None or found.seconds <= LONG_RUN_S:
            await self._launch(cfg, name, detached)
            return

        async def answered(choice: str | None) -> None:
            if choice is not None:
                await self._launch(cfg, name, choice == "detached")

        self.app.push_screen(LongLaunchScreen(
            f"This run is estimated at {estimate.format_duration(found.seconds)} on "
            f"{found.device}.\nA run launched here ends with the app; a detached one survives "
            "logout."), answered)

    async def _launch(self, cfg: config.Config, name: str | None, detached: bool) -> None:
        with contextlib.suppress(OSError, store.StoreError):  # Setup's next start opens on it
            self.last_config_path().parent.mkdir(parents=True, exist_ok=True)
            config.save(cfg, self.last_config_path())
        await self.prune_app.launch(cfg, name=name, detached=detached)

    # ------------------------------------------------------------------ load / save
    def action_load(self) -> None:
        self.app.push_screen(LoadConfigScreen(self.prune_app.models_dir), self._loaded)

    def _loaded(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            self.notify(f"Cannot load {path}: {err}", severity="error")
            return
        values, unknown = formspec.values_from_raw(raw, formspec.values_from_config(
            self.defaults()))
        self.fill(values)
        note = f"; ignored unknown keys: {', '.join(unknown)}" if unknown else ""
        self.notify(f"Loaded {path}{note}", severity="warning" if unknown else "information")

    def action_save(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.notify("Fix the invalid settings before saving.", severity="error")
            return

        def save(path: Path | None) -> None:
            if path is None:
                return
            try:
                config.save(cfg, path)
            except store.StoreError as err:
                self.notify(str(err), severity="error")
                return
            self.notify(f"Saved {path}")

        self.app.push_screen(SaveConfigScreen(), save)

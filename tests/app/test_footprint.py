"""Runs screen: the size-and-speed view of a run and the export dialog."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual import constants
from textual.widgets import DataTable

from prunetui import export, footprint, store
from prunetui.app.app import PruneApp
from prunetui.app.screens.footprint import ExportScreen, FootprintScreen
from prunetui.app.screens.runs import RunsScreen
from prunetui.sizecolumns import SIZE_COLUMNS, latency_columns
from tests.app.conftest import (
    SIZE,
    click_button,
    finished_run,
    listed,
    tiny_config,
    unforeseen,
    wait_for,
)


async def test_size_view_and_export_dialog(models, mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = finished_run(models, mnist_root)
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, run)

        await pilot.press("s")  # size and speed, measured in a worker
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 5, "the view")
        view = app.screen
        await wait_for(pilot, lambda: len(view.rows) == 2 or view.error, 120, "measurements")
        assert not view.error
        assert view.query_one("#footprint-sizes").row_count == 2
        assert view.query_one("#footprint-latency").row_count == 2
        assert [r.round for r in view.rows] == [0, 1]
        assert view.rows[1].sizes["sparse"] < view.rows[0].sizes["sparse"]
        assert view.query_one("#footprint-progress").progress == 2

        await pilot.press("e")  # export from here: the dialog suggests the default choice
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), 5, "the dialog")
        dialog = app.screen
        choice = export.choose(run)
        segment = dialog.query_one("#export-segment")
        await wait_for(pilot, lambda: segment.value == (choice.round, choice.scheme), 30,
                       "the suggested round")
        assert "0.5 points" in str(dialog.query_one("#export-reason").render())
        dialog.query_one("#export-format").value = "shrunk"
        await pilot.pause()
        path = dialog.query_one("#export-path").value
        assert path.endswith("-shrunk.pt")
        await click_button(pilot, "#export-go")
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 60, "the file")
        model = export.load_pruned(tmp_path / path)
        assert (model.meta["round"], model.meta["scheme"], model.meta["format"]) == \
            (choice.round, choice.scheme, "shrunk")

        await pilot.press("escape")  # back to Runs; a second view closed at once cancels
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "Runs")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 5, "the view")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "Runs")


def wide_rows() -> list[footprint.Footprint]:
    """Twelve rounds with cells as wide as a LightCNN-9 run makes them (MiB files, seconds)."""
    backends = ("dense", "scipy-csr", "shrunk")
    return [footprint.Footprint(
        round=r, scheme="rewind", remaining=0.8 ** r, test_acc=0.9876, compression=1.25 ** r,
        speedup=1.2 ** r, sizes={"sparse": 21_000_000, "dense": 21_000_000, "shrunk": None},
        latency={("cpu", b, n): 1.234567 * n / 256 for b in backends for n in (1, 256)})
        for r in range(12)]


def screen_text(app) -> str:
    """The screen as plain text, as a terminal without colour shows it."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(),
                      force_terminal=True, color_system=None, record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


@pytest.mark.parametrize("colors", ["256", "none"])
async def test_size_view_fits_80x24_without_colour(colors, models, tmp_path, monkeypatch):
    """Both tables fit 80 columns (no horizontal scrolling, every column shown), in a
    256-colour terminal and with NO_COLOR."""
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "256" if colors == "256" else "standard")
    if colors == "none":
        monkeypatch.setenv("NO_COLOR", "1")
    run = store.new_run(tiny_config(tmp_path), models, "wide")
    rows = wide_rows()
    monkeypatch.setattr(footprint, "run_footprints", lambda *a, **k: ("rewind", rows))
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color == (colors == "none")
        await app.push_screen(FootprintScreen(run))
        view = app.screen
        await wait_for(pilot, lambda: len(view.rows) == len(rows) or view.error, 10, "rows")
        await pilot.pause()
        sizes = view.query_one("#footprint-sizes", DataTable)
        latency = view.query_one("#footprint-latency", DataTable)
        assert [str(c.label) for c in sizes.ordered_columns] == list(SIZE_COLUMNS)
        assert [str(c.label) for c in latency.ordered_columns] == ["round", *latency_columns()]
        for table in (sizes, latency):
            assert table.row_count == len(rows)
            assert table.region.right <= 80
            assert table.virtual_size.width <= table.scrollable_content_region.width, table.id
            assert not table.show_horizontal_scrollbar, table.id
            assert table.size.height >= 3  # a header and rows, scrolled vertically
        text = screen_text(app)
        for label in (*SIZE_COLUMNS, *latency_columns()):
            assert label in text, label
        assert "20,507.8" in text and "1,234,567" in text  # the widest cells, unclipped


async def test_unforeseen_errors_end_the_size_view_and_export_waits(models, mnist_root, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = finished_run(models, mnist_root)
    monkeypatch.setattr("prunetui.footprint.run_footprints", unforeseen)
    monkeypatch.setattr("prunetui.export.export", unforeseen)
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, run)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 5, "the view")
        view = app.screen
        await wait_for(pilot, lambda: bool(view.error), 60, "the error")
        assert view.error == "RuntimeError: the kernel said no"

        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), 5, "the dialog")
        dialog = app.screen
        await wait_for(pilot, lambda: isinstance(dialog.query_one("#export-segment").value,
                                                 tuple), 30, "the suggested round")
        await click_button(pilot, "#export-go")
        reason = dialog.query_one("#export-reason")
        await wait_for(pilot, lambda: "Cannot export" in str(reason.render()), 30, "the error")
        assert "RuntimeError: the kernel said no" in str(reason.render())
        assert not dialog.query_one("#export-go").disabled
        assert app.screen is dialog  # still open: nothing was written

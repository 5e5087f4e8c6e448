"""Unit-pruned runs (``prune.structure = "unit"``) in the app: labelled as structured in the
Runs list, and their size view (the shrunk network against the dense one) fits 80x24."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from prunetui import footprint, store
from prunetui.app.app import PruneApp
from prunetui.app.screens.footprint import FootprintScreen
from prunetui.app.screens.runs import RunsScreen
from prunetui.sizecolumns import UNIT_SIZE_COLUMNS, latency_columns
from tests.app.conftest import tiny_config, wait_for
from tests.app.test_footprint import screen_text

UNIT = {"prune.structure": "unit", "prune.schemes": ["keep"], "prune.rate": 0.5}


def fits(table: DataTable, width: int = 80) -> None:
    assert table.region.right <= width, table.id
    assert table.virtual_size.width <= table.scrollable_content_region.width, table.id
    assert not table.show_horizontal_scrollbar, table.id
    assert table.size.height >= 3, table.id


async def test_a_unit_run_is_labelled_and_its_size_view_fits_80x24(models, mnist_root):
    from prunetui.experiment import Experiment

    weight = store.new_run(tiny_config(mnist_root, **{"prune.schemes": ["keep"]}), models, "w")
    unit = store.new_run(tiny_config(mnist_root, **UNIT), models, "u")
    assert Experiment(unit).execute() == store.FINISHED
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: len(runs.summaries) == 2, 10, "the list")
        assert runs.summaries[str(unit.path)]["structure"] == "units"
        assert runs.summaries[str(weight.path)]["structure"] == ""
        table = runs.query_one(DataTable)
        names = {key.value: str(table.get_row(key)[1]) for key in table.rows}
        assert names == {str(unit.path): "u units", str(weight.path): "w"}
        table.move_cursor(row=table.get_row_index(str(unit.path)), animate=False)
        await pilot.pause()
        details = str(runs.query_one("#run-details", Static).render())
        assert "structured (units)" in details
        # shown as a badge beside the name (the table lays its columns out on a later frame)
        await wait_for(pilot, lambda: "u units" in screen_text(app), 5, "the label on screen")

        await pilot.press("s")  # the size view, measured in a worker
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 5, "the view")
        view = app.screen
        await wait_for(pilot, lambda: len(view.rows) == 2 or view.error, 60, "measurements")
        assert not view.error and view.structure == "unit"
        assert [r.structure for r in view.rows] == ["unit", "unit"]
        assert view.rows[1].shrunk.params < view.rows[0].shrunk.params
        sizes = view.query_one("#footprint-sizes", DataTable)
        latency = view.query_one("#footprint-latency", DataTable)
        assert [str(c.label) for c in sizes.ordered_columns] == list(UNIT_SIZE_COLUMNS)
        assert [str(c.label) for c in latency.ordered_columns] == \
            ["round", *latency_columns(structure="unit")]
        assert sizes.row_count == latency.row_count == 2
        await pilot.pause()
        for t in (sizes, latency):
            fits(t)
        text = screen_text(app)
        assert "structured (units)" in text and "266.6k" in text  # round 0: the dense LeNet
        assert "Dense network: 266,610 parameters" in text


def wide_unit_rows() -> list[footprint.Footprint]:
    """Twelve rounds with cells as wide as a full-width LightCNN-9 or ResNet-18 gives."""
    latency = {("cpu", b, n): s for b, s in (("dense", 2.345678), ("shrunk", 1.234567))
               for n in (1, 256)}
    return [footprint.Footprint(
        round=r, scheme="keep", remaining=0.8 ** r, test_acc=0.9876, compression=1.25 ** r,
        speedup=1.5 ** r, sizes={"dense": 45_000_000, "shrunk": 22_500_000}, latency=latency,
        structure="unit",
        shrunk=footprint.ShrunkCounts(11_689_512, 5_900_000, 1_823_000_000, 467_000_000))
        for r in range(12)]


async def test_the_unit_size_view_fits_80x24_with_wide_cells(models, tmp_path, monkeypatch):
    run = store.new_run(tiny_config(tmp_path, **UNIT), models, "wide")
    rows = wide_unit_rows()
    monkeypatch.setattr(footprint, "run_footprints", lambda *a, **k: ("keep", rows))
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(FootprintScreen(run))
        view = app.screen
        await wait_for(pilot, lambda: len(view.rows) == len(rows) or view.error, 10, "rows")
        await pilot.pause()
        for table_id in ("#footprint-sizes", "#footprint-latency"):
            table = view.query_one(table_id, DataTable)
            assert table.row_count == len(rows)
            fits(table)
        text = screen_text(app)
        for label in (*UNIT_SIZE_COLUMNS, *latency_columns(structure="unit")):
            assert label in text, label
        for cell in ("5.9M", "467M", "21,972.7", "2,345,678", "1,234,567", "1.90x"):
            assert cell in text, cell

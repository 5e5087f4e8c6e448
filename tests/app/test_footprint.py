"""Runs screen: the size-and-speed view of a run and the export dialog."""

from __future__ import annotations

from prunetui import export, store
from prunetui.app.app import PruneApp
from prunetui.app.screens.footprint import ExportScreen, FootprintScreen
from prunetui.app.screens.runs import RunsScreen
from tests.app.conftest import SIZE, tiny_config, wait_for


def finished_run(models, root) -> store.RunDir:
    from prunetui.experiment import Experiment
    from prunetui.store import new_run

    run = new_run(tiny_config(root), models, "done")
    assert Experiment(run).execute() == store.FINISHED
    return run


async def test_size_view_and_export_dialog(models, mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = finished_run(models, mnist_root)
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: list(runs.summaries) == [str(run.path)], 10, "the list")

        await pilot.press("s")  # size and speed, measured in a worker
        await wait_for(pilot, lambda: isinstance(app.screen, FootprintScreen), 5, "the view")
        view = app.screen
        await wait_for(pilot, lambda: len(view.rows) == 2 or view.error, 120, "measurements")
        assert not view.error
        table = view.query_one("#footprint-table")
        assert table.row_count == 2
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
        await pilot.click("#export-go")
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

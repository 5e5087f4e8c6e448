"""Runs: list, resume an interrupted run with one key, open, compare, delete after asking."""

from __future__ import annotations

import os

from prunetui import store
from prunetui.app.app import PruneApp
from prunetui.app.screens.modals import ConfirmScreen
from prunetui.app.screens.monitor import MonitorScreen
from prunetui.app.screens.results import ResultsScreen
from prunetui.app.screens.runs import RunsScreen
from prunetui.app.widgets.charts import LotteryChart
from prunetui.events import Checkpointed
from tests.app.conftest import SIZE, tiny_config, unforeseen, wait_for


def interrupted_run(models, root, name: str) -> store.RunDir:
    """A tiny run stopped at its first checkpoint (end of epoch 1 of the dense round)."""
    from prunetui.control import RunControl
    from prunetui.experiment import Experiment
    from prunetui.store import new_run

    run = new_run(tiny_config(root), models, name)
    control = RunControl()

    def on_event(event) -> None:
        if isinstance(event, Checkpointed):
            control.request_stop()

    assert Experiment(run, on_event, control).execute() == store.INTERRUPTED
    return run


def table_keys(screen: RunsScreen) -> list[str]:
    return list(screen.summaries)


async def move_to(pilot, screen: RunsScreen, run: store.RunDir) -> None:
    """Move the table's cursor to ``run`` with the arrow keys."""
    target = table_keys(screen).index(str(run.path))
    current = screen.query_one("#runs-table").cursor_row
    await pilot.press(*(["down"] * (target - current) or ["up"] * (current - target)))
    await pilot.pause()
    assert screen.current_key() == str(run.path)


async def test_runs_lists_resumes_opens_compares_and_deletes(models, mnist_root):
    first = interrupted_run(models, mnist_root, "first")
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: table_keys(runs) == [str(first.path)], 10, "the list")
        assert runs.summaries[str(first.path)]["status"] == store.INTERRUPTED

        await pilot.press("r")  # one key resumes it, in this app
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the Monitor")
        monitor = app.screen
        await wait_for(pilot, lambda: not monitor.training, 60, "the resumed run to end")
        assert first.read_status().state == store.FINISHED
        # 4 trainings (dense, then keep / reinit / rewind) of 2 evaluations each
        await wait_for(pilot, lambda: monitor.data.evaluations == 8, 5, "every evaluation")

        second = interrupted_run(models, mnist_root, "second")
        await pilot.press("4")
        await pilot.press("g")
        await wait_for(pilot, lambda: len(table_keys(runs)) == 2, 10, "two runs")
        assert runs.summaries[str(first.path)]["status"] == store.FINISHED
        assert runs.summaries[str(first.path)]["rounds"] == "1/1"

        # Open the finished run: charts and table from its store.
        await move_to(pilot, runs, first)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), 5, "results")
        results = app.screen
        assert set(results.data[0].lottery_curves()) == {"keep", "reinit", "rewind"}
        assert results.query_one("#results-table").row_count == 4
        await pilot.press("escape")

        # Compare: mark one with space, c on the other.
        await move_to(pilot, runs, first)
        await pilot.press("space")
        await move_to(pilot, runs, second)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), 5, "compare")
        compare = app.screen
        assert len(compare.data) == 2
        assert len(compare.query_one(LotteryChart).runs) == 2
        await pilot.press("escape")

        # Delete asks first; "n" keeps it, "y" deletes it.
        await move_to(pilot, runs, second)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.press("n")
        assert second.path.exists()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: not second.path.exists(), 5, "the deletion")
        await wait_for(pilot, lambda: table_keys(runs) == [str(first.path)], 10, "the list")


async def test_resume_detached_runs_in_its_own_process_and_is_followed(models, mnist_root):
    run = interrupted_run(models, mnist_root, "detached")
    app = PruneApp(models_dir=models, data_root=mnist_root, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: table_keys(runs) == [str(run.path)], 10, "the list")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the Monitor")
        monitor = app.screen
        assert not monitor.training  # nothing trains in this process
        pid = run.read_status().pid
        assert pid != os.getpid() and pid in monitor.spawned
        await wait_for(pilot, lambda: monitor.data.state == store.FINISHED, 90,
                       "the detached run to finish")
        await wait_for(pilot, lambda: monitor.data.evaluations == 8, 5, "every evaluation")
    assert (run.path / "run.log").read_text().strip()


async def test_a_listing_that_fails_unforeseen_says_so_on_runs_and_data(tmp_path, monkeypatch):
    monkeypatch.setattr("prunetui.sweep.grouped_runs", unforeseen)
    monkeypatch.setattr("prunetui.data.inventory.scan_root", unforeseen)
    app = PruneApp(models_dir=tmp_path / "models", data_root=tmp_path, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        details = app.screen.query_one("#run-details")
        await wait_for(pilot, lambda: "Cannot list the runs: RuntimeError: the kernel said no"
                       in str(details.render()), 30, "the error on Runs")
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.id != "runs" and bool(
            app.screen.query("#dataset-details")), 10, "Data")
        data_details = app.screen.query_one("#dataset-details")
        await wait_for(pilot, lambda: "Cannot scan the datasets: RuntimeError" in
                       str(data_details.render()), 30, "the error on Data")

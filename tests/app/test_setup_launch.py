"""Setup -> Monitor by keys only: load a config, change a value, launch, watch points arrive."""

from __future__ import annotations

import pytest

from prunetui import config, store
from prunetui.app.app import PruneApp
from prunetui.app.screens.monitor import MonitorScreen
from prunetui.app.screens.setup import SetupScreen
from prunetui.app.widgets.charts import Chart
from prunetui.app.widgets.form import FieldRow
from tests.app.conftest import SIZE, focus_by_tab, type_text, wait_for


@pytest.fixture(autouse=True)
def calibration_cache(tmp_path, monkeypatch):
    """Setup measures launch estimates; their calibrations go to a temporary cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


async def load_config_by_keys(pilot) -> None:
    """ctrl+o lists presets, then ./configs/*.toml (the tiny config), then recent runs."""
    await pilot.press("ctrl+o")
    await pilot.pause()
    options = pilot.app.screen.query_one("#config-list")
    index = next(i for i in range(options.option_count)
                 if "tiny.toml" in str(options.get_option_at_index(i).prompt))
    await pilot.press("home", *["down"] * index, "enter")
    await pilot.pause(0.2)


async def set_field(pilot, widget_id: str, text: str) -> None:
    await focus_by_tab(pilot, widget_id)
    await pilot.press("end", "ctrl+u")
    await type_text(pilot, text)
    await pilot.pause()


async def test_launch_from_setup_by_keys_and_monitor_receives_points(tiny_toml, models,
                                                                     mnist_root):
    app = PruneApp(models_dir=models, data_root=mnist_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        await load_config_by_keys(pilot)
        assert setup.values()["train.iterations"] == "20"
        await set_field(pilot, "f-train-eval-every", "5")
        assert setup.cfg is not None and setup.cfg.train.eval_every == 5
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the Monitor")
        monitor = app.screen
        runs = store.list_runs(models)
        assert len(runs) == 1 and runs[0].config().train.eval_every == 5
        await wait_for(pilot, lambda: monitor.data is not None and monitor.data.evaluations > 0,
                       60, "the first evaluation")
        assert monitor.training or monitor.data.state == store.FINISHED
        await wait_for(pilot, lambda: not monitor.training, 60, "the run to end")
        await wait_for(pilot, lambda: monitor.data.state == store.FINISHED
                       and monitor.data.evaluations == 4 * 4, 10, "the last store poll")
        data = monitor.data
        # 4 trainings (dense, then keep / reinit / rewind) of 4 evaluations each (every 5 it.)
        assert data.state == store.FINISHED
        assert data.evaluations == 4 * 4
        assert monitor.live.per_epoch == 10  # events: RunStarted reached the screen
        assert set(data.lottery_curves()) == {"keep", "reinit", "rewind"}
        assert all(chart.builds > 0 for chart in monitor.query(Chart))
        log_text = "\n".join(monitor.query_one("#run-log").lines)
        assert "round 1 rewind finished" in log_text and "run finished" in log_text
        assert (runs[0].path / "metrics.jsonl").stat().st_size > 0


async def test_invalid_value_is_shown_on_its_field_and_blocks_launch(tiny_toml, models,
                                                                     mnist_root):
    app = PruneApp(models_dir=models, data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        setup = app.screen
        await load_config_by_keys(pilot)
        await set_field(pilot, "f-prune-rate", "1.5")
        row = setup.query_one("#row-f-prune-rate", FieldRow)
        assert row.has_class("-error")
        assert "must be" in str(row.query_one(".field-error").render())
        assert setup.query_one("#launch").disabled
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        assert not models.exists() or not any(models.iterdir())
        # A value the engine rejects in combination: rewind:K beyond the iterations.
        await set_field(pilot, "f-prune-rate", "0.2")
        await set_field(pilot, "f-prune-late-rewind", "500")
        assert "rewind:K" in setup.errors["prune.late_rewind"]
        await set_field(pilot, "f-prune-late-rewind", "5")
        assert setup.errors == {} and setup.cfg.prune.schemes[-1] == "rewind:5"
        assert not setup.query_one("#launch").disabled
        # Save it (ctrl+s, enter keeps the proposed ./configs/experiment.toml), load it back.
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        saved = tiny_toml.parent / "experiment.toml"
        assert config.load(saved) == setup.cfg

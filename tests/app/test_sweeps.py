"""Runs screen: a sweep is a group (its row, then its runs); enter opens its comparison."""

from __future__ import annotations

import json
from pathlib import Path

from prunetui import config, store
from prunetui import sweep as sweeps
from prunetui.app.app import PruneApp
from prunetui.app.screens.runs import RunsScreen
from prunetui.app.screens.sweeps import MeansChart, SweepScreen
from prunetui.app.widgets.charts import scheme_marker
from tests.app.conftest import SIZE, wait_for

# Test accuracy at early stop per (dataset, seed) and round; one scheme, one round of pruning.
ACC = {("mnist", 0): (0.90, 0.92), ("mnist", 1): (0.80, 0.84),
       ("fashion-mnist", 0): (0.70, 0.60), ("fashion-mnist", 1): (0.72, 0.66)}


def finished_sweep(tmp_path: Path, models: Path, schemes: tuple[str, ...] = ("rewind",)
                   ) -> sweeps.SweepDir:
    """A sweep of four finished runs whose metrics are written by hand (no training)."""
    base = config.apply_overrides(config.Config(), [("prune.rounds", 1),
                                                    ("prune.schemes", list(schemes))])
    (tmp_path / "base.toml").write_text(config.dumps(base))
    path = tmp_path / "study.toml"
    path.write_text('base = "base.toml"\n[grid]\ndata.dataset = ["mnist", "fashion-mnist"]\n'
                    "train.seed = [0, 1]\n")
    spec = sweeps.load_spec(path)
    sweep = sweeps.prepare(spec, sweeps.expand(spec), models)
    for run in sweep.runs():
        cfg = run.config()
        dense, pruned = ACC[(cfg.data.dataset, cfg.train.seed)]
        rows = [{"replicate": 0, "round": r, "scheme": s, "epoch": 1.0, "iteration": 100,
                 "remaining": left, "train_loss": 0.1, "val_loss": 0.2, "val_acc": acc,
                 "test_acc": acc, "elapsed_s": 1.0}
                for r, s, left, acc in ((0, "dense", 1.0, dense),
                                        *((1, scheme, 0.8, pruned) for scheme in schemes))]
        run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        run.write_status(store.FINISHED)
    return sweep


async def test_a_sweep_is_a_group_and_opens_its_comparison(tmp_path, models):
    sweep = finished_sweep(tmp_path, models)
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: len(runs.summaries) == 5, 10, "the sweep and its runs")
        keys = list(runs.summaries)
        assert keys[0] == str(sweep.path)  # the group row first, then its runs
        assert [runs.summaries[k]["name"] for k in keys[1:]] == [
            f"study/{r.name}" for r in sweep.runs()]
        assert runs.summaries[keys[0]]["rounds"] == "4/4 done"

        await pilot.press("r")  # not a run: nothing to resume, says so
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5, "the sweep")
        screen = app.screen
        await wait_for(pilot, lambda: screen.rows is not None, 10, "its comparison")
        table = screen.query_one("#sweep-table")
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        # mean ± the 95% t-interval over the two seeds (t = 12.706 with one degree of
        # freedom: 85±63.53 is 12.706 x 7.07 / sqrt 2), then the min–max range, in percent
        assert cells == [["mnist", "0", "100.0", "85.00±63.53", "80.0–90.0", "2"],
                         ["", "1", "80.0", "88.00±50.82", "84.0–92.0", "2"],
                         ["fashion-mnist", "0", "100.0", "71.00±12.71", "70.0–72.0", "2"],
                         ["", "1", "80.0", "63.00±38.12", "60.0–66.0", "2"]]
        chart = screen.query_one(MeansChart)
        await wait_for(pilot, lambda: chart.builds > 0, 5, "the chart")
        assert {r.setting for r in chart.rows} == {"mnist", "fashion-mnist"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "Runs again")


async def test_sweep_chart_tells_schemes_apart_by_marker(tmp_path, models, monkeypatch):
    """One setting, three schemes: three markers (those of the run charts), so the lines stay
    apart in a terminal without colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    rows = [sweeps.ComparisonRow(setting="mnist", scheme=scheme, round=r, remaining=0.8 ** r,
                                 mean=acc - 0.01 * r * k, std=0.01, seeds=2)
            for k, (scheme, acc) in enumerate((("keep", 0.97), ("reinit", 0.95),
                                               ("rewind", 0.98)))
            for r in range(4)]
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        chart = MeansChart()
        await app.screen.mount(chart)
        chart.show_rows(rows)
        await pilot.pause(0.2)
        text = chart.render().plain  # the plot as characters, colours dropped
        markers = {s: scheme_marker(s) for s in ("keep", "reinit", "rewind")}
        assert len(set(markers.values())) == 3
        for scheme, marker in markers.items():  # legend: "oo mnist keep", "xx mnist reinit", ...
            assert f"{marker}{marker} mnist {scheme}" in text, scheme
            assert 3 * marker in text, scheme  # and the line itself is drawn with it


async def test_three_schemes_fit_80_columns_with_each_range_under_its_mean(tmp_path, models):
    finished_sweep(tmp_path, models, ("keep", "reinit", "rewind"))
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(runs.summaries) == 5, 10, "the sweep and its runs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5, "the sweep")
        screen = app.screen
        await wait_for(pilot, lambda: screen.rows is not None, 10, "its comparison")
        table = screen.query_one("#sweep-table")
        await pilot.pause(0.1)
        assert [str(c.label) for c in table.columns.values()] == [
            "setting", "round", "left %", "keep", "reinit", "rewind", "n"]
        assert str(table.get_row_at(0)[3]) == "85.00±63.53\n80.0–90.0"
        assert table.virtual_size.width <= table.size.width  # nothing scrolls sideways
        await pilot.resize_terminal(160, 30)  # wide enough again: a column per range
        await pilot.pause(0.2)
        assert "keep range" in [str(c.label) for c in table.columns.values()]

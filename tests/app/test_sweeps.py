"""Runs screen: a sweep is a group (its row, then its runs); enter opens its comparison."""

from __future__ import annotations

import json
from pathlib import Path

from prunetui import config, store
from prunetui import sweep as sweeps
from prunetui.app.app import PruneApp
from prunetui.app.screens.runs import RunsScreen
from prunetui.app.screens.sweeps import MeansChart, SweepScreen
from tests.app.conftest import SIZE, wait_for

# Test accuracy at early stop per (dataset, seed) and round; one scheme, one round of pruning.
ACC = {("mnist", 0): (0.90, 0.92), ("mnist", 1): (0.80, 0.84),
       ("fashion-mnist", 0): (0.70, 0.60), ("fashion-mnist", 1): (0.72, 0.66)}


def finished_sweep(tmp_path: Path, models: Path) -> sweeps.SweepDir:
    """A sweep of four finished runs whose metrics are written by hand (no training)."""
    base = config.apply_overrides(config.Config(), [("prune.rounds", 1),
                                                    ("prune.schemes", ["rewind"])])
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
                for r, s, left, acc in ((0, "dense", 1.0, dense), (1, "rewind", 0.8, pruned))]
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
        # mean ± sample std over the two seeds, in percent
        assert cells == [["mnist", "0", "100.0", "85.00±7.07", "2"],
                         ["", "1", "80.0", "88.00±5.66", "2"],
                         ["fashion-mnist", "0", "100.0", "71.00±1.41", "2"],
                         ["", "1", "80.0", "63.00±4.24", "2"]]
        chart = screen.query_one(MeansChart)
        await wait_for(pilot, lambda: chart.builds > 0, 5, "the chart")
        assert {r.setting for r in chart.rows} == {"mnist", "fashion-mnist"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "Runs again")

"""Runs screen: `f` saves the matplotlib figure; charts tell schemes apart by marker too."""

from __future__ import annotations

from prunetui import figures
from prunetui.app.app import PruneApp
from prunetui.app.rundata import RunData
from prunetui.app.screens.figure import SaveFigureScreen
from prunetui.app.screens.runs import RunsScreen
from prunetui.app.widgets.charts import SCHEME_MARKERS, LotteryChart, scheme_marker
from prunetui.config import NAMED_SCHEMES
from tests.app.conftest import SIZE, wait_for
from tests.test_figures import fake_run


async def test_f_saves_the_figure_of_the_run_or_of_the_marked_pair(models, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = fake_run(models, "first"), fake_run(models, "second", shift=0.01)
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: len(runs.summaries) == 2, 10, "the list")
        key = runs.current_key()
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveFigureScreen), 5, "the dialog")
        name = first.name if key == str(first.path) else second.name
        assert app.screen.query_one("#figure-path").value == f"figures/{name}.png"
        await pilot.press("ctrl+u", *"bad.gif", "enter")  # a format matplotlib is not asked for
        await pilot.pause()
        assert isinstance(app.screen, SaveFigureScreen)
        assert ".png" in str(app.screen.query_one("#figure-error").render())
        await pilot.press("ctrl+u", *"out/one.svg", "enter")
        await wait_for(pilot, lambda: (tmp_path / "out" / "one.svg").exists(), 30, "the file")
        assert (tmp_path / "out" / "one.svg").read_bytes().startswith(b"<?xml")

        await pilot.press("space", "down", "f")  # marked + current: one figure of both
        await wait_for(pilot, lambda: isinstance(app.screen, SaveFigureScreen), 5, "the dialog")
        assert "-vs-" in app.screen.query_one("#figure-path").value
        await pilot.press("enter")
        await wait_for(pilot, lambda: next((tmp_path / "figures").glob("*-vs-*.png"), None)
                       is not None, 30, "the comparison figure")
        both = next((tmp_path / "figures").glob("*-vs-*.png"))
        assert both.read_bytes().startswith(b"\x89PNG")


def test_schemes_and_compared_runs_get_distinct_markers():
    every = ("dense", *NAMED_SCHEMES, "rewind:500", "lr-rewind:500")
    for run_index in (0, 1):
        markers = [scheme_marker(s, run_index, every) for s in every]
        assert len(set(markers)) == len(markers)
    assert not set(SCHEME_MARKERS[0].values()) & set(SCHEME_MARKERS[1].values())
    figure_markers = [figures.scheme_marker(s) for s in ("dense", *NAMED_SCHEMES)]
    assert len(set(figure_markers)) == len(figure_markers)


def test_late_rewinds_drawn_together_get_distinct_markers():
    # One rule for every chart: rewind:K schemes take the extra markers in order of K among
    # the schemes drawn together (by a fixed hash, rewind:500 and rewind:1000 collided).
    schemes = ("rewind:1000", "rewind", "rewind:100", "rewind:500", "rewind:2000")
    for run_index in (0, 1):
        late = [scheme_marker(s, run_index, schemes) for s in schemes if s != "rewind"]
        assert len(set(late)) == 4
        assert not set(late) & set(SCHEME_MARKERS[run_index].values())
        assert [scheme_marker(s, run_index, reversed(schemes)) for s in schemes if ":" in s] \
            == late  # the order they are listed in does not matter


async def test_lottery_chart_draws_each_scheme_with_its_marker(models, tmp_path):
    run = fake_run(models, "one")
    data = RunData(run)
    assert data.poll()
    app = PruneApp(models_dir=models, data_root=tmp_path, start="runs")
    async with app.run_test(size=SIZE) as pilot:
        chart = LotteryChart()
        await app.screen.mount(chart)
        chart.show([data])
        await pilot.pause(0.2)
        text = chart.render().plain  # the plot as characters, colours dropped
        for scheme in ("keep", "reinit", "rewind"):  # legend: "oo keep", "xx reinit", ...
            marker = scheme_marker(scheme)
            assert f"{marker}{marker} {scheme}" in text, scheme
            assert 5 * marker in text  # and the line itself is drawn with it

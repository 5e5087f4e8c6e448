"""A sweep's comparison: per setting, over seeds, the test accuracy's mean ± 95% t-interval and
min–max at each level of weights left (the table of ``prunetui report models/<sweep>``) and a
chart of the means.
Read from the sweep's run directories in a worker, again every few seconds while runs train.
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, get_current_worker

from prunetui import results
from prunetui import sweep as sweeps
from prunetui.app.screens.base import toggle_zoom
from prunetui.app.widgets.charts import Chart, scheme_marker, y_limits
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.screenbar import ScreenBar
from prunetui.app.workerror import unforeseen_error

POLL_S = 2.0
# Named ANSI colours (they survive 256-colour terminals), one per setting in order.
SETTING_COLORS = ("cyan+", "yellow+", "magenta+", "green+", "blue+", "red+", "white", "orange")


class MeansChart(Chart):
    """Mean test accuracy at early stop vs % weights left: one line per setting and scheme
    (marker = scheme, as on every chart, so lines stay apart without colour; colour = setting,
    which the legend also names)."""

    EMPTY = "sweep: no round yet"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[sweeps.ComparisonRow] = []

    def show_rows(self, rows: list[sweeps.ComparisonRow]) -> None:
        self.rows = rows
        self.show([])  # throttled repaint

    def draw(self, most: int) -> bool:
        plt, rows = self.plt, self.rows
        if not rows:
            return False
        settings = list(dict.fromkeys(r.setting for r in rows))
        schemes = {r.scheme for r in rows}
        for label, points in sweeps.comparison_curves(rows).items():
            color = SETTING_COLORS[settings.index(points[0].setting) % len(SETTING_COLORS)]
            plt.plot([results.pruning_axis(p.remaining) for p in points],
                     [100 * p.mean for p in points], label=label, color=color,
                     marker=scheme_marker(points[0].scheme, among=schemes))
        ticks, labels = results.percent_ticks((r.remaining for r in rows),
                                              most=max(2, self.size.width // 8))
        plt.xticks(ticks, labels)
        pad = max(0.05, (max(ticks) - min(ticks)) * 0.05)
        plt.xlim(min(ticks) - pad, max(ticks) + pad)
        plt.ylim(*y_limits([100 * r.mean for r in rows]))
        plt.title("Mean test % at early stop vs % weights left")
        return True


class SweepScreen(Screen):
    HELP = """\
# Sweep
Every setting of the sweep (the values it varies, seeds aside): the test accuracy at the
early-stop iteration over the setting's seeds (the mean ± its 95% t-interval, and the min–max
range) at each level of weights left; and
the chart of those means (marker: scheme, as on the run charts; colour: setting). Resume or
extend a sweep with `prunetui sweep SWEEP.toml`; its runs are listed under it on the Runs
screen.

| key | does |
| --- | --- |
| `z` | zoom the focused chart or table (again to restore) |
| `escape` or `backspace` | back to Runs |
"""
    DEFAULT_CSS = """
    SweepScreen #sweep-body { height: 1fr; }
    SweepScreen #sweep-chart { height: 1fr; min-height: 10; }
    SweepScreen #sweep-table { height: 1fr; }
    SweepScreen #sweep-title { height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("z", "zoom", "Zoom"),
    ]

    def __init__(self, sweep: sweeps.SweepDir) -> None:
        super().__init__()
        self.sweep = sweep
        self.rows: list[sweeps.ComparisonRow] | None = None
        self.signature: tuple = ()
        self.counts = ""

    def compose(self) -> ComposeResult:
        yield ScreenBar("runs", f"› sweep {self.sweep.name}")
        yield Static(f"{self.sweep.name}: reading its runs…", id="sweep-title")
        with Vertical(id="sweep-body"):
            yield MeansChart(id="sweep-chart")
            yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = self.sweep.name
        self._load()
        self.set_interval(POLL_S, self._load)

    @work(thread=True, exclusive=True, group="sweep-load", exit_on_error=False)
    def _load(self) -> None:
        try:
            # Every run's metrics are read again only when a file changed; states are re-checked
            # each time (a run whose process died changes no file).
            signature = sweeps.sweep_signature(self.sweep)
            rows = self.rows
            if rows is None or signature != self.signature:
                rows, self.signature = sweeps.comparison(self.sweep), signature
            states = sweeps.run_states(self.sweep)
        except (sweeps.SweepError, OSError, ValueError, KeyError) as err:
            self.app.call_from_thread(self._failed, str(err))
            return
        if get_current_worker().is_cancelled:
            return
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
        self.app.call_from_thread(self._show, rows, counts)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (message := unforeseen_error(event, "sweep-load")) is not None:
            self._failed(message)

    def _failed(self, message: str) -> None:
        self.query_one("#sweep-title", Static).update(f"{self.sweep.name}: {message}")

    def _show(self, rows: list[sweeps.ComparisonRow], counts: str) -> None:
        if rows == self.rows and counts == self.counts:
            return
        self.rows, self.counts = rows, counts
        self.query_one("#sweep-title", Static).update(
            f"{self.sweep.path} · {counts} · test % at early stop, mean ±95% CI over seeds (n)")
        self.query_one(MeansChart).show_rows(rows)
        self._fill_table()

    def on_resize(self) -> None:
        self._fill_table()

    def _fill_table(self) -> None:
        """The comparison; where it is wider than the screen (three schemes at 80 columns),
        each range goes under its mean, so nothing scrolls sideways."""
        if self.rows is None:
            return
        table = self.query_one(DataTable)
        header, body = sweeps.comparison_table(self.rows)
        height = 1
        if sweeps.table_width(header, body) > self.size.width - 2:  # the table's border
            header, body, height = *sweeps.ranges_below(header, body), 2
        table.clear(columns=True)
        table.add_columns(*header)
        previous = None
        for cells in body:
            table.add_row(cells[0] if cells[0] != previous else "", *cells[1:], height=height)
            previous = cells[0]

    def action_zoom(self) -> None:
        toggle_zoom(self, (Chart, DataTable), self.query_one(MeansChart))


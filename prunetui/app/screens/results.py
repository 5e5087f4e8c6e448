"""Results of one run, or two compared, drawn from their run stores with the Monitor's charts.

A long run is read in a worker (runreader): the screen opens at once, says it is reading, and
draws when the read is in; damaged lines are named in a warning and skipped.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import DataTable, Static

from prunetui import results, store
from prunetui.app import runreader
from prunetui.app.damage import describe_problems
from prunetui.app.rundata import RunData
from prunetui.app.screens.base import toggle_zoom
from prunetui.app.widgets.charts import AccuracyChart, Chart, LayersChart, LotteryChart
from prunetui.app.widgets.footer import StableFooter
from prunetui.app.widgets.screenbar import ScreenBar

POLL_S = 1.0


class ResultsScreen(Screen):
    HELP = """\
# Run results
The charts and results table of a run (or of two runs, A and B, compared on the same charts).
"test %" is the test accuracy at the early-stop iteration (lowest validation loss).

| key | does |
| --- | --- |
| `[` / `]` | previous / next round in the accuracy and layer charts |
| `z` | zoom the focused chart (again to restore) |
| `escape` or `backspace` | back to Runs |
"""
    BINDINGS: ClassVar = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("left_square_bracket", "round(-1)", "Prev round"),
        Binding("right_square_bracket", "round(1)", "Next round"),
        Binding("z", "zoom", "Zoom"),
    ]

    def __init__(self, runs: list[store.RunDir]) -> None:
        super().__init__()
        self.data = [RunData(r) for r in runs]
        self.round: int | None = None

    def compose(self) -> ComposeResult:
        yield ScreenBar("runs", "› results")
        yield Static("", id="results-title")
        with Grid(id="results-grid"):
            yield AccuracyChart(id="chart-accuracy")
            yield LotteryChart(id="chart-lottery")
            yield LayersChart(id="chart-layers")
            yield DataTable(id="results-table", cursor_type="row", zebra_stripes=True)
        yield StableFooter()

    def on_mount(self) -> None:
        for d in self.data:
            runreader.poll(self, d)
        self._loaded()
        self.set_interval(POLL_S, self._poll)

    def on_unmount(self) -> None:
        runreader.cancel_reads(self)

    def on_run_read(self, message: runreader.RunRead) -> None:
        if message.data not in self.data:
            return
        changed = message.apply()
        if self.round is None:
            self._loaded()
        elif changed:
            self.redraw()

    def _loaded(self) -> None:
        """Once every run is read: pick the round to show, draw, warn about damaged lines."""
        if not all(d.loaded for d in self.data):
            self.redraw()
            return
        # The last round every run has reached, so a comparison starts with both drawn.
        last = [max(d.rounds()) for d in self.data if d.rounds()]
        self.round = min(last) if last else None
        self.redraw()

    def rounds(self) -> list[int]:
        return sorted({r for d in self.data for r in d.rounds()})

    def _poll(self) -> None:
        if not any(d.state == store.RUNNING for d in self.data):
            return
        if any([runreader.poll(self, d) for d in self.data if d.state == store.RUNNING]):
            self.redraw()

    def redraw(self) -> None:
        letters = "AB" if len(self.data) > 1 else ""
        title = "\n".join(f"{letters[i] + ': ' if letters else ''}{d.name} "
                           f"({d.state if d.loaded else 'reading...'})"
                           for i, d in enumerate(self.data))
        warnings = self._warnings()
        if warnings:
            title += "\n" + warnings
        self.query_one("#results-title", Static).update(title)
        self.sub_title = "compare" if letters else self.data[0].name
        for chart in self.query(Chart):
            chart.show(self.data, None if isinstance(chart, LotteryChart) else self.round)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        header = (("run",) if letters else ()) + results.TABLE_HEADER
        table.add_columns(*header)
        captions = []
        for i, d in enumerate(self.data):
            rows = d.round_results()
            for row in results.table_rows(rows):
                table.add_row(*(((letters[i],) if letters else ()) + row))
            captions.append(f"{letters[i] + ': ' if letters else ''}"
                            f"{results.table_caption(rows)}")
        table.border_subtitle = "; ".join(captions)

    def _warnings(self) -> str:
        """One line naming what is damaged (config, lines skipped); notified when new."""
        notes = []
        for d in self.data:
            problems = d.drain_problems()
            if problems:
                self.notify(f"{d.name}: damaged lines skipped: {describe_problems(problems)}",
                            severity="warning", timeout=10)
            if d.problems:
                notes.append(f"{d.name}: {len(d.problems)} damaged line(s) skipped: "
                             f"{describe_problems(d.problems, 2)}")
            if d.config_error:
                notes.append(f"{d.name}: {d.config_error}")
        return "\n".join(f"warning: {n}" for n in notes)

    def action_round(self, step: int) -> None:
        rounds = self.rounds()
        if not rounds:
            return
        i = rounds.index(self.round) if self.round in rounds else len(rounds) - 1
        self.round = rounds[max(0, min(len(rounds) - 1, i + step))]
        for chart in self.query(Chart):
            if not isinstance(chart, LotteryChart):
                chart.show(self.data, self.round)

    def action_zoom(self) -> None:
        toggle_zoom(self, (Chart, DataTable), self.query_one(LotteryChart))

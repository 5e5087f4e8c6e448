"""The three run charts, drawn with plotext from :class:`~prunetui.app.rundata.RunData`.

A chart only stores the data it is given; plotting happens in ``render``. ``show`` does nothing
when what the chart draws has not changed (``content_key``), and asks for a repaint at most
every ``MIN_INTERVAL`` seconds (later requests within the window are folded into
one deferred repaint), so however fast points arrive a chart redraws about twice a second.
Long series are decimated to a couple of points per column before plotext sees them (a
plotext build costs 7-42 ms for 50-1000 points at 80x24), keeping each stretch's lowest and
highest point so that dips and peaks stay visible.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Sequence

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from prunetui import config, results
from prunetui.app.rundata import RunData

MIN_INTERVAL = 0.5
# Named ANSI colours: they survive 256-colour terminals (no truecolor over SSH).
SCHEME_COLORS = {
    "dense": "white", "keep": "blue+", "reinit": "red+", "rewind": "green+",
    "random-mask": "magenta+",
}
EXTRA_COLORS = ("cyan+", "yellow+", "orange", "magenta", "cyan", "blue")
# Markers tell the schemes apart without colour (256 colours over SSH, colour-blind users),
# as in the CLI report; the second run of a comparison gets a second set. Every chart (run
# charts and the sweep comparison) takes its markers from scheme_marker.
SCHEME_MARKERS = (
    {"dense": "hd", "keep": "o", "reinit": "x", "rewind": "+", "random-mask": "*",
     "finetune": "f", "lr-rewind": "l", "snip": "s", "grasp": "g", "synflow": "y"},
    {"dense": "dot", "keep": "@", "reinit": "%", "rewind": "#", "random-mask": "=",
     "finetune": "F", "lr-rewind": "L", "snip": "S", "grasp": "G", "synflow": "Y"},
)
EXTRA_MARKERS = (("&", "$", "~", "^"), ("?", "!", ":", ";"))


def scheme_color(scheme: str) -> str:
    if scheme in SCHEME_COLORS:
        return SCHEME_COLORS[scheme]
    return EXTRA_COLORS[sum(map(ord, scheme)) % len(EXTRA_COLORS)]


def scheme_marker(scheme: str, run_index: int = 0, among: Iterable[str] = ()) -> str:
    """The marker of ``scheme``'s lines, the same on every chart: fixed for the base schemes;
    the others (``rewind:K``) take the extra markers in order of K among themselves and the
    schemes of ``among`` (those drawn on the same chart), so that up to four of them differ.
    ``run_index`` 1 (the B run of a comparison) gets a second, disjoint set."""
    markers = SCHEME_MARKERS[run_index % 2]
    if scheme in markers:
        return markers[scheme]
    others = sorted({s for s in (*among, scheme) if s not in markers}, key=extra_order)
    extra = EXTRA_MARKERS[run_index % 2]
    return extra[others.index(scheme) % len(extra)]


def extra_order(scheme: str) -> tuple[bool, int, str]:
    """``rewind:K`` and ``lr-rewind:K`` schemes by K, then any other name."""
    spec = config.parse_scheme(scheme)
    return (spec is None, spec.k if spec else 0, scheme)


def y_limits(values: Sequence[float]) -> tuple[float, float]:
    """Accuracy axis: the data's range with a margin, inside 0..100, never empty."""
    low, high = min(values), max(values)
    pad = max(0.5, (high - low) * 0.1)
    return max(0.0, low - pad), min(100.0, high + pad)


def decimate(points: Sequence[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """At most ``most`` points: the first, the last, and the lowest and highest y of each of
    ``(most - 2) // 2`` equal stretches in between, in their order."""
    n, buckets = len(points), (most - 2) // 2
    if n <= most or buckets < 1:
        return list(points)
    kept = [0]
    for b in range(buckets):
        lo, hi = 1 + (n - 2) * b // buckets, 1 + (n - 2) * (b + 1) // buckets
        if lo < hi:
            low = min(range(lo, hi), key=lambda i: points[i][1])
            high = max(range(lo, hi), key=lambda i: points[i][1])
            kept += sorted({low, high})
    kept.append(n - 1)
    return [points[i] for i in kept]


class Chart(PlotextPlot):
    """A PlotextPlot that draws from stored data, throttled, and can be focused and maximized."""

    can_focus = True
    ALLOW_MAXIMIZE = True
    EMPTY = "waiting for data"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.runs: list[RunData] = []
        self.round: int | None = None
        self._drawn_at = 0.0
        self._pending = False
        self._key: Hashable = object()
        self.builds = 0  # how many plots were built (tests and benchmarks check the throttle)

    def show(self, runs: Sequence[RunData], round_: int | None = None) -> None:
        """Draw ``runs`` (one, or two to compare), ``round_`` where the chart has one."""
        key = self.content_key(runs, round_)
        if key is not None and key == self._key:
            return  # the same picture: a plotext build costs 7-42 ms of the event loop
        self._key = key
        self.runs, self.round = list(runs), round_
        wait = MIN_INTERVAL - (time.monotonic() - self._drawn_at)
        if wait <= 0:
            self._drawn_at = time.monotonic()
            self.refresh()
        elif not self._pending:
            self._pending = True
            self.set_timer(wait, self._deferred)

    def _deferred(self) -> None:
        self._pending = False
        self._drawn_at = time.monotonic()
        self.refresh()

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.draw(max(20, 2 * self.size.width)):
            plt.title(self.EMPTY)
        self.builds += 1
        return super().render()

    def draw(self, most: int) -> bool:
        """Plot onto ``self.plt``; return False when there is nothing to show yet."""
        raise NotImplementedError

    def content_key(self, runs: Sequence[RunData], round_: int | None) -> Hashable:
        """Equal keys mean the same picture (None: always redraw)."""
        return (round_, tuple((id(run), run.version) for run in runs))

    def label(self, run_index: int, text: str) -> str:
        return f"{'AB'[run_index]}:{text}" if len(self.runs) > 1 else text


class AccuracyChart(Chart):
    """Test accuracy against epoch in one round, one line per scheme (and run)."""

    EMPTY = "accuracy: no evaluation yet"

    def draw(self, most: int) -> bool:
        plt, ys_all = self.plt, []
        round_ = self.round
        for i, run in enumerate(self.runs):
            r = round_ if round_ is not None else (run.current[1] if run.current else 0)
            for scheme, points in sorted(run.accuracy_curves(r).items()):
                pts = decimate(points, most)
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                plt.plot(xs, ys, label=self.label(i, scheme), color=scheme_color(scheme),
                         marker=scheme_marker(scheme, i, run.schemes))
                ys_all += ys
            round_ = r
        if not ys_all:
            return False
        plt.ylim(*y_limits(ys_all))
        plt.title(f"Round {round_}: test accuracy % vs epoch")
        return True


class LotteryChart(Chart):
    """Test accuracy at early stop against weights remaining (log x), one line per scheme."""

    EMPTY = "lottery plot: no round yet"

    def content_key(self, runs: Sequence[RunData], round_: int | None) -> Hashable:
        # New rows that do not change a segment's early stop leave this plot as it is.
        return tuple((id(run), tuple(run.round_results())) for run in runs)

    def draw(self, most: int) -> bool:
        plt, remainings, ys_all = self.plt, [], []
        for i, run in enumerate(self.runs):
            for scheme, rows in sorted(run.lottery_curves().items()):
                xs = [results.pruning_axis(r.remaining) for r in rows]
                ys = [100 * r.test_acc for r in rows]
                remainings += [r.remaining for r in rows]
                ys_all += ys
                plt.plot(xs, ys, label=self.label(i, scheme), color=scheme_color(scheme),
                         marker=scheme_marker(scheme, i, run.schemes))
        if not remainings:
            return False
        ticks, labels = results.percent_ticks(remainings, most=max(2, self.size.width // 8))
        plt.xticks(ticks, labels)
        low, high = min(ticks), max(ticks)
        pad = max(0.05, (high - low) * 0.05)
        plt.xlim(low - pad, high + pad)
        plt.ylim(*y_limits(ys_all))
        title = "Test accuracy % at early stop vs % weights left"
        plt.title(title if len(title) <= self.size.width - 8 else "Test % at early stop vs % left")
        return True


class LayersChart(Chart):
    """Weights left per layer (%) in one round, grouped bars when comparing runs."""

    EMPTY = "layers: no round yet"

    def content_key(self, runs: Sequence[RunData], round_: int | None) -> Hashable:
        # Changes only when a segment starts.
        return (round_, tuple((id(run), run.current, len(run.layers)) for run in runs))

    def draw(self, most: int) -> bool:
        plt, series, names = self.plt, [], []
        round_ = self.round
        for run in self.runs:
            r = round_ if round_ is not None else (run.current[1] if run.current else 0)
            layers = run.layer_fractions(r)
            round_ = r
            if not layers:  # this run has not reached the round
                continue
            names = names or list(layers)
            series.append([100 * layers.get(n, 0.0) for n in names])
        if not names:
            return False
        if len(series) == 1:
            plt.bar(names, series[0], color="cyan+", width=0.6, orientation="horizontal")
        else:  # comparing: one bar per run and layer, labelled "A fc1", "B fc1", ...
            labels = [f"{'AB'[i]} {n}" for n in names for i in range(len(series))]
            values = [series[i][j] for j in range(len(names)) for i in range(len(series))]
            plt.bar(labels, values, color="cyan+", width=0.6, orientation="horizontal")
        plt.xlim(0, 100)
        values = " ".join(f"{n} {v:.1f}" for n, v in zip(names, series[0], strict=True))
        title = f"Round {round_} % left: {values}"
        plt.title(title if len(title) <= self.size.width - 4 else
                  f"Round {round_}: % weights left per layer")
        return True

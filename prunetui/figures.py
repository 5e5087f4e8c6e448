"""Publication figures with matplotlib (the optional extra ``prunetui[figures]``).

Two panels, drawn from run directories (no torch):

- the Lottery Ticket plot: test accuracy at the early-stop iteration against the percentage of
  weights remaining, log x axis with the dense network on the left, one line per scheme, with
  a ± one standard deviation band where a point has several samples (replicates, or the seeds
  of a sweep setting);
- optionally the test accuracy against the training iteration in one chosen round.

Several runs (or every setting of a sweep) share the figure. Lines are told apart without
colour: each scheme has its own marker, each run or setting its own line style, and the
palette is Okabe & Ito's colour-blind-safe one. matplotlib is imported
lazily with the Agg backend and no pyplot state, so the app can draw from a worker thread.
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunetui import extras, results, store
from prunetui.segments import DENSE, round_owners
from prunetui.stats import summarize

FORMATS = (".png", ".svg", ".pdf")
FEATURE = "Figures (report --figure)"
SCHEME_MARKERS = {DENSE: "s", "keep": "o", "reinit": "^", "rewind": "D", "random-mask": "v",
                  "finetune": "<", "lr-rewind": ">", "snip": "p", "grasp": "h", "synflow": "*"}
EXTRA_MARKERS = ("P", "X", "d", "H", "8", "1")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
# Okabe & Ito's colour-blind-safe palette; rewind, reinit and keep also differ in lightness.
# With all nine named schemes on one plot the palette runs out: the later ones take tab10's
# brown, grey and purple (their markers differ too).
SCHEME_COLORS = {"rewind": "#0072B2", "reinit": "#D55E00", "keep": "#009E73",
                 "random-mask": "#CC79A7", DENSE: "#000000", "lr-rewind": "#56B4E9",
                 "finetune": "#8C564B", "snip": "#E69F00", "grasp": "#7F7F7F",
                 "synflow": "#9467BD"}
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442", "#8C564B", "#7F7F7F", "#9467BD", "#BCBD22")
RC = {
    "figure.dpi": 100, "savefig.dpi": 200, "savefig.bbox": "tight",
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8,
    "axes.grid": True, "grid.alpha": 0.35, "grid.linestyle": ":",
    "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.6, "lines.markersize": 5,
    "svg.hashsalt": "prunetui",  # stable SVG ids: the same run gives the same file
}


class FigureError(ValueError):
    """Nothing to draw, or an unusable output path; ``str()`` says what to do."""


@dataclass(frozen=True)
class FigureRun:
    """One line group on the figure: a run, or one setting of a sweep (its seeds' runs).

    Not :class:`prunetui.export.Source` (one round of a run to export)."""

    label: str
    metrics: tuple[tuple[store.MetricRow, ...], ...]  # one metrics list per run in the group
    schemes: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    """One level of weights left: the mean in percent, the 95% t-interval's half-width (0 with
    one sample) and the min–max range over the samples."""

    x: float
    mean: float
    half_width: float
    samples: int
    minimum: float = 0.0
    maximum: float = 0.0


def require() -> None:
    extras.require("figures", FEATURE)


def check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise FigureError(f"{path}: the figure format comes from the file name; use one ending "
                          f"in {', '.join(FORMATS)}.")
    return path


# ---------------------------------------------------------------------------------------------
# Data: run directories -> sources -> aggregated points (pure Python)


def _run_schemes(run: store.RunDir, metrics: Sequence[store.MetricRow]) -> tuple[str, ...]:
    try:
        return tuple(run.config().prune.schemes)
    except ValueError:  # a damaged config (ConfigError, bad bytes): the schemes seen in metrics
        return tuple(dict.fromkeys(r["scheme"] for r in metrics if r["scheme"] != DENSE))


def _setting_runs(runs: Sequence[store.RunDir], label: str) -> FigureRun:
    """One sweep setting: its runs that exist (not yet created ones are skipped), each paired
    with its own metrics so its config's schemes come from the right run."""
    present = [r for r in runs if r.exists()]
    metrics = [tuple(r.metrics()) for r in present]
    schemes = tuple(dict.fromkeys(
        s for r, m in zip(present, metrics, strict=True) for s in _run_schemes(r, m)))
    return FigureRun(label, tuple(metrics), schemes)


def _sweep_runs(path: str | Path) -> list[FigureRun]:
    """A sweep folder as one figure run per setting, its seeds pooled."""
    from prunetui.sweep import SweepDir, SweepError

    sweep = SweepDir(path)
    try:
        entries = sweep.entries()
    except SweepError as err:
        raise FigureError(str(err)) from None
    groups: dict[str, list[store.RunDir]] = defaultdict(list)
    for entry in entries:
        groups[entry.setting].append(store.RunDir(sweep.path / entry.name))
    return [_setting_runs(runs, setting) for setting, runs in groups.items()]


def _single_run(path: str | Path) -> FigureRun:
    run = store.RunDir(path)
    if not run.exists():
        raise FigureError(f"{path} is not a run directory (no config.toml) nor a sweep "
                          "folder.")
    metrics = tuple(run.metrics())
    return FigureRun(run.name, (metrics,), _run_schemes(run, metrics))


def sources_from_paths(paths: Sequence[str | Path]) -> list[FigureRun]:
    """Runs as themselves; a sweep folder as one figure run per setting (its seeds pooled)."""
    from prunetui.sweep import is_sweep

    found: list[FigureRun] = []
    for path in paths:
        found.extend(_sweep_runs(path) if is_sweep(path) else [_single_run(path)])
    if not any(m for s in found for m in s.metrics):
        raise FigureError("nothing to draw yet: no evaluations in "
                          + ", ".join(str(p) for p in paths) + ".")
    return found


def _point(x: float, values: list[float]) -> Point:
    found = summarize(values)
    return Point(x, 100 * found.mean, 100 * (found.half_width or 0.0), found.n,
                 100 * found.minimum, 100 * found.maximum)


def lottery_points(source: FigureRun) -> dict[str, list[Point]]:
    """Per scheme, (weights remaining %, test accuracy % at early stop) per round; the dense
    round 0 starts every scheme's line. Samples: replicates of each run of the source."""
    groups: dict[tuple[str, int], list[results.SegmentResult]] = defaultdict(list)
    for metrics in source.metrics:
        for seg in results.segment_results(metrics):
            for scheme in round_owners(seg.scheme, source.schemes):
                groups[(scheme, seg.round)].append(seg)
    curves: dict[str, list[Point]] = defaultdict(list)
    for (scheme, _round), segs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        remaining = 100 * statistics.fmean(s.remaining for s in segs)
        curves[scheme].append(_point(remaining, [s.test_acc for s in segs]))
    return _in_scheme_order(curves, source.schemes)


def round_points(source: FigureRun, round_: int) -> dict[str, list[Point]]:
    """Per scheme, (iteration, test accuracy %) during ``round_`` over the source's samples."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for metrics in source.metrics:
        for row in metrics:
            if row["round"] == round_:
                groups[(row["scheme"], row["iteration"])].append(row["test_acc"])
    curves: dict[str, list[Point]] = defaultdict(list)
    for (scheme, iteration), accs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        curves[scheme].append(_point(iteration, accs))
    return _in_scheme_order(curves, source.schemes)


def _in_scheme_order(curves: dict[str, list[Point]], order: Sequence[str]
                     ) -> dict[str, list[Point]]:
    rank = {s: i for i, s in enumerate((DENSE, *order))}
    return dict(sorted(curves.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def rounds_available(sources: Sequence[FigureRun]) -> list[int]:
    return sorted({row["round"] for s in sources for m in s.metrics for row in m})


# ---------------------------------------------------------------------------------------------
# Drawing


def scheme_marker(scheme: str) -> str:
    if scheme in SCHEME_MARKERS:
        return SCHEME_MARKERS[scheme]
    return EXTRA_MARKERS[sum(map(ord, scheme)) % len(EXTRA_MARKERS)]


class _Styler:
    """Colour, marker and line style per line: one run -> colour per scheme; several runs ->
    colour and line style per run, marker per scheme (so grayscale keeps both apart)."""

    def __init__(self, sources: Sequence[FigureRun]) -> None:
        self.many = len(sources) > 1
        others = [s for src in sources for s in src.schemes if s not in SCHEME_COLORS]
        spare = [c for c in PALETTE if c not in SCHEME_COLORS.values()]
        self.scheme_colors = SCHEME_COLORS | {
            s: spare[i % len(spare)] for i, s in enumerate(dict.fromkeys(others))}

    def __call__(self, source_index: int, scheme: str) -> dict[str, Any]:
        color = (PALETTE[source_index % len(PALETTE)] if self.many
                 else self.scheme_colors.get(scheme, PALETTE[0]))
        return {"color": color,
                "marker": scheme_marker(scheme),
                "linestyle": LINE_STYLES[source_index % len(LINE_STYLES)] if self.many else "-"}

    def label(self, source: FigureRun, scheme: str) -> str:
        return f"{source.label} · {scheme}" if self.many else scheme


def _draw_lines(ax: Any, sources: Sequence[FigureRun], per_source: list[dict[str, list[Point]]],
                styler: _Styler, markevery: int | None = None) -> None:
    for i, (source, curves) in enumerate(zip(sources, per_source, strict=True)):
        for scheme, points in curves.items():
            style = styler(i, scheme)
            xs = [p.x for p in points]
            ys = [p.mean for p in points]
            ax.plot(xs, ys, label=styler.label(source, scheme), markevery=markevery,
                    markerfacecolor="white" if i % 2 else style["color"], **style)
            if any(p.samples > 1 for p in points):  # band: 95% t-interval; bars: min–max
                ax.fill_between(xs, [p.mean - p.half_width for p in points],
                                [p.mean + p.half_width for p in points], color=style["color"],
                                alpha=0.18, linewidth=0)
                ax.errorbar(xs, ys, yerr=[[p.mean - p.minimum for p in points],
                                          [p.maximum - p.mean for p in points]],
                            fmt="none", ecolor=style["color"], elinewidth=0.8, capsize=2)


def _lottery_axes(ax: Any, sources: Sequence[FigureRun], styler: _Styler) -> bool:
    from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

    per_source = [lottery_points(s) for s in sources]
    xs = sorted({p.x for curves in per_source for pts in curves.values() for p in pts},
                reverse=True)
    if not xs:
        return False
    _draw_lines(ax, sources, per_source, styler)
    ax.set_xscale("log")
    ax.set_xlim(xs[0] * 1.08, xs[-1] / 1.08)  # reversed: dense at the left, pruning rightwards
    step = max(1, -(-len(xs) // 8))  # at most ~8 labelled ticks
    ax.xaxis.set_major_locator(FixedLocator([round(x, 1) for x in xs[::step]]))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("weights remaining (%, log scale)")
    ax.set_ylabel("test accuracy at early stop (%)")
    ax.set_title("Test accuracy at early stop vs weights remaining")
    if any(p.samples > 1 for curves in per_source for pts in curves.values() for p in pts):
        ax.text(0.99, 0.02, "bands: 95% t-interval; bars: min–max", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="0.35")
    return True


def _round_axes(ax: Any, sources: Sequence[FigureRun], styler: _Styler, round_: int) -> bool:
    per_source = [round_points(s, round_) for s in sources]
    longest = max((len(pts) for curves in per_source for pts in curves.values()), default=0)
    if not longest:
        return False
    _draw_lines(ax, sources, per_source, styler, markevery=max(1, longest // 10))
    ax.set_xlabel("training iteration")
    ax.set_ylabel("test accuracy (%)")
    name = "dense network" if round_ == 0 else "pruned"
    ax.set_title(f"Round {round_} ({name}): test accuracy during training")
    return True


@contextmanager
def figure_style() -> Iterator[None]:
    """The style, active while drawing and saving (ticks are made when the figure is drawn)."""
    from matplotlib import rc_context

    with rc_context(RC):
        yield


def build_figure(sources: Sequence[FigureRun], round_: int | None = None, title: str = "") -> Any:
    """A matplotlib Figure: the Lottery Ticket plot, and round ``round_``'s curves if given."""
    require()
    from matplotlib.figure import Figure

    if round_ is not None and round_ not in rounds_available(sources):
        raise FigureError(f"round {round_} has no evaluations; rounds with data: "
                          + ", ".join(map(str, rounds_available(sources))) + ".")
    with figure_style():
        styler = _Styler(sources)
        panels = 1 if round_ is None else 2
        fig = Figure(figsize=(6.4 * panels, 4.4), layout="constrained")
        axes = fig.subplots(1, panels, squeeze=False)[0]
        if not _lottery_axes(axes[0], sources, styler):
            raise FigureError("nothing to draw yet: no finished evaluation.")
        if round_ is not None:
            _round_axes(axes[1], sources, styler, round_)
        for ax in axes:
            ax.legend(loc="best", frameon=False, ncols=1 if len(sources) == 1 else 2)
        if title:
            fig.suptitle(title)
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` atomically; the format is the file's suffix (png, svg or pdf)."""
    path = check_path(path)
    buffer = io.BytesIO()
    with figure_style():
        fig.savefig(buffer, format=path.suffix.lower().lstrip("."),
                    metadata={"Creator": "prunetui"})
    store.atomic_write(path, lambda fh: fh.write(buffer.getbuffer()))
    return path


def save_run_figure(paths: Sequence[str | Path], out: str | Path, round_: int | None = None,
                    title: str = "") -> Path:
    """Draw runs and sweeps at ``paths`` into ``out``; what ``report --figure`` and the app do."""
    require()
    check_path(out)
    return save_figure(build_figure(sources_from_paths(paths), round_, title), out)

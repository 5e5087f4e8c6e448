"""Rendering engine events and results for the terminal (Rich progress, tables, plotext)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from prunetui import precision, results
from prunetui.events import (
    Checkpointed,
    Evaluated,
    Event,
    Log,
    RunFinished,
    RunStarted,
    SegmentFinished,
    SegmentStarted,
    TrainProgress,
)
from prunetui.results import segment_label
from prunetui.sizecolumns import (
    LATENCY_BATCHES,
    UNIT,
    UNIT_SIZE_COLUMNS,
    dense_summary,
    latency_cells,
    latency_columns,
    size_cells,
)

if TYPE_CHECKING:
    from prunetui.footprint import Footprint


class EventView:
    """An event sink used as a context manager: a live progress display runs inside it."""

    progress: Progress | None = None

    def __enter__(self) -> Self:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class RichRunView(EventView):
    """Two bars (whole run, current segment) with ETA and the last accuracy; log lines above."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.run_task: TaskID | None = None
        self.segment_task: TaskID | None = None
        self.replicates = 1
        self.segment_total = 0
        self.last_acc = ""

    def __call__(self, event: Event) -> None:
        p = self.progress
        if isinstance(event, RunStarted):
            self.replicates = event.replicates
            segments = event.replicates * (1 + event.rounds * len(event.schemes))
            self.run_task = p.add_task("run", total=segments, info=event.name)
            self.segment_task = p.add_task("segment", total=event.iterations_per_round, info="")
            verb = "Resuming" if event.resumed else "Running"
            self.console.print(f"{verb} {event.run_dir} on {event.device}, "
                               f"precision {precision.label(event.precision)}")
            if event.cpu:
                self.console.print(event.cpu, highlight=False)
        elif isinstance(event, SegmentStarted) and self.segment_task is not None:
            label = segment_label(*event.key, self.replicates)
            self.segment_total = event.total_iterations
            p.reset(self.segment_task, completed=event.iteration, total=event.total_iterations,
                    description=label, info=f"{100 * event.remaining:.1f}% left")
        elif isinstance(event, TrainProgress) and self.segment_task is not None:
            p.update(self.segment_task, completed=event.iteration,
                     info=f"epoch {event.epoch} loss {event.train_loss:.3f}{self.last_acc}")
        elif isinstance(event, Evaluated):
            self.last_acc = f" val {100 * event.record['val_acc']:.2f}%"
        elif isinstance(event, SegmentFinished) and self.run_task is not None:
            p.advance(self.run_task)
            if self.segment_task is not None and not event.skipped:
                p.update(self.segment_task, completed=self.segment_total)
            if not event.skipped:
                label, score = segment_label(*event.key, self.replicates), event.outcome
                self.console.print(
                    f"{label}: {100 * score.remaining:.1f}% left, test "
                    f"{100 * score.test_acc:.2f}% at iteration {score.early_stop_iteration}")
        elif isinstance(event, Log):
            style = {"error": "red", "warning": "yellow"}.get(event.level, "")
            self.console.print(event.message, style=style)
        elif isinstance(event, RunFinished):
            self.console.print(f"Run {event.status}. {event.message}".strip())


class PlainRunView(EventView):
    """One line per evaluation and segment, for logs and pipes (no terminal control codes)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.replicates = 1

    def _line(self, text: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {text}", highlight=False, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.replicates = event.replicates
            verb = "resuming" if event.resumed else "starting"
            self._line(f"{verb} {event.run_dir} on {event.device}, precision "
                       f"{precision.label(event.precision)}: {event.rounds} "
                       f"round{'s' if event.rounds != 1 else ''} x "
                       f"{', '.join(event.schemes)}, {event.iterations_per_round} iterations each")
            if event.cpu:
                self._line(event.cpu)
        elif isinstance(event, SegmentStarted):
            label = segment_label(*event.key, self.replicates)
            self._line(f"{label}: {100 * event.remaining:.2f}% of weights left, from iteration "
                       f"{event.iteration}")
        elif isinstance(event, Evaluated):
            r = event.record
            self._line(f"  it {r['iteration']} epoch {r['epoch']:.2f} train_loss "
                       f"{r['train_loss']:.4f} val_loss {r['val_loss']:.4f} val_acc "
                       f"{100 * r['val_acc']:.2f}% test_acc {100 * r['test_acc']:.2f}%")
        elif isinstance(event, SegmentFinished) and not event.skipped:
            self._line(f"  done: test {100 * event.outcome.test_acc:.2f}% at early stop "
                       f"iteration {event.outcome.early_stop_iteration}")
        elif isinstance(event, Log):
            self._line(event.message)
        elif isinstance(event, Checkpointed):
            pass
        elif isinstance(event, RunFinished):
            self._line(f"run {event.status}. {event.message}".strip())


def results_table(rows: Sequence[results.RoundResult], title: str = "") -> Table:
    table = Table(title=title or None, caption=results.table_caption(list(rows)))
    for i, name in enumerate(results.TABLE_HEADER):
        table.add_column(name, justify="left" if i == 1 else "right", no_wrap=i != 1)
    for row in results.table_rows(list(rows)):
        table.add_row(*row)
    return table


def paired_table(found: Sequence[results.RoundComparison], a: str, b: str) -> Table:
    """``report --compare-schemes A B``: the paired difference per round and a verdict."""
    table = Table(title=f"{a} minus {b}, test % at early stop, paired by replicate",
                  caption="no clear difference whenever the 95% interval contains 0")
    for name in ("round", "left %", "mean diff", "95% interval", "n", "verdict"):
        table.add_column(name, justify="left" if name == "verdict" else "right",
                         no_wrap=name == "verdict")
    for c in found:
        d = c.paired.difference if c.paired else None
        interval = "" if d is None or d.low is None else \
            f"{100 * d.low:+.2f} to {100 * d.high:+.2f}"
        left = f"{100 * c.remaining_a:.2f}"
        if abs(c.remaining_a - c.remaining_b) > 5e-5:
            left += f" / {100 * c.remaining_b:.2f}"
        table.add_row(str(c.round), left, "" if d is None else f"{100 * d.mean:+.2f}",
                      interval, "0" if d is None else str(d.n),
                      c.paired.verdict if c.paired else "no shared replicate")
    return table


MARKERS = ("o", "x", "+", "*", "#", "@")


Lines = dict[str, tuple[list[float], list[float]]]  # label -> (fractions left, values)


def pruning_plot(lines: Lines, remaining: Iterable[float], ylabel: str, title: str,
                 width: int, height: int) -> str:
    """Lines against % of weights remaining on a log x axis; an empty line keeps its marker."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("pro")
    for i, (label, (fractions, values)) in enumerate(lines.items()):
        if fractions:
            # Distinct markers keep the lines apart when colours are stripped (pipes, logs).
            plt.plot([results.pruning_axis(f) for f in fractions], values, label=label,
                     marker=MARKERS[i % len(MARKERS)])
    ticks, labels = results.percent_ticks(remaining)
    if ticks:
        plt.xticks(ticks, labels)
        plt.xlim(min(ticks) - 0.05, max(ticks) + 0.05)
    plt.xlabel("weights remaining % (log scale)")
    plt.ylabel(ylabel)
    plt.title(title)
    return plt.build()


def lottery_plot(rows: Sequence[results.RoundResult], width: int, height: int) -> str:
    """Test accuracy at early stop vs % of weights remaining (log x), one line per scheme."""
    curves = results.lottery_curves(list(rows))
    lines = {scheme: ([p.remaining for p in points], [100 * p.test_acc for p in points])
             for scheme, points in curves.items()}
    return pruning_plot(lines, (r.remaining for r in rows), "test acc %",
                        "Test accuracy at early stop", width, height)


# ---------------------------------------------------------------------------------------------
# report --size of a unit-pruned run (prune.structure = "unit")

UNIT_NOTE = ("params, FLOPs = of the shrunk network (whole units and channels removed; round 0 "
             "is the dense network); compr. = dense / shrunk parameters; speedup = dense / "
             "shrunk FLOPs (multiply-adds of every Linear and Conv2d); shrunk = its export "
             "file; latency = median per call of the dense network and the shrunk one; gain "
             "= dense / shrunk latency.")


def unit_footprint_tables(rows: Sequence[Footprint], title: str) -> list[Table]:
    """The shrunk network against the dense one per round: counts and file size, then one
    latency table per device (CPU first)."""
    size = Table(title=f"{title}: shrunk network (file KiB)",
                 caption=dense_summary(list(rows)) or None)
    for col in UNIT_SIZE_COLUMNS:
        size.add_column(col, justify="right")
    for r in rows:
        size.add_row(*size_cells(r))
    tables = [size]
    devices = sorted({d for r in rows for d, _, _ in r.latency}, key=lambda d: d != "cpu")
    for device in devices:
        batches = tuple(sorted({b for r in rows for d, _, b in r.latency if d == device}))
        t = Table(title=f"{title}: {device.upper()} latency (µs), dense and shrunk")
        for col in ("round", *latency_columns(batches, UNIT)):  # 80 columns: no "left %"
            t.add_column(col, justify="right")
        for r in rows:
            t.add_row(str(r.round), *latency_cells(r, device, batches))
        tables.append(t)
    return tables


def unit_speedup_plot(rows: Sequence[Footprint], width: int, height: int,
                      batches: tuple[int, ...] = LATENCY_BATCHES) -> str:
    """FLOP speedup and measured CPU latency gain of the shrunk network against % of weights
    left."""
    counted = [r for r in rows if r.shrunk is not None]
    lines = {"FLOPs": ([r.remaining for r in counted], [r.speedup for r in counted])}
    for b in batches:
        timed = [(r.remaining, r.latency[("cpu", "dense", b)] / r.latency[("cpu", "shrunk", b)])
                 for r in rows if r.latency.get(("cpu", "shrunk", b), 0) > 0
                 and ("cpu", "dense", b) in r.latency]
        lines[f"batch {b}"] = ([t[0] for t in timed], [t[1] for t in timed])
    return pruning_plot(lines, (r.remaining for r in rows), "x dense",
                        "Shrunk network: speedup over the dense one (CPU)", width, height)

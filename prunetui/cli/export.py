"""``prunetui export`` and the ``report --size`` view: compact models and their measured cost."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from prunetui import store
from prunetui.cli.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, console, error
from prunetui.sizecolumns import LATENCY_BACKENDS, SIZE_FORMATS, kib, micros

if TYPE_CHECKING:
    from prunetui.footprint import Footprint


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a finished round as a compact model file",
        description="Write one finished round of a run as a model file that loads with "
        "prunetui.load_pruned(OUT). Without --round/--scheme, picks the smallest fraction of "
        "weights left whose test accuracy at early stop is at most 0.5 points below the dense "
        "network's.")
    p.add_argument("run", help="run directory, e.g. models/<name>")
    p.add_argument("out", help="file to write, e.g. model.pt")
    p.add_argument("--round", type=int, help="round to export (0 = the dense network)")
    p.add_argument("--scheme", help="scheme to export, e.g. rewind")
    p.add_argument("--replicate", type=int, default=0, help="replicate (default 0)")
    p.add_argument("--format", default="sparse", choices=SIZE_FORMATS,
                   help="sparse: surviving weights only (CSR or bitmask); dense: the masked "
                   "state dict; shrunk: dead units and channels removed (default: sparse)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    # No highlighting: sizes, paths and percentages print in the plain colour.
    err = console(stderr=True, highlight=False)
    run = store.RunDir(args.run)
    if not run.exists():
        return error(err, f"{args.run} is not a run directory (no config.toml).", EXIT_USAGE)
    from prunetui.export import ExportError, build_export, choose, load_source

    out = console(highlight=False)
    try:
        metrics = run.metrics()  # read once for the choice and the source
        choice = choose(run, args.round, args.scheme, args.replicate, metrics=metrics)
        src = load_source(run, choice, metrics=metrics)
    except ExportError as e:
        return error(err, str(e), EXIT_USAGE)
    what = (f"round {choice.round} ({choice.scheme}, {100 * src.remaining:.1f}% of weights "
            f"left, test accuracy {100 * src.early_stop_test_acc:.2f}% at early stop)")
    if args.round is not None and args.scheme is not None:
        out.print(f"Exporting {what}.")
    else:
        out.print(f"Chose {what}: {choice.reason}. Pick another with --round and --scheme.")
    try:
        model = src.build()  # one network for both exports
        exported = build_export(src, args.format, model=model)
        dense_size = len(exported.data) if args.format == "dense" else \
            len(build_export(src, "dense", model=model).data)
        store.atomic_write(Path(args.out), lambda fh: fh.write(exported.data))
    except ExportError as e:
        return error(err, str(e), EXIT_USAGE)
    except store.StoreError as e:
        return error(err, str(e), EXIT_RUNTIME)
    if exported.message:
        out.print(escape(exported.message))
    size = len(exported.data)
    out.print(f"Wrote {args.out}: {args.format}, {kib(size)} KiB "
              f"({100 * size / dense_size:.1f}% of the dense file, {kib(dense_size)} KiB). "
              f"The exported weights score {100 * src.test_acc:.2f}% on the test set.")
    load = f"import prunetui; m = prunetui.load_pruned('{args.out}')"
    out.print(f'Load it with: python -c "{load}"')
    return EXIT_OK


# --- report --size ---------------------------------------------------------------------------


def size_report(run_path: str, scheme: str | None, replicate: int = 0,
                plot: bool = True) -> int:
    """Print the size-and-speed table (and plots) of a run; called by ``report --size``. A
    unit-pruned run shows its shrunk network against the dense one instead."""
    from rich.progress import Progress

    from prunetui.export import ExportError
    from prunetui.footprint import run_footprints

    run = store.RunDir(run_path)
    units = _structure(run) == "unit"
    out, err = console(highlight=False), console(stderr=True, highlight=False)
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("measuring the shrunk and the dense network" if units
                                     else "measuring size and latency", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            scheme, rows = run_footprints(run, scheme, replicate, on_progress=on_progress)
    except ExportError as e:
        return error(err, str(e), EXIT_USAGE)
    if units:
        _print_unit_report(out, rows, f"{run.name}: {scheme}", plot)
        return EXIT_OK
    for table in footprint_tables(rows, f"{run.name}: {scheme}"):
        out.print(table)
    out.print("compr. = all / nonzero parameters; speedup = dense / nonzero FLOPs (ShrinkBench); "
              "latency = median per call; sparse = scipy CSR (LeNet; LightCNN loads its sparse "
              "file into dense convolutions).")
    if plot and len(rows) > 1:
        width = min(out.width, 100)
        out.print(Text.from_ansi(size_plot(rows, width, 16)))
        out.print(Text.from_ansi(latency_plot(rows, width, 16)))
    return EXIT_OK


def _structure(run: store.RunDir) -> str:
    """The run's ``prune.structure`` ("weight" when its config cannot be read)."""
    try:
        return run.config().prune.structure
    except (ValueError, OSError):
        return "weight"


def _print_unit_report(out: Any, rows: Sequence[Footprint], title: str, plot: bool) -> None:
    """Per round, the shrunk network's parameters, FLOPs, file size and CPU latency against
    the dense network's."""
    from prunetui.cli.render import UNIT_NOTE, unit_footprint_tables, unit_speedup_plot

    for table in unit_footprint_tables(rows, title):
        out.print(table)
    out.print(UNIT_NOTE)
    if plot and len(rows) > 1:
        out.print(Text.from_ansi(unit_speedup_plot(rows, min(out.width, 100), 16)))


def footprint_tables(rows: Sequence[Footprint], title: str) -> list[Table]:
    size = Table(title=f"{title}: size (KiB)")
    for col in ("round", "left %", "test %", "compr.", "speedup", *SIZE_FORMATS):
        size.add_column(col, justify="right")
    for r in rows:
        size.add_row(str(r.round), f"{100 * r.remaining:.1f}", f"{100 * r.test_acc:.2f}",
                     f"{r.compression:.1f}x", f"{r.speedup:.1f}x",
                     *(kib(r.sizes.get(f)) for f in SIZE_FORMATS))
    tables = [size]
    devices = sorted({d for r in rows for d, _, _ in r.latency}, key=lambda d: d != "cpu")
    for device in devices:
        batches = sorted({b for r in rows for d, _, b in r.latency if d == device})
        t = Table(title=f"{title}: {device.upper()} latency (µs)")
        t.add_column("round", justify="right")
        t.add_column("left %", justify="right")
        for b in batches:
            for label, _ in LATENCY_BACKENDS:
                t.add_column(f"b{b} {label}", justify="right")
        for r in rows:
            cells = [micros(r.latency.get((device, backend, b)))
                     for b in batches for _, backend in LATENCY_BACKENDS]
            t.add_row(str(r.round), f"{100 * r.remaining:.1f}", *cells)
        tables.append(t)
    return tables


def _line(rows: Sequence[Footprint], value) -> tuple[list[float], list[float]]:
    """(fractions left, values) of the rows where ``value(row)`` is measured (not None)."""
    points = [(r.remaining, v) for r in rows if (v := value(r)) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def size_plot(rows: Sequence[Footprint], width: int, height: int) -> str:
    from prunetui.cli.render import pruning_plot

    def size_of(fmt: str):
        return lambda r: r.sizes[fmt] / 1024 if r.sizes.get(fmt) is not None else None

    lines = {fmt: _line(rows, size_of(fmt)) for fmt in SIZE_FORMATS}
    return pruning_plot(lines, (r.remaining for r in rows), "KiB", "File size", width, height)


def latency_plot(rows: Sequence[Footprint], width: int, height: int, batch: int = 1) -> str:
    from prunetui.cli.render import pruning_plot

    def latency_of(backend: str):
        key = ("cpu", backend, batch)
        return lambda r: 1e6 * r.latency[key] if key in r.latency else None

    lines = {label: _line(rows, latency_of(backend)) for label, backend in LATENCY_BACKENDS}
    return pruning_plot(lines, (r.remaining for r in rows), "µs",
                        f"CPU latency, batch {batch}", width, height)

"""``prunetui prepare SRC DST``: crop the faces of SRC/<person>/<photo> into an ImageFolder.

The engine is :func:`prunetui.data.prepare.prepare_faces`; this module only parses options,
draws progress (a Rich bar on a terminal, a plain line every few seconds otherwise), stops
cleanly on the first Ctrl-C or SIGTERM and prints the per-person summary.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
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

from prunetui.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    err_console,
    error,
)
from prunetui.cli.render import EventView
from prunetui.data.prepare import (
    MAX_WORKERS,
    OUTPUT_SIZE,
    PrepareError,
    PrepareReport,
    default_min_face_size,
    prepare_faces,
)
from prunetui.events import Event, Log, PrepareProgress, PrepareStarted
from prunetui.store import StoreError

PLAIN_EVERY_S = 5.0  # how often plain (non-terminal) output reports progress
SKIPPED_SHOWN = 20  # skipped files listed on screen; the report lists all


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="crop faces from SRC/<person>/<photo> into DST/<person>/*.png",
        description="Find faces with MTCNN, cut a square around each with a margin from the "
        f"full-resolution photo, and save it as a {OUTPUT_SIZE}x{OUTPUT_SIZE} 8-bit gray PNG in "
        "DST/<person>/. Re-running continues an interrupted run and skips finished photos. "
        "DST/prepare_report.json lists every skipped file with its reason.")
    p.add_argument("src", metavar="SRC", help="folder of person folders: SRC/<person>/<photo>")
    p.add_argument("dst", metavar="DST", help="output folder (created; must be outside SRC)")
    p.add_argument("--faces", choices=("largest", "all"), default="largest",
                   help="largest: one face per photo, saved as <file>.png; all: every face "
                   "above --min-confidence, saved as <file>_0.png, <file>_1.png, ... "
                   "(default: largest)")
    p.add_argument("--margin", type=float, default=0.2,
                   help="added on each side, as a fraction of the face box (default: 0.2)")
    p.add_argument("--min-confidence", type=float, default=0.9,
                   help="minimum detection probability (default: 0.9)")
    p.add_argument("--min-face-size", type=int, default=None, metavar="PX",
                   help="smallest face searched for, in photo pixels (default: "
                   f"{default_min_face_size()}, a third of the output size)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="same-size photos detected together (default: 8)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda...")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="detection threads, each running torch on one thread (default: one per "
                   f"core, at most {MAX_WORKERS})")
    p.add_argument("--plain", action="store_true",
                   help="plain progress lines even on a terminal")
    p.set_defaults(func=cmd_prepare)


class RichPrepareView(EventView):
    """A progress bar: photos done of all, faces saved so far, the person being worked on."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[faces]} faces"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=console)
        self.task: TaskID | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, PrepareStarted):
            self.console.print(f"Preparing faces: {event.src} -> {event.dst} ({event.total} "
                               f"photos, {event.people} people)", markup=False, highlight=False)
            self.task = self.progress.add_task("faces", total=event.total, faces=0)
        elif isinstance(event, PrepareProgress) and self.task is not None:
            self.progress.update(self.task, completed=event.done, faces=event.faces_saved,
                                 description=escape(event.person))
        elif isinstance(event, Log):
            self.console.print(event.message, markup=False, highlight=False)


class PlainPrepareView(EventView):
    """One line at the start, then one every PLAIN_EVERY_S seconds and at the last photo."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, PrepareStarted):
            self._line(f"Preparing faces: {event.src} -> {event.dst} ({event.total} photos, "
                       f"{event.people} people)")
            self.last = time.monotonic()
        elif isinstance(event, PrepareProgress):
            now = time.monotonic()
            if event.done == event.total or now - self.last >= PLAIN_EVERY_S:
                self.last = now
                self._line(f"{event.done}/{event.total} photos, {event.faces_saved} faces")
        elif isinstance(event, Log):
            self._line(event.message)

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) lets the batches under way finish, then stops; a second Ctrl-C
    aborts at once. Either way finished photos are kept for the next run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def summary_table(report: PrepareReport) -> Table:
    table = Table(title=f"Faces prepared in {escape(report.dst)}")
    table.add_column("person")
    table.add_column("photos", justify="right")
    table.add_column("faces saved", justify="right")
    table.add_column("skipped")
    for person, counts in report.people.items():
        table.add_row(escape(person), str(counts.photos), str(counts.faces_saved),
                      _reasons(counts.skipped))
    table.add_section()
    table.add_row("total", str(report.photos), str(report.faces_saved),
                  _reasons(report.skipped_by_reason))
    return table


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))


def print_summary(console: Console, report: PrepareReport) -> None:
    console.print(summary_table(report))
    for s in report.skipped[:SKIPPED_SHOWN]:
        console.print(f"  skipped {s.path}: {s.reason} - {s.message}", markup=False,
                      highlight=False, soft_wrap=True)
    if len(report.skipped) > SKIPPED_SHOWN:
        console.print(f"  ... and {len(report.skipped) - SKIPPED_SHOWN} more skipped files.")
    if report.people_without_faces and report.faces_saved and not report.pending:
        console.print(f"warning: no face saved for {', '.join(report.people_without_faces)}; "
                      "they are left out of DST.", markup=False, highlight=False, soft_wrap=True)
    device = f" on {report.device}" if report.device else ""
    console.print(f"This run: {report.processed} photos processed, {report.reused} already done, "
                  f"{report.seconds:.1f} s{device}. Report: {report.report_path}", markup=False,
                  highlight=False, soft_wrap=True)


def cmd_prepare(args: argparse.Namespace) -> int:
    console, err = Console(), err_console()
    stop = threading.Event()
    view_class = PlainPrepareView if args.plain or not console.is_terminal else RichPrepareView
    try:
        with _stop_on_signals(stop), view_class(console) as view:
            report = prepare_faces(
                args.src, args.dst, faces=args.faces, margin=args.margin,
                min_confidence=args.min_confidence, min_face_size=args.min_face_size,
                batch_size=args.batch_size, device=args.device, workers=args.workers,
                on_event=view,
                should_stop=stop.is_set)
    except PrepareError as e:
        return error(err, str(e), EXIT_USAGE)
    except StoreError as e:
        return error(err, str(e), EXIT_RUNTIME)
    except KeyboardInterrupt:
        return error(err, "interrupted. Finished photos are kept; run the same command again "
                     "to continue.", EXIT_INTERRUPTED)
    print_summary(console, report)
    if report.cancelled:
        console.print(f"Stopped with {report.pending} photos to go; run the same command again "
                      "to continue.")
        return EXIT_INTERRUPTED
    if report.faces_saved == 0:
        return error(err, f"no face was found in any photo of {report.src} "
                     f"({report.photos} files looked at; reasons above and in "
                     f"{report.report_path}). Check that SRC holds photos of faces, or lower "
                     "--min-face-size / --min-confidence.", EXIT_USAGE)
    return EXIT_OK


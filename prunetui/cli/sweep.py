"""``prunetui sweep SWEEP.toml``: many runs at once, on local worker processes or on Ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from prunetui import config, executors, store
from prunetui import sweep as sweeps
from prunetui.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    console,
    error,
)
from prunetui.threads import allowed_cpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of experiments (local processes, or a Ray cluster)",
        description="Expand SWEEP.toml into ordinary runs under OUT/<sweep>/ and run them, "
        "several at a time. Running it again skips finished runs and resumes interrupted ones.")
    p.add_argument("sweep", help="sweep file, e.g. presets/sweep-quick.toml")
    p.add_argument("--workers", type=int, metavar="N",
                   help="runs at a time (default: one per GPU, else one per CPU core); each "
                   "run gets cores / N threads, with --ray too")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run each run as a Ray task: ADDRESS of a cluster, 'auto' to discover "
                   "it, nothing for a local Ray instance (needs pip install prunetui[ray])")
    p.add_argument("--gpus-per-run", type=float, default=1.0, metavar="F",
                   help="with --ray on GPUs: GPUs per run (0.5 puts two runs on a GPU)")
    p.add_argument("--retries", type=int, default=executors.DEFAULT_RETRIES,
                   help="restarts of a run whose process dies (default: 2)")
    p.add_argument("--out", default="models", help="runs folder (default: models)")
    p.add_argument("--dry-run", action="store_true", help="show the runs, start nothing")
    p.add_argument("--plain", action="store_true", help="plain log lines, no progress bars")
    p.set_defaults(func=cmd_sweep)


def default_workers(runs: int, gpus: int, cores: int) -> int:
    # Without GPUs one run per core, one thread each: a second thread speeds one LeNet run up
    # ~1.2x, a second run doubles the work done (benchmarks/sweep_speed.py).
    return max(1, min(runs, gpus or cores))


def cmd_sweep(args: argparse.Namespace) -> int:
    err, out = console(stderr=True), console()
    if args.workers is not None and args.workers < 1:
        return error(err, f"--workers {args.workers}: give at least 1.", EXIT_USAGE)
    if args.gpus_per_run <= 0 or args.retries < 0:
        return error(err, "--gpus-per-run must be > 0 and --retries >= 0.", EXIT_USAGE)
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            return error(err, "--ray needs Ray: pip install 'prunetui[ray]'.", EXIT_USAGE)
    try:
        spec = sweeps.load_spec(sweeps.find_sweep_file(args.sweep))
        runs = sweeps.expand(spec)
    except sweeps.SweepError as e:
        return error(err, str(e), EXIT_USAGE)
    cores = len(allowed_cpus())
    gpus = 0 if args.dry_run else executors.gpu_count()
    workers = args.workers or default_workers(len(runs), gpus, cores)
    threads = max(1, cores // workers)
    runs = sweeps.with_threads(runs, threads, spec)
    if args.dry_run:
        out.print(_plan_table(spec, runs))
        return EXIT_OK
    try:
        sweep = sweeps.prepare(spec, runs, args.out)
    except (sweeps.SweepError, config.ConfigError, store.StoreError) as e:
        return error(err, str(e), EXIT_USAGE)
    sweeps.extract_datasets([r.cfg for r in runs])
    if args.ray is not None:
        executor = executors.RayExecutor(args.ray or None, threads, args.gpus_per_run,
                                         args.retries)
        where = (f"Ray ({args.ray or 'local instance'}), {threads} CPU "
                 f"thread{'s' * (threads > 1)} per run")
    else:
        gpu_ids = [str(i) for i in range(gpus)]
        executor = executors.LocalExecutor(workers, threads, gpu_ids, args.retries)
        where = (f"{workers} local worker{'s' * (workers > 1)}, "
                 + (f"{gpus} GPUs" if gpus else
                    f"{threads} CPU thread{'s' * (threads > 1)} each"))
    out.print(f"Sweep {sweep.path}: {len(runs)} runs on {where}")
    plain = args.plain or not sys.stdout.isatty()
    view = SweepView(out, sweep, plain)
    try:
        with view:
            states = executor.run([r.path for r in sweep.runs()], view.on_event, view.tick)
    except KeyboardInterrupt:
        out.print(f"Stopped; each run checkpointed. Resume with: prunetui sweep {args.sweep}")
        return EXIT_INTERRUPTED
    except Exception as e:  # Ray cannot connect, and the like: one paragraph, no traceback
        return error(err, f"{type(e).__name__}: {e}", EXIT_RUNTIME)
    rows = sweeps.comparison(sweep)
    if rows:
        out.print(comparison_table(rows, f"{sweep.name}: test % at early stop over seeds, "
                                   "mean ± 95% t-interval, and min–max", out.width))
    bad = {n: s for n, s in states.items() if s != store.FINISHED}
    if bad:
        out.print(f"Not finished: {', '.join(f'{n} ({s})' for n, s in bad.items())}. Run the "
                  f"sweep again to resume them: prunetui sweep {args.sweep}")
        return EXIT_RUNTIME
    out.print(f"All {len(states)} runs finished. Report: prunetui report {sweep.path}")
    return EXIT_OK


def _plan_table(spec: sweeps.SweepSpec, runs: list[sweeps.SweepRun]) -> Table:
    table = Table(title=f"{spec.name}: {len(runs)} runs from {spec.base}")
    for col in ("run", "setting", "overrides"):
        table.add_column(col, overflow="fold")
    for r in runs:
        table.add_row(r.name, r.setting, ", ".join(f"{k}={v!r}" for k, v in r.overrides.items()))
    return table


def comparison_table(rows: list[sweeps.ComparisonRow], title: str = "",
                     width: int | None = None) -> Table:
    """One column per scheme and one for its range; narrower than that table (three schemes
    at 80 columns), each range goes under its mean in the scheme's own column."""
    header, body = sweeps.comparison_table(rows)
    table = _table(header, body, title)
    if width is not None and Console(width=10_000).measure(table).maximum > width:
        table = _table(*sweeps.ranges_below(header, body), title)
    return table


def _table(header: list[str], body: list[list[str]], title: str) -> Table:
    table = Table(title=title or None)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold",
                         no_wrap=i > 0)
    previous = None
    for cells in body:
        # The setting is printed once, at its first row.
        table.add_row(cells[0] if cells[0] != previous else "", *cells[1:],
                      end_section=False)
        previous = cells[0]
    return table


class SweepView:
    """An overall bar (segments of every run) and one line per active run, read from the store
    (runs train in other processes, possibly on other machines)."""

    def __init__(self, out: Console, sweep: sweeps.SweepDir, plain: bool) -> None:
        self.out, self.plain = out, plain
        self.runs = {r.name: sweeps.SweepRunProgress(r) for r in sweep.runs()}
        self.progress: Progress | None = None
        self.lines: dict[str, TaskID] = {}
        if not plain:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), console=out)
            total = sum(p.total for p in self.runs.values())
            self.overall = self.progress.add_task("[bold]sweep", total=total, info="segments")

    def __enter__(self) -> SweepView:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.tick()
            self.progress.stop()

    def on_event(self, event: executors.SweepEvent) -> None:
        if isinstance(event, executors.Launched):
            what = ("queued as a Ray task" if not event.pid else
                    f"attempt {event.attempt}" if event.attempt > 1 else "started")
            self._say(f"{event.name}: {what}")
        elif isinstance(event, executors.Retrying):
            self._say(f"{event.name}: its process died ({event.reason}); starting it again to "
                      "resume from its last checkpoint", "yellow")
        elif isinstance(event, executors.Skipped):
            self._say(f"{event.name}: skipped, {event.reason}")
        elif isinstance(event, executors.RunEnded):
            style = "" if event.state == store.FINISHED else "red"
            note = f": {event.message}" if event.message else ""
            self._say(f"{event.name}: {event.state}{note}", style)
        self.tick()

    def _say(self, text: str, style: str = "") -> None:
        self.out.print(Text(text, style=style), highlight=False)

    def tick(self) -> None:
        if self.progress is None:
            return
        done = 0
        for name, prog in self.runs.items():
            prog.poll()
            done += prog.done
            if prog.active and name not in self.lines:
                self.lines[name] = self.progress.add_task(name, total=prog.total, info="")
            if name in self.lines:
                self.progress.update(self.lines[name], completed=prog.done, info=prog.info())
                if not prog.active:
                    self.progress.remove_task(self.lines.pop(name))
        self.progress.update(self.overall, completed=done)


def report_sweep(path: Path, csv: str | None, plot: bool) -> int:
    """``prunetui report models/<sweep>``: the comparison table (and a chart of the means)."""
    err, out = console(stderr=True), console()
    sweep = sweeps.SweepDir(path)
    try:
        rows = sweeps.comparison(sweep)
        runs = sweep.runs()
    except sweeps.SweepError as e:
        return error(err, str(e), EXIT_USAGE)
    if not rows:
        return error(err, f"{path} has no evaluations yet.", EXIT_USAGE)
    finished = sum(r.read_status().state == store.FINISHED for r in runs)
    out.print(comparison_table(rows, f"{sweep.name} ({finished}/{len(runs)} runs finished): "
                               "test % at early stop over seeds: mean ± 95% t-interval, min–max",
                               out.width))
    if csv:
        try:
            store.atomic_write_text(Path(csv), sweeps.comparison_csv(rows))
        except store.StoreError as e:
            return error(err, str(e), EXIT_RUNTIME)
        out.print(f"Wrote {csv}")
    if plot and len({r.round for r in rows}) > 1:
        out.print(Text.from_ansi(means_plot(rows, min(out.width, 100), 22)))
    return EXIT_OK


def means_plot(rows: list[sweeps.ComparisonRow], width: int, height: int) -> str:
    """Mean test accuracy vs % of weights left (log x), one line per setting and scheme."""
    from prunetui.cli.render import pruning_plot

    lines = {label: ([p.remaining for p in points], [100 * p.mean for p in points])
             for label, points in sweeps.comparison_curves(rows).items()}
    return pruning_plot(lines, (r.remaining for r in rows), "test acc %",
                        "Mean test accuracy at early stop over seeds", width, height)

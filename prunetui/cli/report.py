"""``prunetui report RUN``: results table, Lottery Ticket plot, and optionally size and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from prunetui import results, store
from prunetui.cli.common import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    console,
    err_console,
    error,
    warn_lines,
)
from prunetui.cli.figures import add_arguments, save_report_figure


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="results table and Lottery Ticket plot of a run")
    report.add_argument("run", help="run directory, e.g. models/<name>, or a sweep folder")
    report.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    report.add_argument("--no-plot", action="store_true", help="table only")
    report.add_argument("--size", action="store_true",
                        help="also measure file size and latency per round (prunetui export)")
    report.add_argument("--scheme", help="with --size: the scheme to measure (default: that "
                        "of the default export choice)")
    report.add_argument("--compare-schemes", nargs=2, metavar=("A", "B"),
                        help="per round, scheme A minus scheme B paired by replicate: the mean "
                        "difference, its 95%% t-interval and a verdict")
    add_arguments(report)
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from prunetui.sweep import is_sweep

    if (code := save_report_figure(args)) != EXIT_OK:
        return code
    if is_sweep(args.run):
        from prunetui.cli.sweep import report_sweep

        return report_sweep(Path(args.run), args.csv, not args.no_plot)
    run = store.RunDir(args.run)
    if (code := _check_run(run, args.run)) != EXIT_OK:
        return code
    return _report_run(run, args)


def _check_run(run: store.RunDir, given: str) -> int:
    """EXIT_OK when ``run`` is a run directory, else the error printed and its code."""
    if run.exists():
        return EXIT_OK
    if run.checkpoints.is_dir():
        return error(err_console(), f"{given}/config.toml is missing. 'prunetui run --resume "
                     f"{given}' restores it from the checkpoints; 'prunetui check {given}' "
                     "lists what else is damaged.", EXIT_RUNTIME)
    return error(err_console(), f"{given} is not a run directory (no config.toml).", EXIT_USAGE)


def _report_run(run: store.RunDir, args: argparse.Namespace) -> int:
    from prunetui.cli.render import lottery_plot, results_table

    err = err_console()
    metrics, problems = run.metrics_checked()
    warn_lines(err, run, problems)
    rows = results.round_results(metrics)
    if not rows:
        if run.read_status().state == store.FINISHED:
            return error(err, f"{args.run} has finished but its metrics.jsonl is empty or "
                         f"missing. See: prunetui check {args.run}", EXIT_RUNTIME)
        return error(err, f"{args.run} has no evaluations yet.", EXIT_USAGE)
    out = console()
    status = run.read_status().effective_state
    out.print(results_table(rows, title=f"{run.name} ({status})"))
    if args.csv:
        try:
            store.atomic_write_text(Path(args.csv), results.to_csv(rows))
        except store.StoreError as e:
            return error(err, str(e), EXIT_RUNTIME)
        out.print(f"Wrote {args.csv}")
    if not args.no_plot and len({r.round for r in rows}) > 1:
        width = min(out.width, 100)
        out.print(Text.from_ansi(lottery_plot(rows, width, 20)))
    if args.compare_schemes and (code := _compare(metrics, *args.compare_schemes)) != EXIT_OK:
        return code
    if args.size:
        from prunetui.cli.export import size_report

        return size_report(args.run, args.scheme, plot=not args.no_plot)
    return EXIT_OK


def _compare(metrics: list[dict], a: str, b: str) -> int:
    """The paired comparison of two schemes, one row per pruned round."""
    from prunetui.cli.render import paired_table

    found = results.compare_schemes(metrics, a, b)
    if not found:
        schemes = sorted({r["scheme"] for r in metrics if r["round"] > 0})
        return error(err_console(), f"no round has both {a!r} and {b!r}; this run's schemes "
                     f"are: {', '.join(schemes) or 'none yet'}.", EXIT_USAGE)
    console().print(paired_table(found, a, b))
    return EXIT_OK

"""``prunetui report RUN --figure out.png``: publication figures (prunetui[figures])."""

from __future__ import annotations

import argparse

from prunetui.cli.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, console, error
from prunetui.extras import MissingExtra


def add_arguments(report: argparse.ArgumentParser) -> None:
    group = report.add_argument_group("figures (needs prunetui[figures])")
    group.add_argument("--figure", metavar="FILE", help="draw the Lottery Ticket plot with "
                       "matplotlib into FILE (.png, .svg or .pdf)")
    group.add_argument("--round", type=int, metavar="N", help="with --figure: add a panel of "
                       "test accuracy vs iteration in round N (0 = dense)")
    group.add_argument("--compare", action="append", default=[], metavar="RUN",
                       help="with --figure: also draw this run or sweep folder (repeatable)")
    group.add_argument("--title", default="", help="with --figure: a title above the plots")


def save_report_figure(args: argparse.Namespace) -> int:
    """Draw the figure ``report`` was asked for (nothing without --figure); an exit code."""
    from prunetui import figures, store

    err = console(stderr=True)
    if not args.figure:
        if args.round is not None or args.compare or args.title:
            return error(err, "--round, --compare and --title go with --figure FILE.", EXIT_USAGE)
        return EXIT_OK
    try:
        out = figures.save_run_figure([args.run, *args.compare], args.figure, args.round,
                                      args.title)
    except (MissingExtra, figures.FigureError) as e:
        return error(err, str(e), EXIT_USAGE)
    except store.StoreError as e:
        return error(err, str(e), EXIT_RUNTIME)
    console().print(f"Wrote {out}")
    return EXIT_OK

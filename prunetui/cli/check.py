"""``prunetui check RUN``: verify every file of a run; exit 0 when all are intact, 1 when any is
damaged or missing, 2 when the path is not a run."""

from __future__ import annotations

import argparse

from rich.markup import escape

from prunetui import store
from prunetui.cli.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, console, err_console, error

STYLE = {store.INTACT: "green", store.UNVERIFIED: "yellow", store.DAMAGED: "bold red",
         store.MISSING: "bold red"}


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check", help="verify every file of a run and say what damage costs",
                           description="Verify the checksums of a run's checkpoints and files "
                           "and the lines of its metric files. Exit code 0 when everything is "
                           "intact, 1 when a file is damaged or missing, 2 when the path is "
                           "not a run.")
    check.add_argument("run", help="run directory, e.g. models/<name>")
    check.set_defaults(func=cmd_check)


def looks_like_run(run: store.RunDir) -> bool:
    """A run directory, even one whose config.toml was deleted."""
    return any(p.exists() for p in (run.config_path, run.status_path, run.metrics_path,
                                    run.checkpoints))


def cmd_check(args: argparse.Namespace) -> int:
    from prunetui.integrity import check_run

    run = store.RunDir(args.run)
    if not run.path.is_dir() or not looks_like_run(run):
        return error(err_console(), f"{args.run} is not a run directory.", EXIT_USAGE)
    report = check_run(run)
    out = console()
    out.print(f"Checking {escape(str(run.path))}", highlight=False)
    width = max(len(f.path) for f in report.files) if report.files else 0
    for f in report.files:
        cost = f" - {escape(f.cost)}" if f.cost else ""
        out.print(f"  [{STYLE[f.state]}]{f.state:<10}[/] {escape(f.path):<{width}}{cost}",
                  highlight=False)
    for path in report.set_aside:
        out.print(f"  [dim]set aside  {escape(path)} (a damaged copy kept by an earlier resume)"
                  "[/]", highlight=False)
    if report.restart:
        out.print(f"A resume restarts at {escape(report.restart)}.", highlight=False)
    intact = sum(f.ok for f in report.files)
    unverified = sum(f.state == store.UNVERIFIED for f in report.files)
    note = f" ({unverified} without checksum, but readable)" if unverified else ""
    if report.ok:
        out.print(f"All {intact} files intact{note}.", highlight=False)
        return EXIT_OK
    out.print(f"{len(report.damaged)} damaged, {intact} intact{note}. A resume moves damaged "
              "files aside (never deletes them) and continues from the newest intact state: "
              f"prunetui run --resume {escape(str(run.path))}", highlight=False)
    return EXIT_RUNTIME

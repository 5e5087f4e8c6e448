"""``prunetui runs [DIR]``: the runs (and sweeps) in a folder and their status."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.table import Table

from prunetui import results, store
from prunetui.cli.common import EXIT_OK, console, err_console, warn_lines

if TYPE_CHECKING:
    from prunetui.sweep import SweepDir


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="list runs and their status")
    runs.add_argument("dir", nargs="?", default="models", help="runs folder (default: models)")
    runs.set_defaults(func=cmd_runs)


def _sweeps_table(folder: str, sweeps: list[SweepDir]) -> Table:
    # Each sweep is a folder of runs: one row here, its runs with runs DIR/<sweep>.
    from prunetui.sweep import sweep_summary

    table = Table(title=f"Sweeps in {folder} (their runs: prunetui runs {folder}/NAME)")
    for col in ("name", "status", "runs", "best"):
        table.add_column(col, overflow="fold")
    for s in sweeps:
        row = sweep_summary(s)
        table.add_row(row["name"], row["status"], f"{row['rounds']}: {row['schemes']}",
                      row["best"])
    return table


def cmd_runs(args: argparse.Namespace) -> int:
    from prunetui.sweep import list_sweeps

    runs = store.list_runs(args.dir)
    sweeps = list_sweeps(args.dir)
    out = console()
    if sweeps:
        out.print(_sweeps_table(args.dir, sweeps))
        if not runs:
            return EXIT_OK
    if not runs:
        out.print(f"No runs in {args.dir}. Start one with: prunetui run quick")
        return EXIT_OK
    table = Table(title=f"Runs in {args.dir}")
    for col in ("name", "status", "dataset", "schemes", "rounds", "dense", "best"):
        # Long run names fold; short fields stay whole so they can be read at 80 columns.
        table.add_column(col, overflow="fold", no_wrap=col in ("status", "dataset", "rounds"))
    damaged = []
    for run in runs:
        summary, problems = results.run_summary_checked(run)
        name = summary["name"] + (f" ({summary['structure']})" if summary["structure"] else "")
        table.add_row(name, *(summary[key] for key in ("status", "dataset", "schemes", "rounds",
                                                       "dense", "best")))
        damaged.append((run, problems))
    out.print(table)
    err = err_console()
    for run, problems in damaged:
        warn_lines(err, run, problems, most=3)
    return EXIT_OK

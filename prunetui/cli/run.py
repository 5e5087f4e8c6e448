"""``prunetui run``, ``prunetui runs`` and ``prunetui report``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from prunetui import config, extras, presets, results, store
from prunetui.cli import figures
from prunetui.extras import MissingExtra

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run (or resume) an experiment from a TOML config",
                         description="Run an experiment headless. Progress is checkpointed "
                         "every epoch; Ctrl-C checkpoints and exits with code 130.")
    run.add_argument("config", nargs="?", help="a preset name (see: prunetui presets), e.g. "
                     "quick, or a TOML config file")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a key, e.g. --set train.epochs=2")
    run.add_argument("--out", default="models", help="folder for runs (default: models)")
    run.add_argument("--name", help="run folder name (default: generated from dataset, "
                     "model and time)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--detach", action="store_true",
                     help="run in the background, detached from this terminal (survives "
                     "logout); follow it with 'prunetui runs' or the app")
    run.add_argument("--plain", action="store_true", help="plain log lines, no progress bars")
    run.add_argument("--tensorboard", metavar="DIR", help="log scalars for TensorBoard under "
                     "DIR/<run name>/ as the run goes (same as --set log.tensorboard=DIR; "
                     "needs prunetui[tensorboard])")
    run.set_defaults(func=cmd_run)

    runs = sub.add_parser("runs", help="list runs and their status")
    runs.add_argument("dir", nargs="?", default="models", help="runs folder (default: models)")
    runs.set_defaults(func=cmd_runs)

    report = sub.add_parser("report", help="results table and Lottery Ticket plot of a run")
    report.add_argument("run", help="run directory, e.g. models/<name>, or a sweep folder")
    report.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    report.add_argument("--no-plot", action="store_true", help="table only")
    report.add_argument("--size", action="store_true",
                        help="also measure file size and latency per round (prunetui export)")
    report.add_argument("--scheme", help="with --size: the scheme to measure (default: that "
                        "of the default export choice)")
    figures.add_arguments(report)
    report.set_defaults(func=cmd_report)


def console(stderr: bool = False) -> Console:
    # soft_wrap: paths and commands in messages stay on one line, ready to copy.
    return Console(stderr=stderr, soft_wrap=True)


def _error(err: Console, message: str, code: int) -> int:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return code


def _err_console() -> Console:
    return console(stderr=True)


def _load_new_config(args: argparse.Namespace) -> config.Config:
    cfg = config.load(presets.resolve(args.config, presets.RUN))
    overrides = [config.parse_override(o) for o in args.overrides]
    if args.tensorboard:
        overrides.append(("log.tensorboard", args.tensorboard))
    return config.apply_overrides(cfg, overrides, source=f"{args.config} with --set")


def cmd_run(args: argparse.Namespace) -> int:
    err = _err_console()
    if bool(args.config) == bool(args.resume):
        return _error(err, "give either a CONFIG file or --resume RUN_DIR.", EXIT_USAGE)
    try:
        if args.resume:
            if args.overrides or args.name or args.tensorboard:
                return _error(err, "--set, --name and --tensorboard cannot change a run being "
                              "resumed; its config.toml is fixed.", EXIT_USAGE)
            run_dir = store.RunDir(args.resume)
            _restore_config(run_dir)
            if not run_dir.exists():
                return _error(err, f"{args.resume} is not a run directory (no config.toml).",
                              EXIT_USAGE)
            _require_extras(run_dir.config())  # validate before any work
        else:
            from prunetui.experiment import new_run

            cfg = _load_new_config(args)
            _require_extras(cfg)
            run_dir = new_run(cfg, args.out, args.name)
    except config.ConfigError as e:
        return _error(err, str(e), EXIT_USAGE)
    except UnicodeDecodeError as e:
        return _error(err, f"{args.resume}/config.toml is damaged ({e}) and no checkpoint holds "
                      "a copy of it.", EXIT_RUNTIME)
    except MissingExtra as e:
        return _error(err, str(e), EXIT_USAGE)
    except store.StoreError as e:
        return _error(err, str(e), EXIT_USAGE)

    status = run_dir.read_status()
    if status.state == store.FINISHED and not _damaged_to_repair(run_dir):
        console().print(f"{run_dir.path} has already finished; nothing to do. "
                        f"See: prunetui report {run_dir.path}")
        return EXIT_OK
    if args.detach:
        from prunetui.detach import LOG_FILE, spawn_detached

        pid = spawn_detached(run_dir.path)
        console().print(f"Started {run_dir.path} in the background (pid {pid}); its log is "
                        f"{run_dir.path / LOG_FILE}. Follow it with: prunetui runs "
                        f"{run_dir.path.parent}")
        return EXIT_OK
    return _run_in_foreground(run_dir, plain=args.plain or not sys.stdout.isatty(),
                              created=not args.resume)


def _restore_config(run_dir: store.RunDir) -> None:
    """A damaged or deleted config.toml comes back from the copy kept in the checkpoints."""
    from prunetui.integrity import restore_config

    if run_dir.path.is_dir() and (note := restore_config(run_dir)):
        _err_console().print(f"[yellow]warning:[/] {escape(note)}", highlight=False)


def _damaged_to_repair(run_dir: store.RunDir) -> bool:
    """A finished run with damaged files is resumed to repair them (prunetui check lists them)."""
    from prunetui.integrity import check_run

    damaged = check_run(run_dir).damaged
    if not damaged:
        return False
    _err_console().print(f"[yellow]warning:[/] {run_dir.path} has finished, but "
                         f"{len(damaged)} of its files are damaged; repairing them.",
                         highlight=False)
    run_dir.write_status(store.INTERRUPTED, "repairing damaged files")
    return True


def _require_extras(cfg: config.Config) -> None:
    if cfg.log.tensorboard:
        extras.require("tensorboard", f"log.tensorboard = {cfg.log.tensorboard!r}")


def _run_in_foreground(run_dir: store.RunDir, plain: bool, created: bool) -> int:
    from prunetui.cli.render import PlainRunView, RichRunView, results_table
    from prunetui.control import RunControl
    from prunetui.data import DataError
    from prunetui.experiment import AlreadyRunning, Experiment

    out, err = console(), _err_console()
    control = RunControl()

    def on_sigint(signum, frame):  # first Ctrl-C: checkpoint and stop; second: default
        control.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    view = PlainRunView(out) if plain else RichRunView(out)
    try:
        with view:
            state = Experiment(run_dir, view, control).execute()
    except DataError as e:
        if created:
            _remove_if_never_started(run_dir)
        return _error(err, str(e), EXIT_USAGE)
    except AlreadyRunning as e:
        return _error(err, str(e), EXIT_USAGE)
    except store.CannotResume as e:  # never suggest the resume that just failed
        return _error(err, str(e), EXIT_RUNTIME)
    except (store.StoreError, RuntimeError) as e:
        return _error(err, f"{e} Resume with: prunetui run --resume {run_dir.path}", EXIT_RUNTIME)
    finally:
        signal.signal(signal.SIGINT, previous)
    if state == store.INTERRUPTED:
        out.print(f"Checkpointed. Resume with: prunetui run --resume {run_dir.path}")
        return EXIT_INTERRUPTED
    out.print(results_table(results.round_results(run_dir.metrics()), title=run_dir.name))
    return EXIT_OK


def warn_lines(err: Console, run: store.RunDir, problems: list[store.LineProblem],
               most: int = 10) -> None:
    """One warning per damaged metrics line (file and line number); the rest is still used."""
    for problem in problems[:most]:
        err.print(f"[yellow]warning:[/] {escape(str(run.path / problem.path.name))} line "
                  f"{problem.line}: {escape(problem.reason)} (skipped)", highlight=False)
    if len(problems) > most:
        err.print(f"[yellow]warning:[/] and {len(problems) - most} more damaged lines. See: "
                  f"prunetui check {escape(str(run.path))}", highlight=False)
    elif problems:
        err.print(f"[yellow]warning:[/] see: prunetui check {escape(str(run.path))}",
                  highlight=False)


def _remove_if_never_started(run_dir: store.RunDir) -> None:
    """A run that stopped before its first evaluation holds nothing worth keeping."""
    import shutil

    if not run_dir.metrics_path.exists() and not run_dir.checkpoints.exists():
        shutil.rmtree(run_dir.path, ignore_errors=True)


# --- runs ------------------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from prunetui.sweep import list_sweeps, sweep_summary

    runs = store.list_runs(args.dir)
    sweeps = list_sweeps(args.dir)
    out = console()
    if sweeps:  # each sweep is a folder of runs: one row here, its runs with runs DIR/<sweep>
        table = Table(title=f"Sweeps in {args.dir} (their runs: prunetui runs {args.dir}/NAME)")
        for col in ("name", "status", "runs", "best"):
            table.add_column(col, overflow="fold")
        for s in sweeps:
            row = sweep_summary(s)
            table.add_row(row["name"], row["status"], f"{row['rounds']}: {row['schemes']}",
                          row["best"])
        out.print(table)
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
        table.add_row(*summary.values())
        damaged.append((run, problems))
    out.print(table)
    err = _err_console()
    for run, problems in damaged:
        warn_lines(err, run, problems, most=3)
    return EXIT_OK


# --- report ----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from prunetui.cli.render import lottery_plot, results_table
    from prunetui.sweep import is_sweep

    if (code := figures.save_report_figure(args)) != EXIT_OK:
        return code
    if is_sweep(args.run):
        from prunetui.cli.sweep import report_sweep

        return report_sweep(Path(args.run), args.csv, not args.no_plot)
    run = store.RunDir(args.run)
    err = _err_console()
    if not run.exists():
        if run.checkpoints.is_dir():
            return _error(err, f"{args.run}/config.toml is missing. 'prunetui run --resume "
                          f"{args.run}' restores it from the checkpoints; 'prunetui check "
                          f"{args.run}' lists what else is damaged.", EXIT_RUNTIME)
        return _error(err, f"{args.run} is not a run directory (no config.toml).", EXIT_USAGE)
    metrics, problems = run.metrics_checked()
    warn_lines(err, run, problems)
    rows = results.round_results(metrics)
    if not rows:
        if run.read_status().state == store.FINISHED:
            return _error(err, f"{args.run} has finished but its metrics.jsonl is empty or "
                          f"missing. See: prunetui check {args.run}", EXIT_RUNTIME)
        return _error(err, f"{args.run} has no evaluations yet.", EXIT_USAGE)
    out = console()
    status = run.read_status().effective_state
    out.print(results_table(rows, title=f"{run.name} ({status})"))
    if args.csv:
        try:
            store.atomic_write_text(Path(args.csv), results.to_csv(rows))
        except store.StoreError as e:
            return _error(err, str(e), EXIT_RUNTIME)
        out.print(f"Wrote {args.csv}")
    if not args.no_plot and len({r.round for r in rows}) > 1:
        width = min(out.width, 100)
        out.print(Text.from_ansi(lottery_plot(rows, width, 20)))
    if args.size:
        from prunetui.cli.export import size_report

        return size_report(args.run, args.scheme, plot=not args.no_plot)
    return EXIT_OK

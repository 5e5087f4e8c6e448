"""``prunetui run``: run or resume an experiment in the foreground or detached."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import Any

from rich.markup import escape

from prunetui import config, extras, presets, results, store
from prunetui.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    console,
    err_console,
    error,
)
from prunetui.extras import MissingExtra


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
    run.add_argument("--no-estimate", action="store_true",
                     help="skip the launch estimate (a few timed training steps, printed as "
                     "the second line)")
    run.add_argument("--tensorboard", metavar="DIR", help="log scalars for TensorBoard under "
                     "DIR/<run name>/ as the run goes (same as --set log.tensorboard=DIR; "
                     "needs prunetui[tensorboard])")
    run.set_defaults(func=cmd_run)


def _load_new_config(args: argparse.Namespace) -> config.Config:
    cfg = config.load(presets.resolve(args.config, presets.RUN))
    overrides = [config.parse_override(o) for o in args.overrides]
    if args.tensorboard:
        overrides.append(("log.tensorboard", args.tensorboard))
    return config.apply_overrides(cfg, overrides, source=f"{args.config} with --set")


def cmd_run(args: argparse.Namespace) -> int:
    err = err_console()
    if bool(args.config) == bool(args.resume):
        return error(err, "give either a CONFIG file or --resume RUN_DIR.", EXIT_USAGE)
    try:
        if args.resume:
            if args.overrides or args.name or args.tensorboard:
                return error(err, "--set, --name and --tensorboard cannot change a run being "
                             "resumed; its config.toml is fixed.", EXIT_USAGE)
            run_dir = store.RunDir(args.resume)
            _restore_config(run_dir)
            if not run_dir.exists():
                return error(err, f"{args.resume} is not a run directory (no config.toml).",
                             EXIT_USAGE)
            _require_extras(run_dir.config())  # validate before any work
        else:
            cfg = _load_new_config(args)
            _require_extras(cfg)
            run_dir = store.new_run(cfg, args.out, args.name)
    except config.ConfigError as e:
        return error(err, str(e), EXIT_USAGE)
    except UnicodeDecodeError as e:
        return error(err, f"{args.resume}/config.toml is damaged ({e}) and no checkpoint holds "
                     "a copy of it.", EXIT_RUNTIME)
    except MissingExtra as e:
        return error(err, str(e), EXIT_USAGE)
    except store.StoreError as e:
        return error(err, str(e), EXIT_USAGE)

    status = run_dir.read_status()
    if status.state == store.FINISHED and not _damaged_to_repair(run_dir):
        console().print(f"{run_dir.path} has already finished; nothing to do. "
                        f"See: prunetui report {run_dir.path}")
        return EXIT_OK
    if args.detach:
        from prunetui.detach import LOG_FILE, spawn_detached

        line = None if args.no_estimate else estimate_line(run_dir)  # before the run competes
        pid = spawn_detached(run_dir.path)
        console().print(f"Started {run_dir.path} in the background (pid {pid}); its log is "
                        f"{run_dir.path / LOG_FILE}. Follow it with: prunetui runs "
                        f"{run_dir.path.parent}")
        if line:
            console().print(line, highlight=False)
        return EXIT_OK
    return _run_in_foreground(run_dir, plain=args.plain or not sys.stdout.isatty(),
                              created=not args.resume, estimated=not args.no_estimate)


def _restore_config(run_dir: store.RunDir) -> None:
    """A damaged or deleted config.toml comes back from the copy kept in the checkpoints."""
    from prunetui.integrity import restore_config

    if run_dir.path.is_dir() and (note := restore_config(run_dir)):
        err_console().print(f"[yellow]warning:[/] {escape(note)}", highlight=False)


def _damaged_to_repair(run_dir: store.RunDir) -> bool:
    """A finished run with damaged files is resumed to repair them (prunetui check lists them)."""
    from prunetui.integrity import check_run

    damaged = check_run(run_dir).damaged
    if not damaged:
        return False
    err_console().print(f"[yellow]warning:[/] {run_dir.path} has finished, but "
                         f"{len(damaged)} of its files are damaged; repairing them.",
                         highlight=False)
    run_dir.write_status(store.INTERRUPTED, "repairing damaged files")
    return True


def _require_extras(cfg: config.Config) -> None:
    if cfg.log.tensorboard:
        extras.require("tensorboard", f"log.tensorboard = {cfg.log.tensorboard!r}")


def estimate_line(run_dir: store.RunDir, threads: int | None = None,
                  precision: str | None = None) -> str:
    """``Estimated time: about 1 min 20 s on cpu (2 threads; measured 10 steps)``: the
    trainings not finished yet (on resume, those left), timed on this device."""
    from prunetui.data import recent
    from prunetui.estimate import estimate
    from prunetui.segments import plan

    try:
        cfg = run_dir.config()
        segments = plan(cfg)
        left = sum(not run_dir.segment_checkpoint(*s.key).exists() for s in segments)
        found = estimate(cfg, threads=threads, precision=precision, segments=left)
    except Exception as err:  # an estimate never stops a run; the run reports real problems
        return f"Estimated time: unknown ({type(err).__name__}: {err})"
    finally:
        recent.forget()  # one estimate per command: the run keeps what it uses, nothing more
    return f"Estimated time: {found.describe(total_segments=len(segments))}"


class EstimatingView:
    """The run's view, with the launch estimate printed right after the line naming the run:
    measured when the run starts (its threads and precision chosen, its data loaded)."""

    def __init__(self, view: Any, run_dir: store.RunDir) -> None:
        self.view, self.run_dir, self.done = view, run_dir, False

    def __enter__(self) -> EstimatingView:
        self.view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.view.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        from prunetui.events import Log, RunStarted

        if self.done or not isinstance(event, RunStarted):
            self.view(event)
            return
        self.done = True
        self.view(dataclasses.replace(event, cpu=""))
        self.view(Log(estimate_line(self.run_dir, event.threads or None,
                                    getattr(event, "precision", None))))
        if event.cpu:
            self.view(Log(event.cpu))


def _run_in_foreground(run_dir: store.RunDir, plain: bool, created: bool,
                       estimated: bool = True) -> int:
    from prunetui.cli.lostoutput import RunConsole, StopWhenOutputLost
    from prunetui.cli.render import PlainRunView, RichRunView, results_table
    from prunetui.control import RunControl
    from prunetui.data import DataError
    from prunetui.experiment import AlreadyRunning, Experiment

    out, err = console(kind=RunConsole), console(stderr=True, kind=RunConsole)
    control = RunControl()

    def on_sigint(signum, frame):  # first Ctrl-C: checkpoint and stop; second: default
        control.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                       signal.SIGHUP)}
    signal.signal(signal.SIGINT, on_sigint)
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):  # kill, or the terminal hung up
        if previous[stop_signal] is not signal.SIG_IGN:  # nohup: logout must not stop it
            signal.signal(stop_signal, on_sigint)
    view = PlainRunView(out) if plain else RichRunView(out)
    if estimated:
        view = EstimatingView(view, run_dir)
    view = StopWhenOutputLost(view, out, err, control,
                              f"prunetui run --resume {run_dir.path}")
    try:
        with view:
            state = Experiment(run_dir, view, control).execute()
    except (DataError, config.ConfigError) as e:  # bad data or network: nothing was trained
        if created:
            _remove_if_never_started(run_dir)
        return error(err, str(e), EXIT_USAGE)
    except AlreadyRunning as e:
        return error(err, str(e), EXIT_USAGE)
    except store.CannotResume as e:  # never suggest the resume that just failed
        return error(err, str(e), EXIT_RUNTIME)
    except (store.StoreError, RuntimeError) as e:
        return error(err, f"{e} Resume with: prunetui run --resume {run_dir.path}", EXIT_RUNTIME)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state == store.INTERRUPTED:
        out.print(f"Checkpointed. Resume with: prunetui run --resume {run_dir.path}")
        return EXIT_INTERRUPTED
    out.print(results_table(results.round_results(run_dir.metrics()), title=run_dir.name))
    return EXIT_OK


def _remove_if_never_started(run_dir: store.RunDir) -> None:
    """A run that stopped before its first evaluation holds nothing worth keeping."""
    import shutil

    if not run_dir.metrics_path.exists() and not run_dir.checkpoints.exists():
        shutil.rmtree(run_dir.path, ignore_errors=True)

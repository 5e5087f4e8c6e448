"""``prunetui export-logs RUN DIR``: a finished (or stopped) run's scalars for TensorBoard."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from prunetui.cli.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, console, error


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "export-logs", help="write a run's scalars as TensorBoard event files",
        description="Write the accuracies, losses and weights left per layer of a run into "
        "DIR/<run name>/ for TensorBoard (tensorboard --logdir DIR). Needs prunetui[tensorboard]. "
        "To log while a run trains instead: prunetui run ... --tensorboard DIR.")
    cmd.add_argument("run", help="run directory, e.g. models/<name>")
    cmd.add_argument("dir", help="TensorBoard log folder")
    cmd.add_argument("--replace", action="store_true",
                     help="delete DIR/<run name>/ first if it holds an earlier export")
    cmd.set_defaults(func=cmd_export_logs)


def cmd_export_logs(args: argparse.Namespace) -> int:
    from prunetui import store
    from prunetui.config import ConfigError
    from prunetui.extras import MissingExtra

    err = console(stderr=True)
    run = store.RunDir(args.run)
    if not run.exists():
        return error(err, f"{args.run} is not a run directory (no config.toml).", EXIT_USAGE)
    target = Path(args.dir) / run.name
    try:
        from prunetui import tensorboard

        tensorboard.require()
        if not run.metrics():  # before --replace deletes anything
            return error(err, f"{args.run} has no evaluations yet.", EXIT_USAGE)
        if target.exists() and any(target.iterdir()):
            if not args.replace:
                return error(err, f"{target} already holds TensorBoard logs; TensorBoard would "
                             "mix them with a second export. Add --replace to overwrite them, "
                             "or give another DIR.", EXIT_USAGE)
            shutil.rmtree(target)
        out = tensorboard.export_run(run, args.dir)
    except (MissingExtra, ConfigError) as e:
        return error(err, str(e), EXIT_USAGE)
    except OSError as e:
        return error(err, f"Cannot write {target}: {e.strerror or e}.", EXIT_RUNTIME)
    console().print(f"Wrote TensorBoard logs to {out}. View them with: tensorboard --logdir "
                    f"{args.dir}")
    return EXIT_OK

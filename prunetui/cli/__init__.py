"""Command line: ``prunetui`` opens the app; subcommands run the same engine headless.

Each subcommand lives in its own module exposing ``register(subparsers)``; handlers return an
exit code. Expected problems (bad config, missing data, full disk) are printed as one paragraph
and exit with code 2 (usage/input) or 1 (runtime), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from prunetui.cli.version import VersionAction


def build_parser() -> argparse.ArgumentParser:
    from prunetui.cli import (
        check,
        data,
        export,
        logs,
        predict,
        prepare,
        presets,
        report,
        run,
        runs,
        sweep,
    )

    parser = argparse.ArgumentParser(
        prog="prunetui",
        description="Iterative magnitude pruning and Lottery Ticket experiments. "
        "Without a command, opens the terminal app.",
    )
    parser.add_argument("--version", action=VersionAction,
                        help="show prunetui's and torch's versions, CUDA and the device a run "
                        "would use, then exit")
    parser.add_argument("--models", default="models",
                        help="runs folder for the app (default: models)")
    parser.add_argument("--data-root", default="data",
                        help="dataset root for the app (default: data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.register(sub)
    runs.register(sub)
    report.register(sub)
    prepare.register(sub)
    predict.register(sub)
    data.register(sub)
    presets.register(sub)
    logs.register(sub)
    check.register(sub)
    export.register(sub)
    sweep.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from prunetui.app import launch_app

        return launch_app(models_dir=args.models, data_root=args.data_root)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

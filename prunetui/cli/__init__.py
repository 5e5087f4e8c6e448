"""Command line: ``prunetui`` opens the app; subcommands run the same engine headless.

Each subcommand lives in its own module exposing ``register(subparsers)``; handlers return an
exit code. Expected problems (bad config, missing data, full disk) are printed as one paragraph
and exit with code 2 (usage/input) or 1 (runtime), never as a traceback.

``prunetui`` with no command (at most the app's own options) opens the app without importing
the subcommand modules: some import numpy and PIL, which would delay the app's first paint.
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
    add_app_options(parser)
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


def add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="models",
                        help="runs folder for the app (default: models)")
    parser.add_argument("--data-root", default="data",
                        help="dataset root for the app (default: data)")


def app_only(argv: list[str] | None) -> argparse.Namespace | None:
    """The app's options when ``argv`` holds nothing else (no command, no --help/--version),
    else None: then the full parser reads it, errors and help included."""

    def refuse(message: str):
        raise argparse.ArgumentError(None, message)

    parser = argparse.ArgumentParser(prog="prunetui", add_help=False, exit_on_error=False)
    parser.error = refuse  # type: ignore[method-assign]
    add_app_options(parser)
    try:
        args, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    return None if rest else args


def main(argv: list[str] | None = None) -> int:
    args = app_only(sys.argv[1:] if argv is None else argv)
    if args is None:
        args = build_parser().parse_args(argv)
        if args.command is not None:
            return args.func(args)
    from prunetui.app import launch_app

    return launch_app(models_dir=args.models, data_root=args.data_root)


if __name__ == "__main__":
    sys.exit(main())

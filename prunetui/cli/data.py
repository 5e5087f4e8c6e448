"""``prunetui data``: see which datasets are present; import the MNIST-format IDX files or a
CIFAR archive offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from prunetui.cli.common import EXIT_OK, EXIT_USAGE, console, err_console, error
from prunetui.data import DataError


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset status and offline import")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = data_sub.add_parser("import", help="copy the four IDX .gz files of MNIST or "
                              "Fashion-MNIST from DIR, or extract a CIFAR-10/100 .tar.gz, into "
                              "the dataset root")
    imp.add_argument("dir", help="folder holding train-images-idx3-ubyte.gz and the other "
                     "three, or cifar-10-python.tar.gz / cifar-100-python.tar.gz")
    imp.add_argument("--root", default="data", help="dataset root (default: data)")
    imp.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist",
                     help="which dataset the files are (their names are the same)")
    imp.set_defaults(func=cmd_import)
    status = data_sub.add_parser("status", help="what is under the dataset root")
    status.add_argument("--root", default="data", help="dataset root (default: data)")
    status.set_defaults(func=cmd_status)


def cmd_import(args: argparse.Namespace) -> int:
    from prunetui.data.mnist import import_raw_files

    if Path(args.dir).is_file():
        return import_archive_file(args)
    try:
        copied = import_raw_files(args.dir, args.root, args.dataset)
    except (DataError, OSError) as e:
        return error(err_console(), str(e), EXIT_USAGE)
    console().print(f"Copied {len(copied)} files into {copied[0].parent}. "
                    f"Use data.dataset = \"{args.dataset}\", data.root = \"{args.root}\".")
    return EXIT_OK


def import_archive_file(args: argparse.Namespace) -> int:
    from prunetui.data.cifar import import_archive

    try:
        dataset, folder = import_archive(args.dir, args.root)
    except (DataError, OSError) as e:
        return error(err_console(), str(e), EXIT_USAGE)
    console().print(f"Extracted {dataset} into {folder} (checksums verified). "
                    f"Use data.dataset = \"{dataset}\", data.root = \"{args.root}\".")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from prunetui.data.inventory import scan_root

    table = Table(title=f"Datasets under {args.root}")
    for col in ("dataset", "status", "details"):
        table.add_column(col)
    for entry in scan_root(args.root):
        table.add_row(entry.name, entry.status, entry.details)
    console().print(table)
    return EXIT_OK

"""``prunetui predict MODEL.pt INPUT...``: name what an exported model sees in images.

The engine is :func:`prunetui.predict.predict_images`; this module parses options, draws a
progress bar on a terminal, prints one line per face (or image), the accuracy and a confusion
summary for labelled inputs, the skipped files in ``prepare``'s style, and writes ``--csv``.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prunetui.cli.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, console, err_console, error

if TYPE_CHECKING:
    from prunetui.predict import Accuracy, Face, Prediction, Progress

SKIPPED_SHOWN = 20  # skipped files listed one per line; the reasons are counted for all
CLASSES_SHOWN = 20  # rows of the confusion summary (the least accurate classes first)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify image files or folders with an exported model",
        description="Print the top-K class names and probabilities of each image (MNIST, "
        "image-folder and CIFAR models: each image is read, resized and normalized as the "
        "run's evaluation did it) or of each face found in each photo (face models: MTCNN "
        "with the settings prunetui prepare used, recorded in the export). Images in folders "
        "named after the model's classes are labelled by them: accuracy (by split for the "
        "run's own face or image folder) and a confusion summary follow. Exit code 2 for a "
        "bad model file or no usable input.")
    p.add_argument("model", metavar="MODEL", help="a file written by prunetui export")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image files or folders")
    p.add_argument("--top", type=int, default=3, metavar="K",
                   help="names shown per image or face (default: 3)")
    p.add_argument("--csv", metavar="FILE", help="also write every prediction to FILE")
    p.add_argument("--faces", choices=("all", "largest"), default=None,
                   help="face models: every face of a photo, or only the largest (default: "
                   "all); accuracy counts a photo by its largest face")
    p.add_argument("--prepared", action="store_true",
                   help="face models: the inputs are already face crops (prunetui prepare's "
                   "output): classify them whole. Folders holding prepare_report.json are "
                   "taken as prepared without it")
    p.add_argument("--quiet", action="store_true",
                   help="no line per image: only accuracy, confusions and skipped files")
    p.set_defaults(func=cmd_predict)


@contextmanager
def _progress(err: Console) -> Iterator[Progress]:
    """A transient Rich bar on a terminal; nothing otherwise."""
    if not err.is_terminal:
        yield lambda done, total, name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=err, transient=True) as bar:
        task = bar.add_task("", total=None)
        yield lambda done, total, name: bar.update(task, completed=done, total=total,
                                                   description=escape(name))


def cmd_predict(args: argparse.Namespace) -> int:
    out, err = console(highlight=False), err_console()
    if args.top < 1:
        return error(err, f"--top {args.top}: give at least 1.", EXIT_USAGE)
    from prunetui.export import ExportError, load_pruned
    from prunetui.predict import predict_images

    try:
        model = load_pruned(args.model)
    except ExportError as e:
        return error(err, str(e), EXIT_USAGE)
    with _progress(err) as progress:
        result = predict_images(model, args.inputs, top=args.top, faces=args.faces,
                                prepared=True if args.prepared else None, on_progress=progress)
    for note in result.notes:
        out.print(note, markup=False)
    if result.settings is not None and any(f.box for r in result.images for f in r.faces):
        s = result.settings
        out.print(f"Faces found as prunetui prepare found them: margin {s.margin}, min face "
                  f"{s.min_face_size} px, min confidence {s.min_confidence}, {s.faces} faces, "
                  f"{s.output_size} px crops.", markup=False)
    if not args.quiet:
        print_lines(out, result)
    accuracy = result.accuracy()
    if accuracy is not None:
        print_accuracy(out, accuracy, model.meta.get("test_acc"))
    print_skipped(out, result)
    if args.csv:
        try:
            write_csv(Path(args.csv), result, args.top)
        except OSError as e:
            return error(err, f"Cannot write {args.csv}: {e.strerror or e}.", EXIT_RUNTIME)
        out.print(f"Wrote {args.csv}.", markup=False)
    if result.problem:
        return error(err, result.problem, EXIT_USAGE)
    return EXIT_OK


def _names(face: Face) -> str:
    return "  ".join(f"{name} {100 * p:.1f}%" for name, p in face.top)


def print_lines(out: Console, result: Prediction) -> None:
    for r in result.images:
        for i, face in enumerate(r.faces):
            where = ""
            if face.box is not None:
                x1, y1, x2, y2 = face.box
                where = (f" face {i + 1}/{len(r.faces)} box {x1},{y1},{x2},{y2} "
                         f"(p={face.confidence:.3f})")
            out.print(f"{r.name}{where}: {_names(face)}", markup=False, soft_wrap=True)


def print_accuracy(out: Console, acc: Accuracy, test_acc: float | None) -> None:
    parts = "; ".join(f"{part} {100 * c / t:.2f}% ({c}/{t})" for part, (c, t) in
                      acc.parts.items())
    out.print(f"Accuracy: {100 * acc.value:.2f}% ({acc.correct} of {acc.total} labelled "
              f"images){f'; by split: {parts}' if parts else ''}.", markup=False)
    if isinstance(test_acc, (int, float)):
        out.print(f"The exported weights scored {100 * test_acc:.2f}% on the run's test set.",
                  markup=False)
    rows = sorted(acc.per_class.items(), key=lambda kv: (kv[1].correct / kv[1].images, kv[0]))
    if not any(s.taken_for for _, s in rows):
        return
    table = Table(title="Confusions (least accurate classes first)")
    for col in ("class", "images", "correct", "accuracy"):
        table.add_column(col, justify="left" if col == "class" else "right")
    table.add_column("taken for")
    for name, s in rows[:CLASSES_SHOWN]:
        wrong = sorted(s.taken_for.items(), key=lambda kv: (-kv[1], kv[0]))
        table.add_row(escape(name), str(s.images), str(s.correct),
                      f"{100 * s.correct / s.images:.1f}%",
                      escape(", ".join(f"{n} {k}" for n, k in wrong[:3])))
    if len(rows) > CLASSES_SHOWN:
        table.add_row(f"... {len(rows) - CLASSES_SHOWN} more", "", "", "", "")
    out.print(table)


def print_skipped(out: Console, result: Prediction) -> None:
    for s in result.skipped[:SKIPPED_SHOWN]:
        out.print(f"  skipped {s.path}: {s.reason} - {s.message}", markup=False,
                  soft_wrap=True)
    if len(result.skipped) > SKIPPED_SHOWN:
        out.print(f"  ... and {len(result.skipped) - SKIPPED_SHOWN} more skipped files.")
    if result.skipped or result.ignored:
        reasons = ", ".join(f"{r} {n}" for r, n in result.skipped_by_reason.items())
        ignored = f"; {result.ignored} non-image files ignored" if result.ignored else ""
        out.print(f"{len(result.images)} images classified ({result.faces} predictions), "
                  f"{len(result.skipped)} skipped{f' ({reasons})' if reasons else ''}{ignored}.",
                  markup=False)


def write_csv(path: Path, result: Prediction, top: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "face", "x1", "y1", "x2", "y2", "confidence", "label", "part",
                    *(f"{k}{i}" for i in range(1, top + 1) for k in ("name", "p"))])
        for r in result.images:
            for i, face in enumerate(r.faces):
                box = list(face.box) if face.box else ["", "", "", ""]
                conf = "" if face.confidence is None else f"{face.confidence:.4f}"
                w.writerow([str(r.path), i if face.box else "", *box, conf, r.label or "",
                            r.part or "",
                            *(v for name, p in face.top for v in (name, f"{p:.6f}"))])
        for s in result.skipped:
            w.writerow([s.path, "", "", "", "", "", "", "", "", f"skipped: {s.reason}"])

"""Face preparation: ``SRC/<person>/<photo>`` -> ``DST/<person>/<name>.png`` (an ImageFolder).

Each face is a square around the MTCNN detection, grown on every side by ``margin`` x the box's
longer side, cut from the full-resolution photo (shifted inside the photo when it fits, padded
black when it does not), converted to 8-bit gray ("L") and resized to 144x144. Photos larger
than 1024 px are searched on a smaller copy (JPEGs decoded at reduced scale), then cropped from
the original.

Output names are deterministic and never collide, because a file name is unique in its folder
and the photo's extension is kept:
    --faces largest   ``<photo file name>.png``           a.jpg -> a.jpg.png, a.png -> a.png.png
    --faces all       ``<photo file name>_<i>.png``       a.jpg -> a.jpg_0.png, a.jpg_1.png, ...
                      (i orders the faces by box area, largest first)

DST also holds
    prepare_report.json     per-person counts and every skipped file with a reason (REASONS)
    .prepare_journal.jsonl  a header (SRC, settings, batch size), then one line per finished
                            photo (its size and mtime, outputs or skip reason, batch key),
                            appended and fsynced per batch.
A re-run skips photos already in the journal, so an interrupted run continues; batches are
planned over the whole listing and a DST keeps its first batch size, so the result equals one
uninterrupted run byte for byte. A changed photo is redone, a removed photo's outputs deleted.
PNGs are written to a temp file and renamed, so a kill never leaves half an image.

This package imports no torch until a photo needs detecting, and no Rich or Textual at all.
Its modules, in the order a photo meets them:
    settings  the options (Settings), PrepareError      skips    REASONS and Skip
    scan      SRC and DST checks, the listing           journal  the resumable journal
    decode    any image to upright 8-bit RGB            detect   MTCNN, and which faces are kept
    mtcnn     facenet-pytorch's MTCNN class, imported without torch._dynamo (a faster start)
    crop      the square around a face                  output   DST's files, lock and tidying
    report    prepare_report.json                       run      batches, workers, prepare_faces
"""

from prunetui.data.prepare.crop import crop_face, square_box
from prunetui.data.prepare.decode import (
    DETECT_MAX_SIDE,
    MIN_DETECT_FACE,
    Loaded,
    header_key,
    load_for_detection,
    load_photo,
    to_rgb,
)
from prunetui.data.prepare.detect import Detection, FaceDetector, choose_faces, device_name
from prunetui.data.prepare.journal import FORMAT, JOURNAL_FILE, Journal, Outcome
from prunetui.data.prepare.output import IMAGE_EXTENSIONS, describe_prepared, output_names
from prunetui.data.prepare.report import REPORT_FILE, PersonCounts, PrepareReport, build_report
from prunetui.data.prepare.run import MAX_WORKERS, default_workers, plan_batches, prepare_faces
from prunetui.data.prepare.scan import Photo, Scan, check_paths, scan_source
from prunetui.data.prepare.settings import (
    OUTPUT_SIZE,
    PrepareError,
    Settings,
    default_min_face_size,
)
from prunetui.data.prepare.skips import REASONS, Skip, SkippedFile

__all__ = [
    "DETECT_MAX_SIDE",
    "FORMAT",
    "IMAGE_EXTENSIONS",
    "JOURNAL_FILE",
    "MAX_WORKERS",
    "MIN_DETECT_FACE",
    "OUTPUT_SIZE",
    "REASONS",
    "REPORT_FILE",
    "Detection",
    "FaceDetector",
    "Journal",
    "Loaded",
    "Outcome",
    "PersonCounts",
    "Photo",
    "PrepareError",
    "PrepareReport",
    "Scan",
    "Settings",
    "Skip",
    "SkippedFile",
    "build_report",
    "check_paths",
    "choose_faces",
    "crop_face",
    "default_min_face_size",
    "default_workers",
    "describe_prepared",
    "device_name",
    "header_key",
    "load_for_detection",
    "load_photo",
    "output_names",
    "plan_batches",
    "prepare_faces",
    "scan_source",
    "square_box",
    "to_rgb",
]

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

This module imports no torch until a photo needs detecting, and no Rich or Textual at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from prunetui.events import EventSink, Log, PrepareFinished, PrepareProgress, PrepareStarted, ignore
from prunetui.store import StoreError, atomic_write_text, read_jsonl

OUTPUT_SIZE = 144
DETECT_MAX_SIDE = 1024  # larger photos are searched on a copy this size, cropped from the original
MIN_DETECT_FACE = 20  # facenet-pytorch's default minimum; the floor on a downscaled copy
REPORT_FILE = "prepare_report.json"
JOURNAL_FILE = ".prepare_journal.jsonl"
FORMAT = 1
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp")

REASONS: dict[str, str] = {
    "hidden": "hidden file or folder (its name starts with a dot)",
    "outside_person_folder": "file directly in SRC, not in a person folder",
    "subfolder": "folder inside a person folder (only SRC/<person>/<file> is read)",
    "not_a_file": "not a regular file (broken link, socket, device...)",
    "empty_file": "empty file (0 bytes)",
    "unreadable": "cannot be read (permissions or I/O error)",
    "not_an_image": "not an image Pillow can read",
    "corrupt": "truncated or corrupt image, or an unsupported variant of its format",
    "too_large": "more pixels than Pillow's decompression-bomb limit",
    "too_small": "smaller than the minimum face size",
    "no_face": "no face found",
    "low_confidence": "faces found, none above the minimum confidence",
    "detect_failed": "the face detector failed on this image",
}


class PrepareError(ValueError):
    """Unusable input or options; the message says what to change."""


class Skip(Exception):
    """A photo left out, with a reason code (a key of REASONS) and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def default_min_face_size(output_size: int = OUTPUT_SIZE) -> int:
    """A third of the output: smaller faces would be upscaled more than 3x into blur."""
    return output_size // 3


@dataclass(frozen=True)
class Settings:
    """What decides the outputs; a DST is only ever continued with the same settings."""

    faces: str = "largest"
    margin: float = 0.2
    min_confidence: float = 0.9
    min_face_size: int = default_min_face_size()
    output_size: int = OUTPUT_SIZE

    def validate(self) -> None:
        if self.faces not in ("largest", "all"):
            raise PrepareError(f"--faces must be 'largest' or 'all', not {self.faces!r}.")
        if not 0 <= self.margin <= 2:
            raise PrepareError(f"--margin {self.margin} is outside 0..2 (a fraction of the box).")
        if not 0 <= self.min_confidence <= 1:
            raise PrepareError(f"--min-confidence {self.min_confidence} is outside 0..1.")
        if self.min_face_size < 12:
            raise PrepareError(f"--min-face-size {self.min_face_size} is below 12 px, the "
                               "smallest face MTCNN can find.")


@dataclass(frozen=True)
class Photo:
    person: str
    name: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def rel(self) -> str:
        return f"{self.person}/{self.name}"


@dataclass
class Outcome:
    """One journal line: a finished photo and what came of it."""

    path: str
    size: int
    mtime_ns: int
    faces: list[str]
    reason: str | None = None
    message: str = ""
    key: list[int] | None = None  # header size: which batch the photo belongs to


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to SRC
    reason: str  # a key of REASONS
    message: str


@dataclass
class PersonCounts:
    photos: int = 0  # entries in the folder: each gave faces or is skipped with a reason
    faces_saved: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class PrepareReport:
    src: str
    dst: str
    settings: Settings
    people: dict[str, PersonCounts]
    skipped: list[SkippedFile]
    photos: int  # every entry looked at, files directly in SRC included
    pending: int = 0  # photos left for a later run (cancelled)
    processed: int = 0  # photos worked on by this run
    reused: int = 0  # photos finished by an earlier run
    cancelled: bool = False
    seconds: float = 0.0
    device: str | None = None  # None when no photo needed the detector

    @property
    def faces_saved(self) -> int:
        return sum(p.faces_saved for p in self.people.values())

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s.reason] = counts.get(s.reason, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def people_without_faces(self) -> list[str]:
        return [name for name, p in self.people.items() if p.faces_saved == 0]

    @property
    def report_path(self) -> Path:
        return Path(self.dst) / REPORT_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "src": self.src, "dst": self.dst, "complete": not self.pending,
            "settings": asdict(self.settings),
            "totals": {"photos": self.photos, "faces_saved": self.faces_saved,
                       "skipped": len(self.skipped), "pending": self.pending,
                       "skipped_by_reason": self.skipped_by_reason},
            "run": {"processed": self.processed, "reused": self.reused,
                    "cancelled": self.cancelled, "seconds": round(self.seconds, 3),
                    "device": self.device},
            "people": {name: asdict(p) for name, p in self.people.items()},
            "people_without_faces": self.people_without_faces,
            "skipped": [asdict(s) for s in self.skipped],
            "reasons": REASONS,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def describe_prepared(dst: str | Path) -> list[tuple[str, int]]:
    """(person, image count) of a prepared folder, people without images left out."""
    root = Path(dst)
    if not root.is_dir():
        return []
    counts = []
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        n = sum(1 for f in person.iterdir()
                if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith("."))
        if n:
            counts.append((person.name, n))
    return counts


def output_names(photo_name: str, count: int, faces: str) -> list[str]:
    if faces == "largest":
        return [f"{photo_name}.png"][:count]
    return [f"{photo_name}_{i}.png" for i in range(count)]


# --- SRC and DST ----------------------------------------------------------------------------


def check_paths(src: str | Path, dst: str | Path) -> tuple[Path, Path]:
    s, d = Path(src).expanduser(), Path(dst).expanduser()
    if not s.exists():
        raise PrepareError(f"SRC {s} does not exist. Give a folder of person folders, "
                           "SRC/<person>/<photo>.")
    if not s.is_dir():
        raise PrepareError(f"SRC {s} is a file, not a folder of person folders "
                           "(SRC/<person>/<photo>).")
    rs, rd = s.resolve(), d.resolve()
    if rd.is_relative_to(rs):
        raise PrepareError(f"DST {d} is inside SRC {s}. SRC is never written to, so choose a DST "
                           f"outside it, e.g. {s.parent / (s.name + '-faces')}.")
    if rs.is_relative_to(rd):
        raise PrepareError(f"SRC {s} is inside DST {d}; DST's folders become classes, so choose "
                           "a DST that does not contain SRC.")
    if d.exists() and not d.is_dir():
        raise PrepareError(f"DST {d} is a file; give a folder (it is created if missing).")
    if d.is_dir() and not (d / JOURNAL_FILE).exists() and any(d.iterdir()):
        raise PrepareError(f"DST {d} is not empty and was not made by prunetui prepare (it has "
                           f"no {JOURNAL_FILE}). Choose an empty or new folder.")
    return s, d


@dataclass
class Scan:
    people: list[str]
    photos: list[Photo]
    skipped: list[SkippedFile]  # decided from the listing alone


def _sorted_entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir(), key=lambda p: p.name)


def _listing_skip(entry: Path, rel: str, in_person: bool) -> SkippedFile | None:
    if entry.name.startswith("."):
        return SkippedFile(rel, "hidden", f"{REASONS['hidden']}; skipped by design")
    if not in_person:
        return None if entry.is_dir() else SkippedFile(
            rel, "outside_person_folder", f"{REASONS['outside_person_folder']}; move it into "
            "SRC/<person>/ to use it")
    if entry.is_dir():
        return SkippedFile(rel, "subfolder", REASONS["subfolder"])
    if not entry.is_file():
        return SkippedFile(rel, "not_a_file", REASONS["not_a_file"])
    return None


def scan_source(src: Path) -> Scan:
    scan = Scan([], [], [])
    try:
        folders = _sorted_entries(src)
    except OSError as err:
        raise PrepareError(f"SRC {src} cannot be listed ({err.strerror or err}).") from err
    for folder in folders:
        skip = _listing_skip(folder, folder.name, in_person=False)
        if skip:
            scan.skipped.append(skip)
            continue
        try:
            entries = _sorted_entries(folder)
        except OSError as err:
            scan.skipped.append(SkippedFile(folder.name, "unreadable", str(err)))
            continue
        scan.people.append(folder.name)
        for entry in entries:
            rel = f"{folder.name}/{entry.name}"
            skip = _listing_skip(entry, rel, in_person=True)
            try:
                st = None if skip else entry.stat()
            except OSError as err:
                skip = SkippedFile(rel, "unreadable", str(err))
            if skip:
                scan.skipped.append(skip)
            elif st is not None:
                scan.photos.append(Photo(folder.name, entry.name, entry, st.st_size,
                                         st.st_mtime_ns))
    if not scan.people:
        loose = sum(1 for s in scan.skipped if s.reason == "outside_person_folder")
        raise PrepareError(f"SRC {src} holds no person folders ({loose} files lie directly in "
                           "it). Put each person's photos in a folder named after them: "
                           "SRC/<person>/<photo>.")
    return scan


# --- the journal ----------------------------------------------------------------------------


class Journal:
    """Finished photos of a DST, keyed by path relative to SRC (see the module docstring)."""

    def __init__(self, src: Path, dst: Path, settings: Settings, batch_size: int) -> None:
        self.path = dst / JOURNAL_FILE
        self.header = {"format": FORMAT, "src": str(src.resolve()), "settings": asdict(settings),
                       "batch_size": batch_size}
        self.records: dict[str, Outcome] = {}
        self._lines: list[str] = []
        self._fh: Any = None
        if self.path.exists():
            self._load()

    @property
    def batch_size(self) -> int:
        return int(self.header["batch_size"])

    def _load(self) -> None:
        lines = read_jsonl(self.path)
        if not lines:  # emptied by a power cut before its first fsync: start afresh
            return
        head = lines[0]
        if [head.get("format"), head.get("settings")] != [FORMAT, self.header["settings"]]:
            raise PrepareError(_settings_mismatch(self.path.parent, lines[:1], self.header))
        if head.get("src") != self.header["src"]:  # else its photos would count as removed
            raise PrepareError(f"DST {self.path.parent} was prepared from {head.get('src')}, not "
                               f"{self.header['src']}. Use a new DST for another SRC (or delete "
                               "this one to start over).")
        # why: batches shape the detections a little, so a DST keeps its first batch size
        self.header["batch_size"] = head.get("batch_size", self.batch_size)
        for rec in lines[1:]:
            with contextlib.suppress(TypeError, KeyError):
                self.records[rec["path"]] = Outcome(**rec)

    def rewrite(self, keep: Sequence[str]) -> None:
        """Keep only ``keep``'s records, one line each (drops superseded and torn lines)."""
        self.records = {k: self.records[k] for k in keep if k in self.records}
        lines = [self.header, *(asdict(r) for r in self.records.values())]
        atomic_write_text(self.path, "".join(json.dumps(x, ensure_ascii=False) + "\n"
                                             for x in lines))

    def add(self, outcome: Outcome) -> Outcome | None:
        """Record ``outcome`` (written at the next flush); returns the record it replaces."""
        self._lines.append(json.dumps(asdict(outcome), ensure_ascii=False) + "\n")
        previous = self.records.get(outcome.path)
        self.records[outcome.path] = outcome
        return previous

    def flush(self) -> None:
        if not self._lines:
            return
        try:
            if self._fh is None:
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write("".join(self._lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as err:
            raise StoreError(f"Cannot write {self.path}: {err.strerror or err}. Free some space "
                             "or fix permissions, then run the same command again.") from err
        self._lines.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._fh is not None:
                self._fh.close()


def _settings_mismatch(dst: Path, found: list[dict[str, Any]], wanted: dict[str, Any]) -> str:
    old = found[0] if found else {}
    diff = [f"{k} {old.get('settings', {}).get(k)!r} -> {v!r}"
            for k, v in wanted["settings"].items() if old.get("settings", {}).get(k) != v]
    diff = diff or [f"journal format {old.get('format')!r} -> {FORMAT}"]
    return (f"DST {dst} was prepared with other settings ({', '.join(diff)}). Run again with "
            "the same options to continue it, or use a new DST (or delete this one) to start over.")


@contextlib.contextmanager
def _locked(dst: Path) -> Iterator[None]:
    """One prepare per DST at a time (an flock on the folder; no lock where fcntl is missing)."""
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PrepareError(f"Cannot create DST {dst}: {err.strerror or err}.") from err
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(dst, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PrepareError(f"Another prepare is writing {dst}; wait for it to end.") from None
        yield
    finally:
        os.close(fd)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _is_done(photo: Photo, rec: Outcome | None, dst: Path) -> bool:
    return (rec is not None and rec.size == photo.size and rec.mtime_ns == photo.mtime_ns
            and all(_nonempty(dst / photo.person / f) for f in rec.faces))


def _unlink_outputs(dst: Path, rel: str, names: Sequence[str]) -> None:
    person = rel.split("/", 1)[0]
    for name in names:
        (dst / person / name).unlink(missing_ok=True)


def _tidy(dst: Path, journal: Journal, scan: Scan) -> None:
    """Delete outputs of photos gone from SRC and temp files a kill left behind."""
    keep = [p.rel for p in scan.photos]
    unlisted = {s.path for s in scan.skipped if s.reason == "unreadable"}  # not gone: kept
    keep += [rel for rel in journal.records if rel.split("/", 1)[0] in unlisted]
    kept = set(keep)
    for rel, rec in journal.records.items():
        if rel not in kept:
            _unlink_outputs(dst, rel, rec.faces)
    journal.rewrite(keep)
    for folder in (dst, *(dst / p for p in scan.people)):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


# --- decoding -------------------------------------------------------------------------------


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Turn every way Pillow fails on a file into a Skip; silence its warnings (bad EXIF...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except Skip:
            raise
        except Image.DecompressionBombError as err:
            raise Skip("too_large", str(err)) from err
        except UnidentifiedImageError as err:
            raise Skip("not_an_image", f"{REASONS['not_an_image']} ({err})") from err
        except (PermissionError, FileNotFoundError, IsADirectoryError) as err:
            raise Skip("unreadable", f"{REASONS['unreadable']}: {err}") from err
        except Exception as err:  # why: a broken file of any kind must not stop the run
            raise Skip("corrupt", f"{type(err).__name__}: {err}") from err


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float gray scaled to 0..255 (Pillow's own convert clips at 255)."""
    a = np.asarray(img, dtype=np.float32)
    lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") else (float(a.min()), float(a.max()))
    a = (a - lo) * (255.0 / max(hi - lo, 1e-6))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode; transparency is flattened onto white."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return img.convert("RGB")


def _upright(img: Image.Image) -> Image.Image:
    """``img`` (loaded) turned as its EXIF orientation says."""
    with contextlib.suppress(Exception):  # why: a broken EXIF block should not cost the photo
        ImageOps.exif_transpose(img, in_place=True)
    return img


def load_photo(path: Path) -> Image.Image:
    """The photo upright (EXIF orientation applied), full resolution, 8-bit RGB."""
    with _decoding(), Image.open(path) as img:
        img.load()  # first frame of a GIF / animated WebP
        return to_rgb(_upright(img))


@dataclass
class Loaded:
    image: Image.Image  # what the detector sees: RGB, long side <= DETECT_MAX_SIDE
    size: tuple[int, int]  # the upright full-resolution size
    min_face: int  # the minimum face size in ``image``'s pixels

    @property
    def key(self) -> tuple[int, int, int]:
        """Photos with equal keys are detected together in one batch."""
        return (*self.image.size, self.min_face)

    @property
    def downscaled(self) -> bool:
        return self.image.size != self.size


def _detect_size(w: int, h: int) -> tuple[int, int]:
    scale = min(1.0, DETECT_MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def load_for_detection(photo: Photo, min_face_size: int) -> Loaded:
    """Decode a detection copy; huge JPEGs are decoded at reduced scale (Pillow's draft)."""
    with _decoding(), Image.open(photo.path) as img:
        w, h = img.size
        target = _detect_size(w, h)
        if target != (w, h):
            img.draft(None, target)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        img.load()
        stored = img.size
        image = to_rgb(_upright(img))
    size = (h, w) if image.size != stored else (w, h)  # orientations 5-8 swap the axes
    det = _detect_size(*size)
    if image.size != det:
        image = image.resize(det, Image.Resampling.BILINEAR)
    scale = det[0] / size[0]
    min_face = min_face_size if scale == 1 else max(round(min_face_size * scale),
                                                    min(min_face_size, MIN_DETECT_FACE))
    if min(det) < min_face:  # MTCNN would crash: its image pyramid would be empty
        raise Skip("too_small", f"{size[0]}x{size[1]} px is smaller than the minimum face size "
                                f"{min_face_size} px")
    return Loaded(image, size, min_face)


# --- detection and cropping -----------------------------------------------------------------

Detection = tuple[np.ndarray, np.ndarray]  # boxes (n, 4) as x1 y1 x2 y2, probabilities (n,)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except RuntimeError as err:
        raise PrepareError(f"--device {device!r} is not a torch device ({err}).") from err
    return device


class FaceDetector:
    """facenet-pytorch's MTCNN (its weights ship in the wheel) over lists of same-size images."""

    def __init__(self, device: str = "auto") -> None:
        import torch
        from facenet_pytorch import MTCNN

        self.device = resolve_device(device)
        try:
            self.mtcnn = MTCNN(keep_all=True, device=torch.device(self.device))
        except (RuntimeError, AssertionError) as err:
            raise PrepareError(f"--device {device!r} cannot be used here ({err}). Try "
                               "--device cpu.") from err

    def detect(self, images: Sequence[Image.Image], min_face: int) -> list[Detection | Skip]:
        self.mtcnn.min_face_size = min_face
        try:
            boxes, probs = self.mtcnn.detect(list(images))
        except Exception as err:  # why: one odd image must not sink its batch; retry one by one
            if len(images) > 1:
                return [r for im in images for r in self.detect([im], min_face)]
            return [Skip("detect_failed", f"{REASONS['detect_failed']}: {err}")]
        return [_as_arrays(b, p) for b, p in zip(boxes, probs, strict=True)]


def _as_arrays(boxes: Any, probs: Any) -> Detection:
    if boxes is None:
        return np.zeros((0, 4)), np.zeros(0)
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(probs, dtype=np.float64).reshape(-1))


def choose_faces(detection: Detection, settings: Settings) -> np.ndarray:
    """The boxes to save, largest first: one for "largest", every confident one for "all"."""
    boxes, probs = detection
    if len(boxes) == 0:
        raise Skip("no_face", f"no face of at least {settings.min_face_size} px found (a smaller "
                              "--min-face-size finds smaller faces)")
    confident = boxes[probs >= settings.min_confidence]
    if len(confident) == 0:
        raise Skip("low_confidence", f"{len(boxes)} face(s) found, best confidence "
                                     f"{probs.max():.3f} < {settings.min_confidence}")
    area = (confident[:, 2] - confident[:, 0]) * (confident[:, 3] - confident[:, 1])
    ordered = confident[np.argsort(-area, kind="stable")]
    return ordered[:1] if settings.faces == "largest" else ordered


def _place(start: float, side: int, length: int) -> int:
    """Shift a crop inside [0, length) when it fits; else center it on the photo."""
    if side >= length:
        return (length - side) // 2
    return min(max(round(start), 0), length - side)


def square_box(box: Sequence[float], size: tuple[int, int],
               margin: float) -> tuple[int, int, int, int]:
    """The square crop (left, top, right, bottom) around a face box in a photo of ``size``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, round(max(x2 - x1, y2 - y1) * (1 + 2 * margin)))
    left = _place((x1 + x2 - side) / 2, side, size[0])
    top = _place((y1 + y2 - side) / 2, side, size[1])
    return left, top, left + side, top + side


def crop_face(photo: Image.Image, box: Sequence[float], margin: float,
              output_size: int = OUTPUT_SIZE) -> Image.Image:
    square = photo.crop(square_box(box, photo.size, margin))  # black outside the photo
    return square.convert("L").resize((output_size, output_size), Image.Resampling.LANCZOS)


def _replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temp file and a rename, so a kill leaves no half file. No fsync (for
    PNGs it cost about a quarter of the run): the journal is fsynced, and an output that a power
    cut left empty is redone because _is_done checks sizes."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Cannot write {path}: {err.strerror or err}. Free some space or fix "
                         "permissions, then run the same command again.") from err


def _save_png(image: Image.Image, path: Path) -> None:
    _replace_file(path, lambda tmp: image.save(tmp, format="PNG"))


# --- the run --------------------------------------------------------------------------------


Key = tuple[int, int]  # a photo's stored pixel size, read from its header


def header_key(photo: Photo) -> Key:
    """The batching key: read from the header alone, so it costs no decoding."""
    if photo.size == 0:
        raise Skip("empty_file", REASONS["empty_file"])
    with _decoding(), Image.open(photo.path) as img:
        return img.size


def plan_batches(photos: Sequence[Photo], keys: dict[str, Key],
                 batch_size: int) -> list[list[Photo]]:
    """Same-key photos in listing order, cut into batches.

    Detection results depend slightly on what else is in the batch (a tie in MTCNN's
    non-maximum suppression moved one box by 5 px), so batches are a function of the whole
    listing, finished photos included: a resumed run detects exactly what one run would.
    """
    groups: dict[Key, list[Photo]] = {}
    for photo in photos:
        if photo.rel in keys:
            groups.setdefault(keys[photo.rel], []).append(photo)
    batches = [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]
    order = {photo.rel: i for i, photo in enumerate(photos)}
    return sorted(batches, key=lambda b: order[b[0].rel])


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


Result = tuple[Photo, list[str] | Skip]  # saved names, or why not


class _Run:
    """One pass over SRC's photos: batches are detected and saved in worker threads, while
    this thread journals them in order and sends the events."""

    def __init__(self, dst: Path, settings: Settings, journal: Journal, batch_size: int,
                 device: str, workers: int, on_event: EventSink,
                 should_stop: Callable[[], bool] | None) -> None:
        self.dst, self.settings, self.journal = dst, settings, journal
        self.batch_size, self.device, self.workers = batch_size, device, workers
        self.on_event, self.should_stop = on_event, should_stop or (lambda: False)
        self.resolved_device: str | None = None  # set once a batch needs the detector
        self.faces = sum(len(r.faces) for r in journal.records.values())
        self.total = self.done = self.processed = 0
        self.finished: set[str] = set()
        self.keys: dict[str, Key] = {}
        self._local = threading.local()

    def execute(self, photos: Sequence[Photo], finished: set[str]) -> bool:
        """Do every photo not in ``finished``; False when stopped early (between batches)."""
        self.total, self.done, self.finished = len(photos), len(finished), finished
        try:
            self._read_keys(photos)
            batches = [b for b in plan_batches(photos, self.keys, self.batch_size)
                       if not all(p.rel in finished for p in b)]
            return self._run_batches(batches) if batches else True
        finally:
            self.journal.close()

    def _read_keys(self, photos: Sequence[Photo]) -> None:
        for photo in photos:
            if photo.rel in self.finished:
                rec = self.journal.records[photo.rel]
                if rec.key is not None:
                    self.keys[photo.rel] = (rec.key[0], rec.key[1])
                continue
            try:
                self.keys[photo.rel] = header_key(photo)
            except Skip as skip:  # not an image at all: never part of a batch
                self._finish(photo, skip)
        self.journal.flush()

    def _run_batches(self, batches: list[list[Photo]]) -> bool:
        self.resolved_device = resolve_device(self.device)
        # No torch.set_num_threads in the workers: it also sets MKL's process-wide count, which
        # changed the float results of a training run in the same process.
        pool = ThreadPoolExecutor(self.workers)
        in_flight: deque[Future[list[Result]]] = deque()
        stopped = False
        try:
            for batch in batches:
                if self.should_stop():
                    stopped = True
                    break
                in_flight.append(pool.submit(self._work, batch))
                if len(in_flight) > self.workers:
                    self._collect(in_flight.popleft().result())
            while in_flight:  # batches under way are finished and kept, even when stopping
                self._collect(in_flight.popleft().result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return not stopped

    def _collect(self, results: list[Result]) -> None:
        for photo, outcome in results:
            self._finish(photo, outcome)
        self.journal.flush()  # after the PNGs: a journaled photo's outputs always exist

    # -- in worker threads -------------------------------------------------------------------

    def _detector(self) -> FaceDetector:
        if getattr(self._local, "detector", None) is None:
            self._local.detector = FaceDetector(self.resolved_device or self.device)
        return self._local.detector

    def _work(self, batch: list[Photo]) -> list[Result]:
        """Detect the whole batch (finished members too: they shape it), save the others."""
        results: list[Result] = []
        groups: dict[tuple[int, int, int], list[tuple[Photo, Loaded]]] = {}
        for photo in batch:
            try:
                loaded = load_for_detection(photo, self.settings.min_face_size)
            except Skip as skip:
                results.append((photo, skip))
                continue
            groups.setdefault(loaded.key, []).append((photo, loaded))
        for items in groups.values():  # EXIF rotation can split a batch
            found = self._detector().detect([loaded.image for _, loaded in items],
                                            items[0][1].min_face)
            for (photo, loaded), detection in zip(items, found, strict=True):
                if photo.rel not in self.finished:
                    results.append((photo, self._save_faces(photo, loaded, detection)))
        order = {photo.rel: i for i, photo in enumerate(batch)}
        return sorted(results, key=lambda r: order[r[0].rel])

    def _save_faces(self, photo: Photo, loaded: Loaded, detection: Detection | Skip,
                    ) -> list[str] | Skip:
        try:
            if isinstance(detection, Skip):
                raise detection
            boxes = choose_faces(detection, self.settings)
            full = load_photo(photo.path) if loaded.downscaled else loaded.image
            if full.size != loaded.size:
                raise Skip("corrupt", "the photo changed while it was being read")
        except Skip as skip:
            return skip
        sx, sy = (a / b for a, b in zip(loaded.size, loaded.image.size, strict=True))
        names = output_names(photo.name, len(boxes), self.settings.faces)
        for name, box in zip(names, boxes * [sx, sy, sx, sy], strict=True):  # full-size pixels
            face = crop_face(full, box, self.settings.margin, self.settings.output_size)
            _save_png(face, self.dst / photo.person / name)
        return names

    # -- back in the calling thread ----------------------------------------------------------

    def _finish(self, photo: Photo, outcome: list[str] | Skip) -> None:
        if photo.rel in self.finished:
            return
        names = [] if isinstance(outcome, Skip) else outcome
        skip = outcome if isinstance(outcome, Skip) else None
        key = self.keys.get(photo.rel)
        record = Outcome(photo.rel, photo.size, photo.mtime_ns, names,
                         skip.reason if skip else None, skip.message if skip else "",
                         list(key) if key else None)
        previous = self.journal.add(record)
        if previous:  # a changed photo: drop outputs it no longer produces
            _unlink_outputs(self.dst, photo.rel, [f for f in previous.faces if f not in names])
            self.faces -= len(previous.faces)
        self.done += 1
        self.processed += 1
        self.faces += len(names)
        self.on_event(PrepareProgress(done=self.done, total=self.total, person=photo.person,
                                      file=photo.name, faces_saved=self.faces,
                                      skipped_reason=record.reason))


def _person_of(rel: str) -> str | None:
    return rel.split("/", 1)[0] if "/" in rel else None


def build_report(src: Path, dst: Path, settings: Settings, scan: Scan,
                 records: dict[str, Outcome]) -> PrepareReport:
    people = {name: PersonCounts() for name in scan.people}
    skipped = list(scan.skipped)
    pending = 0
    for photo in scan.photos:
        rec = records.get(photo.rel)
        if rec is None or (rec.size, rec.mtime_ns) != (photo.size, photo.mtime_ns):
            pending += 1
        elif rec.reason:
            skipped.append(SkippedFile(rec.path, rec.reason, rec.message))
        else:
            people[photo.person].faces_saved += len(rec.faces)
    for rel in [p.rel for p in scan.photos] + [s.path for s in scan.skipped]:
        if (person := _person_of(rel)) in people:
            people[person].photos += 1
    for s in skipped:
        if (person := _person_of(s.path)) in people:
            counts = people[person].skipped
            counts[s.reason] = counts.get(s.reason, 0) + 1
    skipped.sort(key=lambda s: s.path)
    photos = len(scan.photos) + len(scan.skipped)
    return PrepareReport(str(src), str(dst), settings, people, skipped, photos, pending)


def _remove_empty_person_dirs(dst: Path, people: Sequence[str]) -> None:
    """ImageFolder rejects a class folder without images, so none is left behind."""
    for person in people:
        with contextlib.suppress(OSError):
            (dst / person).rmdir()  # only succeeds when empty


def prepare_faces(src: str | Path, dst: str | Path, *, faces: str = "largest",
                  margin: float = 0.2, min_confidence: float = 0.9,
                  min_face_size: int | None = None, batch_size: int = 8, device: str = "auto",
                  workers: int | None = None, on_event: EventSink = ignore,
                  should_stop: Callable[[], bool] | None = None) -> PrepareReport:
    """Detect, crop and save the faces of ``src`` into ``dst``; resumable and idempotent.

    ``should_stop`` is polled between batches; on True the run ends cleanly with
    ``report.cancelled`` set and the rest left for the next call. Raises PrepareError for
    unusable input and StoreError when DST cannot be written. ``workers`` detection threads
    (default: up to 4, one per core) each run torch with one thread.
    """
    started = time.monotonic()
    settings = Settings(faces, float(margin), float(min_confidence),
                        int(min_face_size or default_min_face_size()))
    settings.validate()
    if batch_size < 1 or (workers is not None and workers < 1):
        raise PrepareError(f"--batch-size ({batch_size}) and workers ({workers}) must be at "
                           "least 1.")
    src_path, dst_path = check_paths(src, dst)
    scan = scan_source(src_path)
    with _locked(dst_path):
        journal = Journal(src_path, dst_path, settings, batch_size)
        _tidy(dst_path, journal, scan)
        finished = {p.rel for p in scan.photos
                    if _is_done(p, journal.records.get(p.rel), dst_path)}
        on_event(PrepareStarted(src=str(src_path), dst=str(dst_path), total=len(scan.photos),
                                people=len(scan.people)))
        if finished:
            on_event(Log(f"{len(finished)} of {len(scan.photos)} photos were already prepared; "
                         f"{len(scan.photos) - len(finished)} to go."))
        if journal.batch_size != batch_size:
            on_event(Log(f"Continuing with batch size {journal.batch_size}, the size {dst_path} "
                         "was started with, so the result equals one uninterrupted run.",
                         level="warning"))
        run = _Run(dst_path, settings, journal, journal.batch_size, device,
                   workers or default_workers(), on_event, should_stop)
        complete = run.execute(scan.photos, finished)
        report = build_report(src_path, dst_path, settings, scan, journal.records)
        _remove_empty_person_dirs(dst_path, report.people_without_faces)
        report.processed, report.reused = run.processed, len(finished)
        report.cancelled = not complete
        report.device = run.resolved_device
        report.seconds = time.monotonic() - started
        text = report.to_json()
        _replace_file(report.report_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    on_event(PrepareFinished(dst=str(dst_path), report_path=str(report.report_path),
                             photos=report.photos, faces_saved=report.faces_saved,
                             skipped=len(report.skipped), cancelled=report.cancelled))
    return report

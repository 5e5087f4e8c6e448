"""DST's files: output names, temp-and-rename writes, the lock, and tidying after SRC changed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from PIL import Image

from prunetui.data.prepare.journal import Journal, Outcome
from prunetui.data.prepare.scan import Photo, Scan
from prunetui.data.prepare.settings import PrepareError
from prunetui.store import StoreError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


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


@contextlib.contextmanager
def locked(dst: Path) -> Iterator[None]:
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


def is_done(photo: Photo, rec: Outcome | None, dst: Path) -> bool:
    return (rec is not None and rec.size == photo.size and rec.mtime_ns == photo.mtime_ns
            and all(_nonempty(dst / photo.person / f) for f in rec.faces))


def unlink_outputs(dst: Path, rel: str, names: Sequence[str]) -> None:
    person = rel.split("/", 1)[0]
    for name in names:
        (dst / person / name).unlink(missing_ok=True)


def tidy(dst: Path, journal: Journal, scan: Scan) -> None:
    """Delete outputs of photos gone from SRC and temp files a kill left behind."""
    keep = [p.rel for p in scan.photos]
    unlisted = {s.path for s in scan.skipped if s.reason == "unreadable"}  # not gone: kept
    keep += [rel for rel in journal.records if rel.split("/", 1)[0] in unlisted]
    kept = set(keep)
    for rel, rec in journal.records.items():
        if rel not in kept:
            unlink_outputs(dst, rel, rec.faces)
    journal.rewrite(keep)
    for folder in (dst, *(dst / p for p in scan.people)):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temp file and a rename, so a kill leaves no half file. No fsync (for
    PNGs it cost about a quarter of the run): the journal is fsynced, and an output that a power
    cut left empty is redone because is_done checks sizes."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Cannot write {path}: {err.strerror or err}. Free some space or fix "
                         "permissions, then run the same command again.") from err


def save_png(image: Image.Image, path: Path) -> None:
    """Fast zlib level 1: a 144x144 face took 0.6 ms instead of 1.7 ms, for 13% more bytes."""
    replace_file(path, lambda tmp: image.save(tmp, format="PNG", compress_level=1))


def remove_empty_person_dirs(dst: Path, people: Sequence[str]) -> None:
    """ImageFolder rejects a class folder without images, so none is left behind."""
    for person in people:
        with contextlib.suppress(OSError):
            (dst / person).rmdir()  # only succeeds when empty

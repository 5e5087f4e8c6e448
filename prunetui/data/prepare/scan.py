"""Checking SRC and DST, and listing SRC/<person>/<photo> (skips decided by the listing alone)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prunetui.data.prepare.journal import JOURNAL_FILE
from prunetui.data.prepare.settings import PrepareError
from prunetui.data.prepare.skips import REASONS, SkippedFile


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

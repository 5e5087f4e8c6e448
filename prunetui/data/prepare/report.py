"""DST/prepare_report.json: per-person counts and every skipped file with its reason."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prunetui.data.prepare.journal import FORMAT, Outcome
from prunetui.data.prepare.scan import Scan
from prunetui.data.prepare.settings import Settings
from prunetui.data.prepare.skips import REASONS, SkippedFile

REPORT_FILE = "prepare_report.json"


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

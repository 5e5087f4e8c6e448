"""DST/.prepare_journal.jsonl: a header, then one fsynced line per finished photo."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prunetui.data.prepare.settings import PrepareError, Settings
from prunetui.store import StoreError, atomic_write_text, read_jsonl

JOURNAL_FILE = ".prepare_journal.jsonl"
FORMAT = 1


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

"""What is under a dataset root, without importing torch (for ``data status`` and the app)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prunetui.data.mnist import FOLDERS, RAW_FILES, missing_files, raw_dir


@dataclass(frozen=True)
class DatasetEntry:
    name: str  # "mnist", "fashion-mnist" or a prepared face folder's name
    kind: str  # "idx" | "faces"
    status: str  # "present" | "missing" | "prepared"
    details: str
    path: str


def how_to_get(root: str | Path, dataset: str) -> str:
    flag = "" if dataset == "mnist" else f" --dataset {dataset}"
    return (f"put {', '.join(RAW_FILES)} in {raw_dir(root, dataset)}/ (or run: prunetui data "
            f"import DIR --root {root}{flag}); online, the first run downloads them")


def _idx_entry(root: Path, dataset: str) -> DatasetEntry:
    missing = missing_files(root, dataset)
    if missing:
        return DatasetEntry(dataset, "idx", "missing", how_to_get(root, dataset),
                            str(raw_dir(root, dataset)))
    return DatasetEntry(dataset, "idx", "present", "60,000 train / 10,000 test images",
                        str(raw_dir(root, dataset)))


def _face_entry(folder: Path) -> DatasetEntry | None:
    # A person is a visible folder holding prepared PNGs, as the faces loader counts them.
    folders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    counts = [n for p in folders
              if (n := sum(1 for f in p.iterdir() if f.suffix.lower() == ".png"))]
    if not counts:
        return None
    details = f"{len(counts)} people, {sum(counts)} images"
    split = folder / "split.json"
    if split.is_file():
        try:
            fractions = json.loads(split.read_text()).get("fractions")
            details += f", split {fractions}"
        except (OSError, json.JSONDecodeError):
            details += ", split.json unreadable"
    return DatasetEntry(folder.name, "faces", "prepared", details, str(folder))


def scan_root(root: str | Path) -> list[DatasetEntry]:
    root = Path(root)
    entries = [_idx_entry(root, d) for d in FOLDERS]
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name in FOLDERS.values() or folder.name.startswith("."):
                continue
            entry = _face_entry(folder)
            if entry:
                entries.append(entry)
    return entries

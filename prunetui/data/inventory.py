"""What is under a dataset root, without importing torch (for ``data status`` and the app)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prunetui.data.mnist import FOLDERS, RAW_FILES, missing_files, raw_dir

# Mirrors of prunetui.data.cifar.FOLDERS and prunetui.data.folder.SPLIT_DIRS: importing those
# modules would import torch, and this one must not.
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
SPLIT_DIRS = ("train", "val", "test")
LISTED = 6  # classes named in an entry's details


@dataclass(frozen=True)
class DatasetEntry:
    name: str  # "mnist", "fashion-mnist", "cifar10", "cifar100" or a folder's name
    kind: str  # "idx" | "faces" | "folder" | "cifar"
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


def _class_counts(folder: Path) -> dict[str, int]:
    """Visible files per visible class folder (nothing decoded: odd files count too)."""
    return {c.name: sum(1 for f in c.iterdir() if not f.name.startswith(".") and f.is_file())
            for c in sorted(folder.iterdir()) if c.is_dir() and not c.name.startswith(".")}


def _counts_text(counts: dict[str, int]) -> str:
    shown = ", ".join(f"{name} {n}" for name, n in list(counts.items())[:LISTED])
    more = len(counts) - LISTED
    return f"{len(counts)} classes, {sum(counts.values())} files: {shown}" + (
        f" and {more} more" if more > 0 else "")


def _folder_entry(folder: Path) -> DatasetEntry | None:
    """An ImageFolder for data.dataset = "folder": train/val/test folders, or class folders
    holding other files than PNGs (PNG-only class folders are taken for prepared faces)."""
    if all((folder / d).is_dir() for d in SPLIT_DIRS):
        parts = {d: _class_counts(folder / d) for d in SPLIT_DIRS}
        details = "given splits; " + "; ".join(f"{d}: {_counts_text(c)}" for d, c in parts.items())
        return DatasetEntry(folder.name, "folder", "present", details, str(folder))
    counts = _class_counts(folder)
    if not any(counts.values()) or all(
            f.suffix.lower() == ".png" for c in counts for f in (folder / c).iterdir()
            if not f.name.startswith(".")):
        return None
    return DatasetEntry(folder.name, "folder", "present", _counts_text(counts), str(folder))


def _cifar_entry(root: Path, dataset: str) -> DatasetEntry | None:
    path = root / CIFAR_FOLDERS[dataset]
    if not path.is_dir():
        return None
    names = {"cifar10": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                         "data_batch_5", "test_batch", "batches.meta"),
             "cifar100": ("train", "test", "meta")}[dataset]
    missing = [n for n in names if not (path / n).is_file()]
    if missing:
        return DatasetEntry(dataset, "cifar", "missing", f"lacks {', '.join(missing)}; run: "
                            f"prunetui data import FILE.tar.gz --root {root}", str(path))
    return DatasetEntry(dataset, "cifar", "present", "50,000 train / 10,000 test images "
                        "(checksums checked when a run loads them)", str(path))


def scan_root(root: str | Path) -> list[DatasetEntry]:
    root = Path(root)
    entries = [_idx_entry(root, d) for d in FOLDERS]
    entries += [e for d in CIFAR_FOLDERS if (e := _cifar_entry(root, d))]
    skip = {*FOLDERS.values(), *CIFAR_FOLDERS.values()}
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name in skip or folder.name.startswith("."):
                continue
            entry = _folder_entry(folder) or _face_entry(folder)
            if entry:
                entries.append(entry)
    return entries

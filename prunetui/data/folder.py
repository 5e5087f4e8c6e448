"""Any image folder with one subfolder per class (torchvision's ``ImageFolder`` layout).

``data.root`` holds ``<class>/<image>``; when it holds ``train/``, ``val/`` and ``test/``
instead, each of those is such a folder and the splits are used as given (the classes are
``train/``'s). Otherwise each class is split by ``data.split`` with the faces' rule
(:func:`prunetui.data.facesplit.make_split`: a seeded shuffle per class, so the same files always
give the same split and a new class leaves the others' unchanged).

Every visible file is decoded (any format Pillow reads; any size and mode, 16-bit stretched
over its own range, transparency flattened onto white: prepare's :func:`load_photo`), its centre
square resized to ``data.image_size`` and kept with ``data.channels`` (1 or 3) as uint8
(:func:`photo_pixels`, with :func:`prunetui.data.faces.image_pixels`; ``PrunedModel.prepare``
decodes a user's images with the same functions). Files that cannot be used are skipped with
prepare's reason codes and reported in the run's log. Names starting with ``.`` are left out.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.config import ConfigError
from prunetui.data.faces import image_pixels
from prunetui.data.facesplit import SPLIT_SEED, make_split, natural_key
from prunetui.data.images import ImageData, pixel_stats
from prunetui.data.prepare.decode import load_photo, to_rgb
from prunetui.data.prepare.skips import REASONS, Skip, SkippedFile
from prunetui.data.stream import (
    Reader,
    RowFile,
    budget_bytes,
    new_folder,
    resident_note,
    streamed,
    streamed_note,
    workers,
)
from prunetui.data.tensors import DataError

if TYPE_CHECKING:
    import numpy as np

    from prunetui.config import Config

SPLIT_DIRS = ("train", "val", "test")
PARTS = ("train", "validation", "test")  # faces' split names, in the same order
SHOWN = 5  # skipped files named in the log line


def bad_root(root: Path, what: str) -> DataError:
    """A data problem worded as a setting: key, value, what is wrong (exit code 2)."""
    return DataError(str(ConfigError("data.root", str(root), what)))


@dataclass
class Listing:
    root: Path
    classes: tuple[str, ...]
    sets: dict[str, list[tuple[Path, int]]]  # part -> (file, label)
    given: bool  # train/val/test folders, or split by data.split
    skipped: list[SkippedFile] = field(default_factory=list)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def class_files(folder: Path, root: Path, skipped: list[SkippedFile]) -> list[str]:
    """Names of the visible regular files in a class folder (naturally sorted); the rest is
    recorded in ``skipped``."""
    names = []
    for entry in sorted(folder.iterdir()):
        rel = str(entry.relative_to(root))
        reason = ("hidden" if not _visible(entry) else "subfolder" if entry.is_dir()
                  else None if entry.is_file() else "not_a_file")
        if reason:
            skipped.append(SkippedFile(rel, reason, REASONS[reason]))
        else:
            names.append(entry.name)
    return sorted(names, key=natural_key)


def class_folders(folder: Path, root: Path) -> list[str]:
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise bad_root(root, f"{folder} {what}; give a folder with one subfolder per class "
                             "(data.root/<class>/<image>)")
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and _visible(d))


def scan_classes(folder: Path, root: Path,
                 skipped: list[SkippedFile]) -> dict[str, list[str]]:
    """Class -> file names of one ImageFolder; an empty class folder is an error."""
    classes = {c: class_files(folder / c, root, skipped) for c in class_folders(folder, root)}
    empty = [c for c, files in classes.items() if not files]
    if empty:
        raise bad_root(root, f"the class folder {folder / empty[0]} holds no images"
                             + (f" (nor do {', '.join(empty[1:])})" if len(empty) > 1 else "")
                             + "; add images or delete the folder")
    return classes


def check_classes(root: Path, classes: list[str]) -> None:
    if not classes:
        raise bad_root(root, "holds no class folders; put the images in one folder per class "
                             "(data.root/<class>/<image>)")
    if len(classes) < 2:
        raise bad_root(root, f"holds one class folder only ({classes[0]}); classifying needs "
                             "at least 2 classes, each in its own folder")


def list_folder(root: Path, fractions: tuple[float, ...]) -> Listing:
    """The files of each set and their labels, before any decoding."""
    skipped: list[SkippedFile] = []
    present = [d for d in SPLIT_DIRS if (root / d).is_dir()]
    if present:
        if len(present) < len(SPLIT_DIRS):
            lacking = [d for d in SPLIT_DIRS if d not in present]
            raise bad_root(root, f"holds {', '.join(present)}/ but not {', '.join(lacking)}/: "
                                 "given splits need train/, val/ and test/ (or no split "
                                 "folders, and data.split divides each class)")
        given = {d: scan_classes(root / d, root, skipped) for d in SPLIT_DIRS}
        names = list(given["train"])
        check_classes(root, names)
        for d in ("val", "test"):
            extra = sorted(set(given[d]) - set(names))
            if extra:
                raise bad_root(root, f"{d}/ has classes that train/ lacks: {', '.join(extra)}")
        sets = {part: [(root / d / c / f, names.index(c)) for c in given[d] for f in given[d][c]]
                for part, d in zip(PARTS, SPLIT_DIRS, strict=True)}
        return Listing(root, tuple(names), sets, True, skipped)
    classes = scan_classes(root, root, skipped)
    names = list(classes)
    check_classes(root, names)
    need = sum(f > 0 for f in fractions)
    few = [f"{c} ({len(files)})" for c, files in classes.items() if len(files) < need]
    if few:
        raise DataError(str(ConfigError(
            "data.split", list(fractions), f"needs at least {need} images per class in "
            f"{root}, and {', '.join(few)} have fewer; add images, or give train/, val/ and "
            "test/ folders")))
    split = make_split(classes, fractions, SPLIT_SEED)
    sets = {part: [(root / c / f, names.index(c)) for c in names for f in split[c][part]]
            for part in PARTS}
    return Listing(root, tuple(names), sets, False, skipped)


def photo_pixels(image, size: int, channels: int):
    """A Pillow image as the loader stores a decoded file: 8-bit RGB as prepare's
    :func:`load_photo` makes it (16-bit stretched, transparency onto white), then its centre
    square resized to ``size`` with ``channels`` (uint8 ``[channels, size, size]``)."""
    return image_pixels(to_rgb(image), size, channels)


def decode_file(path: Path, size: int, channels: int):
    """uint8 ``[channels, size, size]``, or the :class:`Skip` that says why not."""
    try:
        if path.stat().st_size == 0:
            raise Skip("empty_file", REASONS["empty_file"])
        return photo_pixels(load_photo(path), size, channels)
    except Skip as skip:
        return skip
    except OSError as err:
        return Skip("unreadable", f"{REASONS['unreadable']}: {err}")


def decode_into(files: list[tuple[Path, int]], out: np.ndarray, start: int, size: int,
                channels: int, listing: Listing) -> list[int]:
    """Decode ``files`` into rows ``start...`` of ``out``; the labels of the images kept."""
    labels = []
    row = start
    with ThreadPoolExecutor(max_workers=workers()) as pool:  # Pillow decodes without the GIL
        for (path, label), image in zip(files, pool.map(
                lambda f: decode_file(f[0], size, channels), files), strict=True):
            if isinstance(image, Skip):
                listing.skipped.append(
                    SkippedFile(str(path.relative_to(listing.root)), image.reason, image.message))
                continue
            out[row] = image.numpy()
            labels.append(label)
            row += 1
    return labels


def skipped_note(listing: Listing, total: int) -> str:
    counts = Counter(s.reason for s in listing.skipped)
    shown = "; ".join(f"{s.path}: {s.message}" for s in listing.skipped[:SHOWN])
    more = len(listing.skipped) - SHOWN
    return (f"data: skipped {len(listing.skipped)} of {total} files in {listing.root} ("
            + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())) + f"): {shown}"
            + (f" and {more} more" if more > 0 else ""))


def load_folder(cfg: Config) -> ImageData:
    import numpy as np
    import torch

    d = cfg.data
    root = Path(d.root)
    listing = list_folder(root, tuple(d.split))
    train_files = listing.sets["train"]
    if 0 < d.train_subset < len(train_files):  # a seeded sample, in listing order
        keep = random.Random(f"{SPLIT_SEED}/train_subset").sample(range(len(train_files)),
                                                                   d.train_subset)
        listing.sets["train"] = [train_files[i] for i in sorted(keep)]
    shape = (d.channels, d.image_size, d.image_size)
    counts = {part: len(files) for part, files in listing.sets.items()}
    nbytes = sum(counts.values()) * math.prod(shape)
    budget, how = budget_bytes(cfg)
    resident = nbytes <= budget
    if resident:
        train_out = np.empty((counts["train"], *shape), dtype=np.uint8)
        eval_out = np.empty((counts["validation"] + counts["test"], *shape), dtype=np.uint8)
    else:
        folder = new_folder()
        train_file = RowFile(folder / "train.npy", counts["train"], shape)
        eval_file = RowFile(folder / "eval.npy", counts["validation"] + counts["test"], shape)
        train_out, eval_out = train_file.array, eval_file.array
    labels = {"train": decode_into(listing.sets["train"], train_out, 0, d.image_size,
                                   d.channels, listing)}
    labels["validation"] = decode_into(listing.sets["validation"], eval_out, 0, d.image_size,
                                       d.channels, listing)
    labels["test"] = decode_into(listing.sets["test"], eval_out, len(labels["validation"]),
                                 d.image_size, d.channels, listing)
    kept = Counter(label for part in PARTS for label in labels[part])
    unusable = [c for i, c in enumerate(listing.classes) if not kept[i]]
    if unusable or not labels["train"]:
        raise bad_root(root, f"no image of class {(unusable or ['any'])[0]} could be read "
                             f"({skipped_note(listing, sum(counts.values()))})")
    n_train, n_val = len(labels["train"]), len(labels["validation"])
    n_eval = n_val + len(labels["test"])
    y = {part: torch.tensor(labels[part], dtype=torch.long) for part in PARTS}
    notes = (skipped_note(listing, sum(counts.values())),) if listing.skipped else ()
    split_how = "given train/val/test" if listing.given else f"split {list(d.split)}"
    source = f"folder {root} ({len(listing.classes)} classes, {split_how})"
    mean, std = pixel_stats(train_out[:n_train])
    common = dict(name="folder", num_classes=len(listing.classes),
                  input_shape=(d.channels, d.crop, d.crop), class_names=listing.classes,
                  crop=d.crop, mean=mean, std=std)
    if resident:
        x_train = torch.from_numpy(train_out[:n_train])
        x_eval = torch.from_numpy(eval_out[:n_eval])
        note = resident_note(source, nbytes, budget, how)
        return ImageData(train_x=x_train, train_y=y["train"], val_x=x_eval[:n_val],
                         val_y=y["validation"], test_x=x_eval[n_val:], test_y=y["test"],
                         notes=(note, *notes), **common)
    train_file.finish(n_train)
    eval_file.finish(n_eval)
    reader = Reader(folder, train_file, eval_file)
    skeleton = ImageData(train_x=torch.empty(0), train_y=y["train"], val_x=torch.empty(0),
                         val_y=y["validation"], test_x=torch.empty(0), test_y=y["test"],
                         notes=notes, **common)
    return streamed(skeleton, reader, streamed_note(source, nbytes, budget, how, reader))

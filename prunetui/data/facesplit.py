"""The fixed train/validation/test split of a folder of classes, kept in ``<root>/split.json``.

Faces and image folders share it: each class's images are shuffled with their own seeded
generator and divided by ``data.split`` (largest remainder, every set with a fraction > 0 gets
at least one image). The file is written once, atomically, and reused by every run on the
folder; a later load with other fractions or other images is refused with what to do, since a
silently changed test set would make runs incomparable.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunetui.data.tensors import DataError

SPLIT_FILE = "split.json"
SPLIT_VERSION = 1
SPLIT_SEED = 0  # fixed: the test images must not change with train.seed
SPLIT_NAMES = ("train", "validation", "test")
LIST_LIMIT = 8  # names shown in an error message before "and N more"


def natural_key(name: str) -> list[Any]:
    """Sort key putting "2.png" before "10.png" (split.json is read by people)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]



def listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LIST_LIMIT])
    more = len(items) - LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")



def allocate(n: int, fractions: Sequence[float], rng: random.Random) -> list[int] | None:
    """Images per set for one person, or None when a set with a fraction > 0 would be empty.

    Largest-remainder rounding (ties broken by ``rng`` so that neither validation nor test is
    favoured across people), then every set with a fraction > 0 gets at least one image.
    """
    needed = [i for i, f in enumerate(fractions) if f > 0]
    if n < len(needed):
        return None
    exact = [n * f for f in fractions]
    counts = [math.floor(e + 1e-9) for e in exact]
    ties = [rng.random() for _ in fractions]
    order = sorted(needed, key=lambda i: (-round(exact[i] - counts[i], 9), ties[i]))
    for i in order[:n - sum(counts)]:
        counts[i] += 1
    for i in needed:
        if counts[i] == 0:  # take one from the largest set, which then still has one left
            counts[max(range(len(counts)), key=counts.__getitem__)] -= 1
            counts[i] = 1
    return counts


def make_split(people: dict[str, list[str]], fractions: Sequence[float],
               seed: int = SPLIT_SEED) -> dict[str, dict[str, list[str]]]:
    """Stratified split: each person's images are shuffled and divided by ``fractions``.

    Each person has their own seeded shuffle, so adding one person leaves the others' splits
    unchanged. Raises :class:`DataError` naming every person with too few images.
    """
    split, too_few = {}, []
    for person, files in people.items():
        rng = random.Random(f"{seed}/{person}")  # str seeds are stable across processes
        counts = allocate(len(files), fractions, rng)
        if counts is None:
            too_few.append(f"{person} ({len(files)})")
            continue
        shuffled = list(files)
        rng.shuffle(shuffled)
        bounds = [0, counts[0], counts[0] + counts[1], len(files)]
        split[person] = {name: sorted(shuffled[bounds[k]:bounds[k + 1]], key=natural_key)
                         for k, name in enumerate(SPLIT_NAMES)}
    if too_few:
        need = sum(f > 0 for f in fractions)
        raise DataError(
            f"Too few images to split for {len(too_few)} "
            f"{'person' if len(too_few) == 1 else 'people'}: {listing(too_few)}. "
            f"data.split = {list(fractions)} needs at least {need} images per person (one for "
            "each of train, validation and test with a fraction > 0). Add photos (prunetui "
            "prepare SRC DST), or rename those folders to start with '.' to leave them out.")
    return split


def split_document(split: dict[str, dict[str, list[str]]], fractions: Sequence[float],
                   seed: int) -> dict[str, Any]:
    totals = {name: sum(len(s[name]) for s in split.values()) for name in SPLIT_NAMES}
    return {
        "note": "Written once by prunetui and reused by every run on this folder. Delete it to "
                "re-split (runs made before then used other test images).",
        "version": SPLIT_VERSION,
        "seed": seed,
        "fractions": list(fractions),
        "images": totals,
        "people": {person: split[person] for person in sorted(split)},
    }


def format_split(document: dict[str, Any]) -> str:
    """JSON with one line per person and set, so the file reads like a table."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = [f"  {dump(key)}: {dump(value)}," for key, value in document.items()
             if key != "people"]
    people = []
    for person, sets in document["people"].items():
        rows = ",\n".join(f"      {dump(name)}: {dump(files)}" for name, files in sets.items())
        people.append(f"    {dump(person)}: {{\n{rows}\n    }}")
    lines.append('  "people": {\n' + ",\n".join(people) + "\n  }")
    return "{\n" + "\n".join(lines) + "\n}\n"


def _write_split(path: Path, document: dict[str, Any]) -> None:
    from prunetui.fileio import StoreError, atomic_write_text

    try:  # temp file + fsync + os.replace: a crash never leaves half a split.json
        atomic_write_text(path, format_split(document))
    except StoreError as err:
        raise DataError(f"{err} The split must be saved so later runs reuse the same test "
                        f"images: make {path.parent} writable (or copy it somewhere writable "
                        "and point data.root there).") from err


def _invalid(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a valid split file ({why}). Delete it and prunetui "
                     "writes a new split on the next run (earlier runs used their own test "
                     "images).")


def read_split(path: Path) -> tuple[dict[str, dict[str, list[str]]], list[float], int]:
    """The stored split, fractions and seed; :class:`DataError` if the file is damaged."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _invalid(path, str(err)) from err
    try:
        fractions = [float(f) for f in doc["fractions"]]
        people = doc["people"]
        split = {str(p): {name: [str(f) for f in people[p][name]] for name in SPLIT_NAMES}
                 for p in people}
        seed = int(doc.get("seed", SPLIT_SEED))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _invalid(path, f"missing or malformed {err}") from err
    if len(fractions) != len(SPLIT_NAMES):
        raise _invalid(path, f"fractions {fractions} must have {len(SPLIT_NAMES)} values")
    for person, sets in split.items():
        names = [f for name in SPLIT_NAMES for f in sets[name]]
        if len(names) != len(set(names)):
            raise _invalid(path, f"an image of {person} is listed twice")
    return split, fractions, seed


def _same_fractions(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, abs_tol=1e-9)
                                    for x, y in zip(a, b, strict=True))


def _check_same_images(path: Path, split: dict[str, dict[str, list[str]]],
                       people: dict[str, list[str]]) -> None:
    stored = {f"{p}/{f}" for p, sets in split.items() for name in SPLIT_NAMES for f in sets[name]}
    present = {f"{p}/{f}" for p, files in people.items() for f in files}
    added = sorted(present - stored, key=natural_key)
    missing = sorted(stored - present, key=natural_key)
    if not added and not missing:
        return
    changes = []
    if added:
        changes.append(f"{len(added)} new (not in the split): {listing(added)}")
    if missing:
        changes.append(f"{len(missing)} listed but missing: {listing(missing)}")
    raise DataError(
        f"The images in {path.parent} changed since {path} was written: "
        f"{'; '.join(changes)}. The split is fixed so that all runs are compared on the same "
        f"test images. To split all current images afresh, delete {path} (runs made before "
        "then used other test images); otherwise restore the folder as it was.")


def ensure_split(root: Path, people: dict[str, list[str]],
                 fractions: Sequence[float]) -> dict[str, dict[str, list[str]]]:
    """Reuse ``root/split.json``, or make and write it on the first load.

    A stored split is used only when its fractions equal ``data.split`` and it lists exactly
    the images present; anything else is a :class:`DataError` that says how to go on (new
    images are never silently added: that would change the test set between runs).
    """
    path = root / SPLIT_FILE
    if not path.exists():
        split = make_split(people, fractions, SPLIT_SEED)
        _write_split(path, split_document(split, fractions, SPLIT_SEED))
        return split
    split, stored, _ = read_split(path)
    if not _same_fractions(stored, fractions):
        raise DataError(
            f"{path} splits the images by {stored} (train, validation, test), but data.split "
            f"is {list(fractions)}. Set data.split = {stored} to keep the same test images as "
            f"earlier runs, or delete {path} to re-split with {list(fractions)}.")
    _check_same_images(path, split, people)
    return split


def label_order(split: dict[str, Any]) -> tuple[str, ...]:  # class names (people) by label
    return tuple(sorted(split))

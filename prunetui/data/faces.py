"""Prepared face photos as a :class:`TensorData`: one class per person, crop/flip augmentation.

``prunetui prepare SRC DST`` writes ``DST/<person>/<name>.png`` (144x144 8-bit grayscale);
``data.root`` names DST. Non-PNG files and names starting with ``.`` are ignored (rename a
person's folder to ``.name`` to leave them out); a folder without PNGs is not a class.

Images are decoded once into one resident uint8 ``[N, 1, S, S]`` (S = ``data.image_size``).
Training takes a random ``data.crop`` square and flip per image (one gather); evaluation the
center square; pixels are normalized by the training images' mean and std. The split is
stratified per person, seeded, and written once to ``DST/split.json`` so that every run sees
the same test images (:func:`ensure_split`).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from prunetui.data.tensors import DataError, TensorData

if TYPE_CHECKING:  # torch is imported lazily, as in mnist.py
    import torch

    from prunetui.config import DataConfig

SPLIT_FILE = "split.json"
SPLIT_VERSION = 1
SPLIT_SEED = 0  # fixed: the test images must not change with train.seed
SPLIT_NAMES = ("train", "validation", "test")
PREPARE_HINT = "prepare photos with: prunetui prepare SRC DST (SRC/<person>/<photos>)"
LIST_LIMIT = 8  # names shown in an error message before "and N more"


@dataclass
class FaceData(TensorData):
    crop: int = 128
    mean: float = 0.0  # of x/255 over the training images
    std: float = 1.0
    augmented: ClassVar[bool] = True

    def train_batch(self, idx: torch.Tensor,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crop + random horizontal flip per image, drawn on CPU from ``generator``."""
        import torch

        device, size = self.train_x.device, self.train_x.shape[-1]
        idx = idx.to(device)
        rows, cols = crop_indices(len(idx), size, self.crop, generator)
        from prunetui.device import to_device  # no GPU sync per step
        rows, cols = to_device(rows, device), to_device(cols, device)
        # One gather through flat indices [n, crop, crop] into the contiguous [N, 1, S, S]: on 2
        # cores, batch 32, as fast as a loop at crop 128, 7x faster at 64, 4-8x faster than 4-way
        # advanced indexing.
        flat = (idx * (size * size))[:, None, None] + rows[:, :, None] * size + cols[:, None, :]
        x = torch.take(self.train_x, flat)
        return self._normalize(x.unsqueeze(1)), self.train_y[idx]

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        """Center crop of stored images."""
        return eval_pixels(x, self.crop, self.mean, self.std)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return eval_pixels(x, x.shape[-1], self.mean, self.std)


def eval_pixels(x: torch.Tensor, crop: int, mean: float, std: float) -> torch.Tensor:
    """Model input from stored uint8 ``[..., S, S]``: center ``crop`` square, (x/255-mean)/std."""
    top = (x.shape[-1] - crop) // 2
    x = x[..., top:top + crop, top:top + crop]
    return x.float().sub_(mean * 255.0).mul_(1.0 / (std * 255.0))


def crop_indices(n: int, size: int, crop: int,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices ``[n, crop]`` of a random crop, columns reversed for flips; drawn
    on CPU so the same generator state gives the same batch on any device."""
    import torch

    offsets = torch.randint(0, size - crop + 1, (2, n, 1), generator=generator)
    flip = torch.randint(0, 2, (n, 1), generator=generator).bool()
    steps = torch.arange(crop)
    cols = torch.where(flip, steps.flip(0), steps)
    return offsets[0] + steps, offsets[1] + cols


# --- finding the images ---
def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def natural_key(name: str) -> list[Any]:
    """Sort key putting "2.png" before "10.png" (split.json is read by people)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _png_names(folder: Path) -> list[str]:
    return sorted((f.name for f in folder.iterdir()
                   if _visible(f) and f.suffix.lower() == ".png" and f.is_file()),
                  key=natural_key)


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LIST_LIMIT])
    more = len(items) - LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")


def _no_people_message(root: Path) -> str:
    """Why ``root`` holds no person folders, with a hint when it is one level too high."""
    nested = [d for d in sorted(root.iterdir())
              if d.is_dir() and _visible(d)
              and any(p.is_dir() and _visible(p) and _png_names(p) for p in d.iterdir())]
    if nested:
        return (f"{root} holds no person folders with PNG images, but {nested[0]} does: "
                f"data.root must be the prepared folder itself (data.root = \"{nested[0]}\").")
    if _png_names(root):
        return (f"{root} holds PNG images directly; faces need one folder per person "
                f"({root}/<person>/<name>.png) — {PREPARE_HINT}, then set data.root = DST.")
    return (f"{root} holds no person folders with PNG images. To use your own photos, "
            f"{PREPARE_HINT}, then set data.root = DST.")


def scan_people(root: Path) -> dict[str, list[str]]:
    """Person -> PNG file names (naturally sorted) for every visible folder holding PNGs."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"No prepared faces at {root}: it {what}. To use your own photos, "
                        f"{PREPARE_HINT}, then set data.root = DST.")
    try:
        people = {d.name: _png_names(d) for d in sorted(root.iterdir())
                  if d.is_dir() and _visible(d)}
    except OSError as err:
        raise DataError(f"Cannot read {root}: {err.strerror or err}.") from err
    people = {name: files for name, files in people.items() if files}
    if not people:
        raise DataError(_no_people_message(root))
    if len(people) < 2:
        raise DataError(f"{root} holds images of one person only ({next(iter(people))}); "
                        "telling faces apart needs at least 2 people, each in its own folder.")
    return people


# --- the split ---
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
            f"{'person' if len(too_few) == 1 else 'people'}: {_listing(too_few)}. "
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
        changes.append(f"{len(added)} new (not in the split): {_listing(added)}")
    if missing:
        changes.append(f"{len(missing)} listed but missing: {_listing(missing)}")
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


# --- decoding ---
def decode_image(path: Path, size: int) -> torch.Tensor:
    """One grayscale image as uint8 ``[1, size, size]``, resized only when it is not already."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            gray = im.convert("L")  # prepared faces are already 8-bit grayscale
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataError(f"Cannot decode {path} ({err}). Re-run prunetui prepare SRC DST, or "
                        "delete the file and split.json.") from err
    if gray.width != gray.height:
        raise DataError(f"{path} is {gray.width}x{gray.height}; prepared faces are square "
                        "(144x144). Point data.root at the output of: prunetui prepare SRC DST.")
    return gray_pixels(gray, size)


def image_pixels(image: Any, size: int, channels: int = 1) -> torch.Tensor:
    """A Pillow image (any mode) as stored: its centre square (prepared faces are square),
    ``convert("L")`` or ``"RGB"``, resized to ``size``, uint8 ``[channels, S, S]``."""
    import torch
    from PIL import Image

    if image.width != image.height:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    px = image.convert("L" if channels == 1 else "RGB")
    if px.size != (size, size):  # Pillow's bilinear filter widens when shrinking: antialiased
        px = px.resize((size, size), Image.Resampling.BILINEAR)
    flat = torch.frombuffer(bytearray(px.tobytes()), dtype=torch.uint8)
    return flat.view(size, size, channels).permute(2, 0, 1).contiguous()


gray_pixels = image_pixels  # the faces name (export/inputs.py): one channel by default


def decode_set(root: Path, split: dict[str, dict[str, list[str]]], part: str,
               class_names: Sequence[str], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 1, size, size]`` uint8 and labels int64 of one set, person by person."""
    import torch

    images, labels = [], []
    for label, person in enumerate(class_names):
        for name in split[person][part]:
            images.append(decode_image(root / person / name, size))
            labels.append(label)
    if not images:
        return torch.empty((0, 1, size, size), dtype=torch.uint8), torch.empty(0, dtype=torch.long)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def pixel_stats(x: torch.Tensor) -> tuple[float, float]:
    """Mean and std of x/255 (float64 sums; a constant image set gets std 1)."""
    values = x.double().div_(255.0)
    std = float(values.std()) if values.numel() > 1 else 0.0
    return float(values.mean()), std if std > 1e-6 else 1.0


def label_order(split: dict[str, Any]) -> tuple[str, ...]:  # class names (people) by label
    return tuple(sorted(split))


def load_faces(cfg: DataConfig) -> FaceData:
    root = Path(cfg.root)
    people = scan_people(root)
    split = ensure_split(root, people, tuple(cfg.split))
    class_names = label_order(split)
    sets = {part: decode_set(root, split, part, class_names, cfg.image_size)
            for part in SPLIT_NAMES}
    mean, std = pixel_stats(sets["train"][0])
    return FaceData(
        name="faces",
        num_classes=len(class_names),
        input_shape=(1, cfg.crop, cfg.crop),
        train_x=sets["train"][0], train_y=sets["train"][1],
        val_x=sets["validation"][0], val_y=sets["validation"][1],
        test_x=sets["test"][0], test_y=sets["test"][1],
        class_names=class_names,
        crop=cfg.crop, mean=mean, std=std,
    )

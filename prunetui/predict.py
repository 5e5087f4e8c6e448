"""Predictions of an exported model on image files and folders: the engine of
``prunetui predict`` and of the app's 'try it' (torch is imported only by what uses it).

Images in folders named after the model's classes are labelled (accuracy; a face folder's
``split.json``, or for an image-folder model the run's own split of ``data.root``, also gives
each its part). MNIST, image-folder and CIFAR models classify whole images
(``PrunedModel.prepare``; folder and CIFAR models read each file as the folder loader does);
face models find faces in raw photos with ``prepare``'s own functions and the settings recorded
in the export, and classify each crop; images under a folder ``prepare`` wrote are crops
already. Unreadable files and photos without a face are skipped with a reason (``REASONS``).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunetui.data.prepare.output import IMAGE_EXTENSIONS
from prunetui.data.prepare.report import REPORT_FILE
from prunetui.data.prepare.settings import Settings
from prunetui.data.prepare.skips import REASONS, Skip, SkippedFile

if TYPE_CHECKING:
    from prunetui.data.prepare.detect import FaceDetector
    from prunetui.export.model import PrunedModel

EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif")
CHUNK = 64  # whole images classified together
Progress = Callable[[int, int, str], None]  # (done, total, file name shown)
Found = tuple[Any, "tuple[int, int, int, int] | None", "float | None"]  # (image, box, confidence)


@dataclass(frozen=True)
class Face:  # one classified face, or the whole image (no box)
    top: list[tuple[str, float]]  # (class name, probability), most probable first
    box: tuple[int, int, int, int] | None = None  # x1 y1 x2 y2 in the photo's upright pixels
    confidence: float | None = None  # MTCNN's probability that it is a face


@dataclass
class ImageResult:
    path: Path
    name: str  # as shown: relative to the parent of the input folder, or the file as given
    label: str | None  # the class its folder names, if any
    part: str | None  # "train", "validation" or "test" when its folder has a split.json
    faces: list[Face] = field(default_factory=list)  # largest first; whole image: no box
    prepared: bool = False  # a face crop already (under a prepared folder): classified whole

    @property
    def predicted(self) -> str:
        return self.faces[0].top[0][0]


@dataclass
class ClassScore:  # one class of the labelled images
    images: int = 0
    correct: int = 0
    taken_for: dict[str, int] = field(default_factory=dict)  # wrong predictions by name


@dataclass
class Accuracy:
    correct: int
    total: int
    per_class: dict[str, ClassScore]
    parts: dict[str, tuple[int, int]]  # part -> (correct, total)

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class Prediction:
    images: list[ImageResult]
    skipped: list[SkippedFile]
    ignored: int = 0  # non-image files in the folders
    notes: list[str] = field(default_factory=list)
    settings: Settings | None = None  # the face preparation used (face models)
    cancelled: bool = False
    problem: str | None = None  # why nothing could be classified (then ``images`` is empty)

    @property
    def faces(self) -> int:
        return sum(len(r.faces) for r in self.images)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(s.reason for s in self.skipped).items()))

    def accuracy(self) -> Accuracy | None:
        """Top-1 accuracy over labelled images (a photo counts by its largest face)."""
        labelled = [r for r in self.images if r.label is not None]
        if not labelled:
            return None
        per_class: dict[str, ClassScore] = {}
        for r in labelled:
            score = per_class.setdefault(r.label or "", ClassScore())
            score.images += 1
            score.correct += r.predicted == r.label
            if r.predicted != r.label:
                score.taken_for[r.predicted] = score.taken_for.get(r.predicted, 0) + 1
        parts = {part: (sum(r.predicted == r.label for r in labelled if r.part == part),
                        sum(r.part == part for r in labelled))
                 for part in sorted({r.part for r in labelled if r.part})}
        return Accuracy(sum(s.correct for s in per_class.values()), len(labelled),
                        dict(sorted(per_class.items())), parts)


def face_settings(model: PrunedModel) -> tuple[Settings, str | None]:
    """The preparation recorded in the export, or prepare's defaults with a note saying so."""
    recorded = model.face_preparation
    if not recorded:
        return Settings(faces="all"), ("This export does not record how its faces were "
                                       "prepared; using prunetui prepare's defaults.")
    names = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in recorded.items() if k in names}), None


def _read_parts(root: Path) -> dict[str, str]:
    """``person/file`` -> part of the folder's split.json (empty without a readable one)."""
    from prunetui.data.facesplit import SPLIT_FILE, read_split
    from prunetui.data.tensors import DataError

    try:
        split = read_split(root / SPLIT_FILE)[0] if (root / SPLIT_FILE).is_file() else {}
    except DataError:
        return {}
    return {f"{person}/{name}": part for person, sets in split.items()
            for part, names in sets.items() for name in names}


def _visible_files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def folder_parts(meta: dict[str, Any]) -> dict[Path, str]:
    """Resolved file -> part ("train", "validation", "test") of an image-folder run's data.root,
    split as the run split it (given train/val/test folders, or data.split); empty for other
    models or when the folder cannot be listed."""
    data = meta.get("config", {}).get("data", {})
    if data.get("dataset") != "folder":
        return {}
    from prunetui.data.folder import list_folder
    from prunetui.data.tensors import DataError

    try:
        listing = list_folder(Path(data["root"]), tuple(data["split"]))
    except (DataError, OSError, KeyError, TypeError, ValueError):
        return {}
    return {path.resolve(): part for part, files in listing.sets.items() for path, _ in files}


def collect(inputs: Sequence[str | Path], class_names: Sequence[str],
            prepared: bool | None = None, known_parts: dict[Path, str] | None = None
            ) -> tuple[list[ImageResult], list[SkippedFile], int]:
    """The images of ``inputs`` in order, what could not be listed, and non-image files.
    ``known_parts``: resolved file -> part (:func:`folder_parts`), before any split.json."""
    names, items, skipped, ignored = set(class_names), [], [], 0
    has_report = functools.cache(lambda folder: (folder / REPORT_FILE).is_file())
    parts = functools.cache(_read_parts)

    def add(path: Path, shown: str) -> None:
        label = path.parent.name if path.parent.name in names else None
        is_prepared = prepared if prepared is not None else \
            has_report(path.parent) or has_report(path.parent.parent)
        part = (known_parts.get(path.resolve()) if known_parts else None) \
            or parts(path.parent.parent).get(f"{path.parent.name}/{path.name}")
        items.append(ImageResult(path, shown, label, part, [], is_prepared))

    for given in map(Path, inputs):
        if given.is_dir():
            for path in _visible_files(given):
                if path.is_file() and path.suffix.lower() in EXTENSIONS:
                    add(path, str(path.relative_to(given.parent)))
                elif not path.is_dir():
                    ignored += 1
        elif given.is_file():
            add(given, str(given))
        else:
            why = REASONS["not_a_file"] if given.exists() else "does not exist"
            skipped.append(SkippedFile(str(given), "not_a_file", why))
    return items, skipped, ignored


def file_size(path: Path) -> int:
    """The size of a file that is there and not empty; else Skip."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise Skip("unreadable", f"{REASONS['unreadable']}: {err.strerror or err}") from err
    if size == 0:
        raise Skip("empty_file", REASONS["empty_file"])
    return size


def decode_photo(path: Path) -> Any:
    """An image-folder / CIFAR model's input file decoded as the folder loader decodes it
    (prepare's ``load_photo``: upright 8-bit RGB); raises Skip with prepare's reasons."""
    from prunetui.data.prepare.decode import load_photo

    file_size(path)
    return load_photo(path)


def open_image(path: Path) -> Any:
    """The image as stored (no conversion: ``PrunedModel.prepare`` converts as training did)."""
    from PIL import Image, UnidentifiedImageError

    file_size(path)
    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("ignore")
            im.load()
            return im.copy()
    except Image.DecompressionBombError as err:
        raise Skip("too_large", str(err)) from err
    except UnidentifiedImageError as err:
        raise Skip("not_an_image", REASONS["not_an_image"]) from err
    except (PermissionError, FileNotFoundError) as err:
        raise Skip("unreadable", f"{REASONS['unreadable']}: {err}") from err
    except Exception as err:  # why: one broken file must not stop the rest
        raise Skip("corrupt", f"{type(err).__name__}: {err}") from err


def find_faces(detector: FaceDetector, path: Path, settings: Settings | None) -> list[Found]:
    """(crop, box, confidence) of each face kept, largest first, exactly as ``prepare`` cuts
    them; raises Skip (unreadable, too small, no face...)."""
    import numpy as np

    from prunetui.data.prepare.crop import crop_face
    from prunetui.data.prepare.decode import load_for_detection, load_photo
    from prunetui.data.prepare.detect import choose_faces
    from prunetui.data.prepare.scan import Photo

    settings = settings or Settings(faces="all")
    photo = Photo("", path.name, path, file_size(path), 0)
    loaded = load_for_detection(photo, settings.min_face_size)
    detection = detector.detect([loaded.image], loaded.min_face)[0]
    if isinstance(detection, Skip):
        raise detection
    boxes = choose_faces(detection, settings)
    full = load_photo(path) if loaded.downscaled else loaded.image
    sx, sy = (a / b for a, b in zip(loaded.size, loaded.image.size, strict=True))
    found: list[Found] = []
    for box in boxes:
        confidence = float(detection[1][np.all(detection[0] == box, axis=1)][0])
        scaled = box * [sx, sy, sx, sy]  # full-size pixels, as prepare crops
        crop = crop_face(full, scaled, settings.margin, settings.output_size)
        found.append((crop, tuple(round(float(v)) for v in scaled), confidence))
    return found


def predict_images(model: PrunedModel, inputs: Sequence[str | Path], *, top: int = 1,
                   faces: str | None = None, prepared: bool | None = None,
                   device: str = "auto", on_progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> Prediction:
    """Classify every image of ``inputs``; face models find faces in raw photos first.

    ``faces``: "all" (default) or "largest" face per photo, face models only. ``prepared``:
    True treats every input as a prepared crop, False none, None decides per folder.
    ``device`` runs face detection. When no image gave a prediction, ``problem`` says why.
    """
    from prunetui.export.inputs import PHOTO_DATASETS

    items, skipped, ignored = collect(inputs, model.class_names, prepared,
                                      folder_parts(model.meta))
    result = Prediction([], skipped, ignored)
    dataset = model.meta["config"]["data"]["dataset"]
    is_faces = dataset == "faces"
    read = decode_photo if dataset in PHOTO_DATASETS else open_image
    if is_faces:
        settings, note = face_settings(model)
        result.settings = dataclasses.replace(settings, faces=faces or "all")
        if note and any(not i.prepared for i in items):
            result.notes.append(note)
    elif faces:
        result.notes.append("--faces applies to face models only; each image is classified "
                            "whole.")
    detector: FaceDetector | None = None
    stop = should_stop or (lambda: False)
    for start in range(0, len(items), CHUNK):
        found: list[tuple[ImageResult, list[Found]]] = []
        for done, item in enumerate(items[start:start + CHUNK], start + 1):
            if stop():
                result.cancelled = True
                break
            try:
                if item.prepared or not is_faces:
                    found.append((item, [(read(item.path), None, None)]))
                    continue
                if detector is None:
                    from prunetui.data.prepare.detect import FaceDetector

                    detector = FaceDetector(device)
                found.append((item, find_faces(detector, item.path, result.settings)))
            except Skip as skip:
                result.skipped.append(SkippedFile(item.name, skip.reason, skip.message))
            if on_progress and done % 8 == 0:  # photos, one at a time
                on_progress(done, len(items), item.name)
        crops = [crop for _, faces_found in found for crop, _, _ in faces_found]
        rows = iter(model.predict(crops, top=top) if crops else [])
        for item, faces_found in found:
            item.faces = [Face(next(rows), box, conf) for _, box, conf in faces_found]
            result.images.append(item)
        if result.cancelled:
            break
        if on_progress:
            done = min(start + CHUNK, len(items))
            on_progress(done, len(items), items[done - 1].name)
    if not result.images and not result.cancelled:
        result.problem = _nothing_usable(inputs, result)
    return result


def _nothing_usable(inputs: Sequence[str | Path], result: Prediction) -> str:
    given = ", ".join(str(i) for i in inputs)
    if not result.skipped:
        other = f" ({result.ignored} other files)" if result.ignored else ""
        return (f"no image found in {given}{other}. Give image files or folders of them "
                f"({', '.join(EXTENSIONS)}).")
    counts = ", ".join(f"{reason} {n}" for reason, n in result.skipped_by_reason.items())
    return f"no usable image in {given}: all {len(result.skipped)} were skipped ({counts})."


__all__ = ["Accuracy", "ClassScore", "Face", "ImageResult", "Prediction", "collect",
           "decode_photo", "face_settings", "file_size", "find_faces", "folder_parts",
           "open_image", "predict_images"]

"""Decoding photos: any Pillow failure becomes a Skip; any mode becomes upright 8-bit RGB;
large photos get a small detection copy (JPEGs decoded at reduced scale)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from prunetui.data.prepare.scan import Photo
from prunetui.data.prepare.skips import REASONS, Skip

DETECT_MAX_SIDE = 1024  # larger photos are searched on a copy this size, cropped from the original
MIN_DETECT_FACE = 20  # facenet-pytorch's default minimum; the floor on a downscaled copy


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Turn every way Pillow fails on a file into a Skip; silence its warnings (bad EXIF...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except Skip:
            raise
        except Image.DecompressionBombError as err:
            raise Skip("too_large", str(err)) from err
        except UnidentifiedImageError as err:
            raise Skip("not_an_image", f"{REASONS['not_an_image']} ({err})") from err
        except (PermissionError, FileNotFoundError, IsADirectoryError) as err:
            raise Skip("unreadable", f"{REASONS['unreadable']}: {err}") from err
        except Exception as err:  # why: a broken file of any kind must not stop the run
            raise Skip("corrupt", f"{type(err).__name__}: {err}") from err


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float gray stretched from its own min..max to 0..255.

    Pillow's own convert clips at 255. Scaling 16-bit by 0..65535 blacked out 8-bit photos
    stored as 16-bit (``convert("I;16")``, ``astype(uint16)``: values 0..255), losing their
    faces; a full-range 16-bit image spans 0..65535, so its own range is the type's.
    """
    a = np.asarray(img, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) * (255.0 / max(hi - lo, 1e-6))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode; transparency is flattened onto white."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return img.convert("RGB")


def _upright(img: Image.Image) -> Image.Image:
    """``img`` (loaded) turned as its EXIF orientation says."""
    with contextlib.suppress(Exception):  # why: a broken EXIF block should not cost the photo
        ImageOps.exif_transpose(img, in_place=True)
    return img


def load_photo(path: Path) -> Image.Image:
    """The photo upright (EXIF orientation applied), full resolution, 8-bit RGB."""
    with _decoding(), Image.open(path) as img:
        img.load()  # first frame of a GIF / animated WebP
        return to_rgb(_upright(img))


@dataclass
class Loaded:
    image: Image.Image  # what the detector sees: RGB, long side <= DETECT_MAX_SIDE
    size: tuple[int, int]  # the upright full-resolution size
    min_face: int  # the minimum face size in ``image``'s pixels

    @property
    def key(self) -> tuple[int, int, int]:
        """Photos with equal keys are detected together in one batch."""
        return (*self.image.size, self.min_face)

    @property
    def downscaled(self) -> bool:
        return self.image.size != self.size


def _detect_size(w: int, h: int) -> tuple[int, int]:
    scale = min(1.0, DETECT_MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def load_for_detection(photo: Photo, min_face_size: int) -> Loaded:
    """Decode a detection copy; huge JPEGs are decoded at reduced scale (Pillow's draft)."""
    with _decoding(), Image.open(photo.path) as img:
        w, h = img.size
        target = _detect_size(w, h)
        if target != (w, h):
            img.draft(None, target)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        img.load()
        stored = img.size
        image = to_rgb(_upright(img))
    size = (h, w) if image.size != stored else (w, h)  # orientations 5-8 swap the axes
    det = _detect_size(*size)
    if image.size != det:
        image = image.resize(det, Image.Resampling.BILINEAR)
    scale = det[0] / size[0]
    min_face = min_face_size if scale == 1 else max(round(min_face_size * scale),
                                                    min(min_face_size, MIN_DETECT_FACE))
    if min(det) < min_face:  # MTCNN would crash: its image pyramid would be empty
        raise Skip("too_small", f"{size[0]}x{size[1]} px is smaller than the minimum face size "
                                f"{min_face_size} px")
    return Loaded(image, size, min_face)


Key = tuple[int, int]  # a photo's stored pixel size, read from its header


def header_key(photo: Photo) -> Key:
    """The batching key: read from the header alone, so it costs no decoding."""
    if photo.size == 0:
        raise Skip("empty_file", REASONS["empty_file"])
    with _decoding(), Image.open(photo.path) as img:
        return img.size

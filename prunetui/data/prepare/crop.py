"""The square crop around a face box, cut from the full photo and resized to the output."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from prunetui.data.prepare.settings import OUTPUT_SIZE


def _place(start: float, side: int, length: int) -> int:
    """Shift a crop inside [0, length) when it fits; else center it on the photo."""
    if side >= length:
        return (length - side) // 2
    return min(max(round(start), 0), length - side)


def square_box(box: Sequence[float], size: tuple[int, int],
               margin: float) -> tuple[int, int, int, int]:
    """The square crop (left, top, right, bottom) around a face box in a photo of ``size``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, round(max(x2 - x1, y2 - y1) * (1 + 2 * margin)))
    left = _place((x1 + x2 - side) / 2, side, size[0])
    top = _place((y1 + y2 - side) / 2, side, size[1])
    return left, top, left + side, top + side


def crop_face(photo: Image.Image, box: Sequence[float], margin: float,
              output_size: int = OUTPUT_SIZE) -> Image.Image:
    square = photo.crop(square_box(box, photo.size, margin))  # black outside the photo
    return square.convert("L").resize((output_size, output_size), Image.Resampling.LANCZOS)

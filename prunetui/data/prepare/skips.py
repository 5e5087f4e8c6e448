"""Why a file is left out: the reason codes of the report, and the exception that carries one."""

from __future__ import annotations

from dataclasses import dataclass

REASONS: dict[str, str] = {
    "hidden": "hidden file or folder (its name starts with a dot)",
    "outside_person_folder": "file directly in SRC, not in a person folder",
    "subfolder": "folder inside a person folder (only SRC/<person>/<file> is read)",
    "not_a_file": "not a regular file (broken link, socket, device...)",
    "empty_file": "empty file (0 bytes)",
    "unreadable": "cannot be read (permissions or I/O error)",
    "not_an_image": "not an image Pillow can read",
    "corrupt": "truncated or corrupt image, or an unsupported variant of its format",
    "too_large": "more pixels than Pillow's decompression-bomb limit",
    "too_small": "smaller than the minimum face size",
    "no_face": "no face found",
    "low_confidence": "faces found, none above the minimum confidence",
    "detect_failed": "the face detector failed on this image",
}


class Skip(Exception):
    """A photo left out, with a reason code (a key of REASONS) and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to SRC
    reason: str  # a key of REASONS
    message: str

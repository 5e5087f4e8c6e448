"""What decides a prepared folder's contents: the options of ``prunetui prepare``."""

from __future__ import annotations

from dataclasses import dataclass

OUTPUT_SIZE = 144


class PrepareError(ValueError):
    """Unusable input or options; the message says what to change."""


def default_min_face_size(output_size: int = OUTPUT_SIZE) -> int:
    """A third of the output: smaller faces would be upscaled more than 3x into blur."""
    return output_size // 3


@dataclass(frozen=True)
class Settings:
    """What decides the outputs; a DST is only ever continued with the same settings."""

    faces: str = "largest"
    margin: float = 0.2
    min_confidence: float = 0.9
    min_face_size: int = default_min_face_size()
    output_size: int = OUTPUT_SIZE

    def validate(self) -> None:
        if self.faces not in ("largest", "all"):
            raise PrepareError(f"--faces must be 'largest' or 'all', not {self.faces!r}.")
        if not 0 <= self.margin <= 2:
            raise PrepareError(f"--margin {self.margin} is outside 0..2 (a fraction of the box).")
        if not 0 <= self.min_confidence <= 1:
            raise PrepareError(f"--min-confidence {self.min_confidence} is outside 0..1.")
        if self.min_face_size < 12:
            raise PrepareError(f"--min-face-size {self.min_face_size} is below 12 px, the "
                               "smallest face MTCNN can find.")

"""The in-memory form every dataset takes, and the error a dataset raises.

Every dataset becomes a :class:`TensorData`: train / validation / test tensors plus two hooks,
``train_batch`` (index slicing, augmentation where the dataset has one) and ``eval_input``. The
experiment loop never sees files, decoders or DataLoaders. The loaders (``mnist``, ``faces``)
import this module, never the package.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch


class DataError(RuntimeError):
    """A dataset is missing or unusable; the message tells the user exactly what to do."""


@dataclass
class TensorData:
    name: str
    num_classes: int
    input_shape: tuple[int, ...]  # shape of one model input, e.g. (784,) or (1, 128, 128)
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what loading noticed (files skipped, streamed): the run logs it
    # True when train_batch draws from its generator (augmentation); the loop then re-seeds it
    # per iteration so a run resumed mid-epoch draws exactly what an uninterrupted one would.
    augmented: ClassVar[bool] = False

    @property
    def storage(self) -> str:
        """"resident" (every image in memory) or "streamed" (read from disk as training asks)."""
        return "resident"

    @property
    def train_size(self) -> int:
        return int(self.train_x.shape[0])

    def to(self, device: torch.device | str) -> TensorData:
        moved = {f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)
                 if f.name.endswith(("_x", "_y"))}
        return dataclasses.replace(self, **moved)

    def train_batch(self, idx: torch.Tensor,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of training examples ``idx`` (already model-ready here)."""
        return self.train_x[idx], self.train_y[idx]

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        """Model-ready inputs from stored validation/test examples."""
        return x

"""Image sets kept as uint8 ``[N, C, S, S]``: augmentation and normalisation per batch.

:class:`ImageData` is what the ``folder`` and ``cifar10``/``cifar100`` loaders return when the
images fit the memory budget (``prunetui.data.stream`` holds the variant that reads them from
disk). Training takes a random ``crop`` square of each stored image, optionally after zero
padding by ``pad`` pixels (CIFAR's standard augmentation: 32 from 40), and flips it with
probability 1/2; the crop and flip indices are drawn on CPU from the loop's per-iteration
generator (so a resumed run draws what an uninterrupted one would, on any device) and applied
with one gather on the device. Evaluation takes the centre ``crop`` square. Pixels become
``(x/255 - mean[c]) / std[c]`` per channel, batch by batch: the set itself stays uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from prunetui.data.faces import crop_indices, eval_pixels
from prunetui.data.tensors import TensorData

if TYPE_CHECKING:
    import numpy as np
    import torch

STATS_CHUNK = 1024  # images per float64 chunk when summing pixel statistics


@dataclass
class ImageData(TensorData):
    crop: int = 32
    pad: int = 0  # zero padding before the random training crop (CIFAR: 4)
    mean: tuple[float, ...] = (0.0,)  # per channel, of x/255
    std: tuple[float, ...] = (1.0,)
    # One line each for the run's log: where the images live, files skipped while reading.
    augmented: ClassVar[bool] = True
    _stats: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False)

    def train_batch(self, idx: torch.Tensor,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random (padded) crop and flip of each image ``idx``, normalised."""
        x = random_crops(self.train_rows(idx), self.crop, self.pad, generator)
        return self.normalize(x), self.train_y[idx.to(self.train_y.device)]

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        """Centre crop of stored images, normalised."""
        rows = self.eval_rows(x)
        mean, std = self.channel_stats(rows.device)
        return eval_pixels(rows, self.crop, mean, std)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.channel_stats(x.device)
        return eval_pixels(x, x.shape[-1], mean, std)

    def train_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Stored uint8 images ``idx`` on the training device."""
        return self.train_x[idx.to(self.train_x.device)]

    def eval_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Stored uint8 images from what evaluation slices off ``val_x`` / ``test_x``."""
        return x

    def channel_stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as ``[C, 1, 1]`` float tensors on ``device`` (made once per device)."""
        key = str(device)
        if key not in self._stats:
            mean, std = stats_tensors(self.mean, self.std)
            self._stats[key] = (mean.to(device), std.to(device))
        return self._stats[key]


def stats_tensors(mean: tuple[float, ...], std: tuple[float, ...]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (of x/255) as the ``[C, 1, 1]`` float32 tensors that
    :meth:`ImageData.eval_input` normalises with (``PrunedModel.prepare`` uses them too)."""
    import torch

    return (torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
            torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))


def random_crops(x: torch.Tensor, crop: int, pad: int,
                 generator: torch.Generator | None) -> torch.Tensor:
    """A random ``crop`` square of each uint8 ``[n, C, S, S]`` image, after zero padding by
    ``pad``, flipped horizontally with probability 1/2; one gather on ``x``'s device."""
    import torch
    import torch.nn.functional as F

    from prunetui.device import to_device  # no GPU sync per step

    n, channels, size = x.shape[0], x.shape[1], x.shape[-1] + 2 * pad
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    x = x.contiguous()
    rows, cols = crop_indices(n, size, crop, generator)
    plane = size * size
    start = (torch.arange(n)[:, None] * (channels * plane)
             + torch.arange(channels)[None, :] * plane)
    flat = (start[:, :, None, None] + rows[:, None, :, None] * size
            + cols[:, None, None, :])
    return torch.take(x, to_device(flat, x.device))


def pixel_stats(x: torch.Tensor | np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of x/255 over uint8 ``[N, C, S, S]`` (a tensor or a memmap),
    summed in float64 over fixed chunks, so that the same images give the same numbers
    whether they are in memory or on disk; a constant channel gets std 1."""
    import torch

    n, channels = int(x.shape[0]), int(x.shape[1])
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, n, STATS_CHUNK):
        chunk = torch.as_tensor(x[start:start + STATS_CHUNK]).double().div_(255.0)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = max(1, n * int(x.shape[2]) * int(x.shape[3]))
    mean = total / count
    var = (squares / count - mean.square()).clamp_min(0.0) * count / max(1, count - 1)
    std = var.sqrt()
    return (tuple(float(m) for m in mean),
            tuple(float(s) if s > 1e-6 else 1.0 for s in std))

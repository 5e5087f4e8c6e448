"""Input shapes of the convolutional networks: ``(C, H, W)`` images, or flat square gray ones.

MNIST arrives flat (``input_shape = (784,)``); a convolutional network reads it as one
28x28 gray channel. :func:`image_shape` says how a data set's ``input_shape`` is read and
:func:`as_images` reshapes a batch accordingly.
"""

from __future__ import annotations

import math

import torch


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` for an input shape; a flat ``(N,)`` is one square gray channel."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side == shape[0]:
            return (1, side, side)
    raise ValueError(f"inputs of shape {shape} are not images: a convolutional network needs "
                     "(channels, height, width) or a flat square gray image")


def as_images(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """A batch of flat inputs as images of ``shape``; image batches pass unchanged."""
    return x if x.dim() == 4 else x.reshape(x.shape[0], *shape)


def pooled(size: int, pools: int) -> int:
    """Spatial size after ``pools`` 2x2 max-pools with stride 2 (floor, as nn.MaxPool2d)."""
    for _ in range(pools):
        size //= 2
    return size

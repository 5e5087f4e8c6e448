"""LightCNN-9 (Wu et al., "A Light CNN for Deep Face Representation with Noisy Labels", 2018).

Every activation is a max-feature-map (MFM): one convolution or linear layer with 2*C outputs,
then the elementwise max of its two halves. The MFM layers subclass ``nn.Conv2d``/``nn.Linear``,
so each is exactly one prunable weight to the generic pruning code and the parameter names
follow the paper's table (``conv1.weight``, ``conv2a.weight``, ..., ``fc1.weight``,
``fc2.weight``). ``fc2``, the classifier, is registered last, making it the output layer.
"""

from __future__ import annotations

import torch
from torch import nn

# (1x1 "a" layer, 3x3 layer) output channels of the four groups, as in the paper.
GROUP_CHANNELS = (96, 192, 128, 128)
CONV1_CHANNELS = 48
FC1_FEATURES = 256
POOL_AFTER = {1, 2, 3, 5}  # layer numbers followed by a 2x2 max-pool (conv1, conv2, conv3, conv5)


def mfm(x: torch.Tensor) -> torch.Tensor:
    """Elementwise max of the two halves of dimension 1.

    A max-reduction over a new axis of size 2: its backward is one index scatter, about 2x
    faster on CPU than ``torch.maximum(a, b)``, whose backward splits gradients at ties.
    """
    return x.unflatten(1, (2, -1)).max(dim=1).values


class MFMConv2d(nn.Conv2d):
    """Conv2d with ``2 * out_channels`` filters followed by a max-feature-map."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, 2 * out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mfm(super().forward(x))


class MFMLinear(nn.Linear):
    """Linear with ``2 * out_features`` outputs followed by a max-feature-map."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, 2 * out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mfm(super().forward(x))


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def pooled_size(size: int, pools: int) -> int:
    """Spatial size after ``pools`` 2x2 max-pools with ceil_mode (the convolutions keep size)."""
    for _ in range(pools):
        size = -(-size // 2)
    return size


class LightCNN9(nn.Module):
    """conv1 5x5 -> pool -> 4 groups (1x1 MFM + 3x3 MFM) with pools -> fc1 MFM -> dropout -> fc2.

    ``width`` scales every hidden channel count and fc1's features (1.0 is the paper's network).
    fc1's input size follows from ``input_shape`` (C, H, W), e.g. 128x128 -> 8x8 after 4 pools.
    """

    # Max-feature-map keeps one of two units instead of zeroing half of them like ReLU, so
    # Kaiming's ReLU gain (sqrt 2) compounds over the ten MFM layers: logits had std ~80 at
    # init. The linear gain keeps them near 1.
    kaiming_nonlinearity = "linear"
    default_init = "glorot-normal"  # model.init = "default" (the presets' choice)

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0,
                 dropout: float = 0.5) -> None:
        super().__init__()
        channels, height, width_px = input_shape
        c1 = scaled(CONV1_CHANNELS, width)
        self.conv1 = MFMConv2d(channels, c1, 5)
        previous = c1
        for number, out in enumerate((scaled(c, width) for c in GROUP_CHANNELS), start=2):
            # A group: 1x1 MFM keeping the channel count, then a 3x3 MFM changing it.
            self.add_module(f"conv{number}a", MFMConv2d(previous, previous, 1))
            self.add_module(f"conv{number}", MFMConv2d(previous, out, 3))
            previous = out
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        spatial = pooled_size(height, len(POOL_AFTER)) * pooled_size(width_px, len(POOL_AFTER))
        self.fc1 = MFMLinear(previous * spatial, scaled(FC1_FEATURES, width))
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(scaled(FC1_FEATURES, width), num_classes)  # classifier: last

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fc1 embedding (before dropout)."""
        x = self.conv1(x)
        x = self.pool(x)
        for number in range(2, 2 + len(GROUP_CHANNELS)):
            x = getattr(self, f"conv{number}")(getattr(self, f"conv{number}a")(x))
            if number in POOL_AFTER:
                x = self.pool(x)
        return self.fc1(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.features(x)))

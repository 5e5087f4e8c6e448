"""Conv-2, Conv-4 and Conv-6: the small VGG-like networks of the Lottery Ticket paper.

Frankle & Carbin (2019), Figure 2: pairs of 3x3 convolutions (64, then 128, then 256 channels,
padding 1) each pair followed by a 2x2 max-pool, then fully connected layers of 256 and 256
units and the classifier. With 32x32x3 inputs they have 4.3M, 2.4M and 1.7M weights. The
classifier ``fc`` is registered last, so it is the output layer to the pruning code.
"""

from __future__ import annotations

import torch
from torch import nn

from prunetui.nets.shapes import as_images, image_shape, pooled

# Convolution channels per pair; each pair is followed by a max-pool.
PAIRS = {"conv-2": (64,), "conv-4": (64, 128), "conv-6": (64, 128, 256)}
FC_UNITS = (256, 256)


class ConvNet(nn.Module):
    """``features`` (conv, ReLU, conv, ReLU, pool per pair) -> ``fc_layers`` -> ``fc``."""

    def __init__(self, pairs: tuple[int, ...], input_shape: tuple[int, ...],
                 num_classes: int) -> None:
        super().__init__()
        self.image_shape = image_shape(input_shape)
        channels, height, width = self.image_shape
        layers: list[nn.Module] = []
        for out in pairs:
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(out, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        flat = channels * pooled(height, len(pairs)) * pooled(width, len(pairs))
        if flat == 0:
            raise ValueError(f"inputs of {height}x{width} are too small for {len(pairs)} "
                             "max-pools")
        hidden: list[nn.Module] = []
        for units in FC_UNITS:
            hidden += [nn.Linear(flat, units), nn.ReLU()]
            flat = units
        self.fc_layers = nn.Sequential(*hidden)
        self.fc = nn.Linear(flat, num_classes)  # classifier: last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(as_images(x, self.image_shape))
        return self.fc(self.fc_layers(x.flatten(1)))


def conv_net(name: str, input_shape: tuple[int, ...], num_classes: int) -> ConvNet:
    return ConvNet(PAIRS[name], input_shape, num_classes)

"""VGG-19 for CIFAR-10, as open_lth's ``cifar_vgg_19`` is described.

Sixteen 3x3 convolutions (64, 64, M, 128, 128, M, 256 x4, M, 512 x4, M, 512 x4; M a 2x2
max-pool), each followed by BatchNorm and ReLU, then a global average pool and one linear
classifier: about 20.0M parameters. The global pool lets it take 28x28 inputs too.
"""

from __future__ import annotations

import torch
from torch import nn

from prunetui.nets.shapes import as_images, image_shape

PLAN_19: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                  512, 512, 512, 512, "M", 512, 512, 512, 512)


class VGG(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int,
                 plan: tuple[int | str, ...] = PLAN_19) -> None:
        super().__init__()
        self.image_shape = image_shape(input_shape)
        channels = self.image_shape[0]
        layers: list[nn.Module] = []
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = int(item)
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)  # classifier: last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(as_images(x, self.image_shape)))
        return self.fc(x.flatten(1))

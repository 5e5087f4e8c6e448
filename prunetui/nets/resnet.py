"""ResNet-20 for CIFAR-10 (He et al. 2016, section 4.2), as open_lth's ``cifar_resnet_20``.

A 3x3 convolution to 16 channels, then three stages of three basic blocks (16, 32, 64
channels; the first block of stages two and three halves the size with stride 2), a global
average pool and a linear classifier. Every convolution is followed by BatchNorm; where a
block changes the shape its shortcut is a 1x1 convolution with BatchNorm. About 0.27M
parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from prunetui.nets.shapes import as_images, image_shape

STAGES = (16, 32, 64)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int = 20) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n+2, not {depth}")
        per_stage = (depth - 2) // 6
        self.image_shape = image_shape(input_shape)
        self.conv = nn.Conv2d(self.image_shape[0], STAGES[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(STAGES[0])
        blocks = []
        channels = STAGES[0]
        for stage, out in enumerate(STAGES):
            for i in range(per_stage):
                blocks.append(BasicBlock(channels, out, 2 if stage and i == 0 else 1))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)  # classifier: last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(as_images(x, self.image_shape))))
        x = self.pool(self.blocks(x))
        return self.fc(x.flatten(1))

"""LeNet-300-100: the fully connected network of the Lottery Ticket paper's MNIST experiments."""

from __future__ import annotations

import torch
from torch import nn


class LeNet300100(nn.Module):
    default_init = "glorot-normal"  # model.init = "default": the paper's Gaussian Glorot

    def __init__(self, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)

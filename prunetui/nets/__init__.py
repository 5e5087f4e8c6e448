"""Model construction, initialisation and the list of prunable layers.

A prunable layer is any ``nn.Linear`` or ``nn.Conv2d`` weight. Registration order gives the
roles: the first is the input layer, the last the output (classifier) layer, the rest hidden.
Both networks register their classifier last, so no per-model pruning code is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunetui.config import ModelConfig


@dataclass(frozen=True)
class PrunableLayer:
    name: str  # parameter name in state_dict, e.g. "fc1.weight"
    role: str  # "first" | "hidden" | "output"


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if cfg.arch == "lenet-300-100":
        from prunetui.nets.lenet import LeNet300100

        return LeNet300100(in_features=int(torch.tensor(input_shape).prod()),
                           num_classes=num_classes)
    if cfg.arch == "lightcnn-9":
        from prunetui.nets.lightcnn import LightCNN9

        return LightCNN9(input_shape=input_shape, num_classes=num_classes, width=cfg.width)
    raise ValueError(f"unknown architecture {cfg.arch!r}")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def prunable_layers(model: nn.Module) -> list[PrunableLayer]:
    layers = weight_layers(model)
    out = []
    for i, (name, _) in enumerate(layers):
        role = "first" if i == 0 else "output" if i == len(layers) - 1 else "hidden"
        out.append(PrunableLayer(name=f"{name}.weight", role=role))
    return out


def init_weights(model: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """Glorot (Xavier) or Kaiming normal weights, zero biases, drawn from ``generator``."""
    nonlinearity = getattr(model, "kaiming_nonlinearity", "relu")
    with torch.no_grad():
        for _, module in weight_layers(model):
            if scheme == "glorot-normal":
                nn.init.xavier_normal_(module.weight, generator=generator)
            elif scheme == "kaiming-normal":
                nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity,
                                        generator=generator)
            else:
                raise ValueError(f"unknown init {scheme!r}")
            if module.bias is not None:
                module.bias.zero_()

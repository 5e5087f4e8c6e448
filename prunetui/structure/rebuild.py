"""The shapes of a shrunk network, and the network rebuilt from them.

A shrunk built-in network is the built-in one with smaller Linear, Conv2d and BatchNorm
layers: its ``forward`` reads no channel count (LightCNN's max-feature-map splits in halves,
ResNet adds whatever arrives). So a file needs only ``model.arch`` (with ``width`` /
``args``), the input shape, the number of classes, :func:`shapes` and the state dict:
:func:`rebuild` builds the dense network, gives each recorded layer its recorded shape, and
the state dict then loads into it. The record is plain JSON (lists of ints).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from prunetui.config import ModelConfig
from prunetui.nets import build_model

Shapes = dict[str, dict[str, list[int]]]
RESIZED = (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)


def shapes(model: nn.Module) -> Shapes:
    """``{module: {parameter or buffer: shape}}`` for every Linear, Conv2d and BatchNorm."""
    record = {}
    for name, module in model.named_modules():
        if isinstance(module, RESIZED):
            record[name] = {
                key: list(t.shape)
                for key, t in [*module.named_parameters(recurse=False),
                               *module.named_buffers(recurse=False)]
                if t is not None and t.dim() >= 1}
    return record


def resize(module: nn.Module, record: Mapping[str, list[int]]) -> None:
    """Give the module's tensors the recorded shapes (zeros: the state dict fills them)."""
    params = dict(module.named_parameters(recurse=False))
    for key, shape in record.items():
        old = getattr(module, key)
        new = torch.zeros(shape, dtype=old.dtype, device=old.device)
        if key in params:
            setattr(module, key, nn.Parameter(new, requires_grad=old.requires_grad))
        else:
            setattr(module, key, new)
    if isinstance(module, nn.Conv2d):
        module.out_channels = module.weight.shape[0]
        module.in_channels = module.weight.shape[1] * module.groups
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif record:
        module.num_features = next(iter(record.values()))[0]


def rebuild(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
            record: Mapping[str, Mapping[str, list[int]]]) -> nn.Module:
    """The network of ``cfg`` with the recorded layer shapes, ready for ``load_state_dict``."""
    model = build_model(cfg, input_shape, num_classes)
    del model.prunetui_rebuild  # it would build the dense network
    modules = dict(model.named_modules())
    for name, layer_record in record.items():
        if name not in modules:
            raise ValueError(f"{cfg.arch} has no layer {name!r}: the shapes are of another "
                             "network")
        resize(modules[name], layer_record)
    return model

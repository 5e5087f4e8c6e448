"""Torch-Pruning's pruner for LightCNN's max-feature-map (MFM) layers.

An MFM layer (:class:`~prunetui.nets.lightcnn.MFMConv2d` / ``MFMLinear``) has ``2*C`` filters
and outputs the elementwise max of its two halves: ``C`` units, unit ``c`` fed by rows ``c`` and
``c + C``. Torch-Pruning 1.6 treats it as a plain Conv2d of ``2*C`` outputs, so its flatten
index mapping through ``unflatten(1, (2, -1))`` sends rows ``2c`` and ``2c+1`` to the next
layer's input ``c`` and removes single rows: the MFM halves go out of step (``unflatten``
fails on an odd channel count, or ``MetaPruner`` raises ``IndexError: index 64 is out of
bounds``). This pruner gives it ``C`` output units and removes rows in pairs; the ``unflatten``
inside then sees ``C`` on both sides and maps indices one to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch_pruning as tp
from torch import nn

from prunetui.nets.lightcnn import MFMConv2d, MFMLinear

MFM_TYPES = (MFMConv2d, MFMLinear)


def is_mfm(module: nn.Module) -> bool:
    return isinstance(module, MFM_TYPES)


def pair_rows(units: Sequence[int], half: int) -> list[int]:
    """Weight rows of MFM units: ``c`` and ``c + half`` for each."""
    return [*units, *(c + half for c in units)]


def set_sizes(layer: nn.Module) -> None:
    """The layer's size attributes after its weight changed shape."""
    out, inp = layer.weight.shape[0], layer.weight.shape[1]
    if isinstance(layer, nn.Conv2d):
        layer.out_channels, layer.in_channels = out, inp * layer.groups
    else:
        layer.out_features, layer.in_features = out, inp


class MFMPruner(tp.pruner.BasePruningFunc):
    """Output units are MFM channels (row pairs); inputs are the weight's columns."""

    TARGET_MODULES = MFM_TYPES

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        half = layer.weight.shape[0] // 2
        keep = pair_rows(sorted(set(range(half)) - set(idxs)), half)
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
        if layer.bias is not None:
            layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)
        set_sizes(layer)
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        keep = sorted(set(range(layer.weight.shape[1])) - set(idxs))
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 1)
        set_sizes(layer)
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.weight.shape[0] // 2

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.weight.shape[1]


MFM_PRUNER = MFMPruner()
CUSTOM_PRUNERS = {MFMConv2d: MFM_PRUNER, MFMLinear: MFM_PRUNER}

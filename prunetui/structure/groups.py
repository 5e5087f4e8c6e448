"""Unit groups: the output units that must be removed together, and what each unit owns.

A *unit* is an output neuron of an ``nn.Linear`` or an output channel of an ``nn.Conv2d``
(of a LightCNN max-feature-map layer: one MFM channel, i.e. two filters). Layers whose units
meet in an elementwise operation (a residual addition) must drop the same indices: they form
one group, whose unit ``j`` is unit ``j`` of every member. Uncoupled layers are groups of one.

Removing unit ``j`` removes every entry it owns, listed as :class:`Part` s: the members' weight
rows and biases, the BatchNorm entries of those channels, and the input columns of every layer
that reads them (a Linear after a flatten reads each channel at ``H*W`` columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Part kinds: which entries of the module a unit owns.
OUT = "out"  # Linear/Conv2d output unit: weight row (dim 0) and bias entry
PAIR_OUT = "pair-out"  # max-feature-map unit c: weight rows c and c + half, the same biases
IN = "in"  # Linear/Conv2d input: weight column (dim 1)
CHANNEL = "channel"  # BatchNorm / PReLU: every parameter and buffer entry on dim 0
OUTPUT_KINDS = (OUT, PAIR_OUT)
SKIP_HINT = "; leave it dense with prune.skip"


class CouplingError(ValueError):
    """The network's units cannot be coupled for unit pruning; the message names the layer."""


class UnitPruningError(ValueError):
    """A pruning step cannot be done (e.g. a layer would lose all its units); ``setting`` is
    the ``[prune]`` rate that pruned that layer ("rate", "first_rate", "conv_rate", ...)."""

    def __init__(self, message: str, setting: str = "rate") -> None:
        super().__init__(message)
        self.setting = setting


class CriterionError(ValueError):
    """The unit criterion cannot rank this network's units (``bn-scale`` without a BatchNorm
    after a layer); ``reason`` is the message without the setting it is about."""

    def __init__(self, criterion: str, reason: str) -> None:
        self.criterion, self.reason = criterion, reason
        super().__init__(f"prune.unit_criterion = \"{criterion}\" {reason}")


@dataclass(frozen=True, eq=False)
class Part:
    """Entries of one module owned by the group's units: entry ``index[k]`` belongs to group
    unit ``unit[k]`` (indices in the module's own pruning coordinates: for ``pair-out`` the MFM
    channel, else the row, column or channel)."""

    module: str  # module name in the network, e.g. "blocks.0.bn2"
    kind: str  # OUT | PAIR_OUT | IN | CHANNEL
    unit: torch.Tensor  # int64 [n]: the group unit of each entry
    index: torch.Tensor  # int64 [n]: the entry


@dataclass(frozen=True, eq=False)
class UnitGroup:
    layers: tuple[str, ...]  # weight names of the members, e.g. ("conv.weight", ...)
    size: int  # units per member
    parts: tuple[Part, ...]
    norms: tuple[tuple[str, str], ...] = ()  # (member weight, BatchNorm reading it directly)
    problem: str = ""  # why its units cannot be removed ("" when they can)

    def modules(self) -> tuple[str, ...]:
        return tuple(module_of(layer) for layer in self.layers)


def module_of(layer: str) -> str:
    """``"blocks.0.conv1.weight"`` -> ``"blocks.0.conv1"``."""
    return layer.removesuffix(".weight")


def group_of(groups: list[UnitGroup] | tuple[UnitGroup, ...], layer: str) -> UnitGroup:
    for group in groups:
        if layer in group.layers:
            return group
    raise KeyError(f"no unit group has the layer {layer!r}")


def dead_entries(part: Part, dead_units: torch.Tensor) -> torch.Tensor:
    """Sorted distinct entries of ``part`` owned by the units where ``dead_units`` is True."""
    return torch.unique(part.index[dead_units[part.unit]])

"""Each unit group checked against the network itself, before anything is pruned.

Torch-Pruning resolves most networks, but where its tracing guesses wrong (a concatenation
followed by a flatten, an operation it takes for an elementwise one) its groups would remove
the wrong entries. So one or two units of every group that something reads are removed, the
network is shrunk, and the shrunk network must compute what the masked one computes on a
random batch. Only when that fails is each group tried alone, to name the layer at fault: such
a group is marked with a ``problem`` (it stays dense; pruning it is an error suggesting
``prune.skip``). Costs two copies of the network and two forward passes.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from prunetui.structure.groups import OUTPUT_KINDS, SKIP_HINT, UnitGroup
from prunetui.structure.shrink import ShrinkError, shrink
from prunetui.structure.units import UnitMasks, dense_unit_masks

FAILURES = (ShrinkError, RuntimeError, AssertionError, IndexError, ValueError)


def probed(groups: list[UnitGroup], chosen: list[int]) -> UnitMasks:
    """Dense unit masks but for units ``size // 2`` and ``size - 1`` of the chosen groups."""
    masks = dense_unit_masks(groups)
    for i in chosen:
        for layer in groups[i].layers:
            masks[layer][[groups[i].size // 2, groups[i].size - 1]] = 0
    return masks


def probe_input(example_input: torch.Tensor) -> torch.Tensor:
    if not example_input.is_floating_point():
        return example_input
    generator = torch.Generator().manual_seed(0)
    return torch.randn(example_input.shape, generator=generator).to(
        example_input.device, example_input.dtype)


def agrees(model: nn.Module, groups: list[UnitGroup], chosen: list[int],
           x: torch.Tensor) -> bool:
    try:
        shrink(model, probed(groups, chosen), groups, x)
    except FAILURES:
        return False
    return True


def verified(model: nn.Module, groups: list[UnitGroup], example_input: torch.Tensor
             ) -> list[UnitGroup]:
    """``groups``, with a ``problem`` on each whose removal the network does not bear out."""
    read = [i for i, g in enumerate(groups) if not g.problem and g.layers and g.size >= 2
            and any(p.kind not in OUTPUT_KINDS for p in g.parts)]
    x = probe_input(example_input)
    if not read or agrees(model, groups, read, x):
        return groups
    out = list(groups)
    for i in read:
        if not agrees(model, groups, [i], x):
            names = ", ".join(groups[i].modules())
            out[i] = replace(groups[i], problem=(
                f"removing units of {names} changes what the network computes: Torch-Pruning "
                f"did not resolve what reads them{SKIP_HINT}"))
    return out

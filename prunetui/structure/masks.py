"""Unit masks to parameter masks: what training multiplies in after every optimizer step.

A removed unit loses every entry it owns (:class:`~prunetui.structure.groups.Part`): the
members' weight rows and biases, the input columns of every layer reading it, and its
BatchNorm scale *and* shift. The shift matters: a zeroed channel followed by BatchNorm outputs
``beta``, not 0 (in eval mode ``gamma * (0 - mean) / std + beta``); with ``gamma = beta = 0``
it outputs exactly 0 in train and eval mode alike, whatever the running statistics hold, so
those are left as they are (the shrunk network drops them). The readers' columns are masked
too, so a dead unit whose activation is not 0 at 0 (a sigmoid, a BatchNorm without affine)
still reaches nothing. The masked network then computes exactly what the shrunk one does, up to
float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from prunetui.structure.groups import (
    CHANNEL,
    IN,
    OUT,
    PAIR_OUT,
    Part,
    dead_entries,
)
from prunetui.structure.units import Groups, UnitMasks, group_mask

ParamMasks = dict[str, torch.Tensor]


def part_entries(part: Part, module: nn.Module, entries: torch.Tensor
                 ) -> list[tuple[str, int, torch.Tensor]]:
    """(parameter name in the module, dim, indices) that ``entries`` of ``part`` cover."""
    if part.kind == OUT:
        return [(name, 0, entries) for name in ("weight", "bias")
                if getattr(module, name, None) is not None]
    if part.kind == PAIR_OUT:
        rows = torch.cat([entries, entries + module.weight.shape[0] // 2])
        return [(name, 0, rows) for name in ("weight", "bias")
                if getattr(module, name, None) is not None]
    if part.kind == IN:
        return [("weight", 1, entries)]
    if part.kind == CHANNEL:
        return [(name, 0, entries) for name, p in module.named_parameters(recurse=False)
                if p.dim() >= 1]
    raise ValueError(f"unknown part kind {part.kind!r}")


def param_masks(model: nn.Module, unit_masks: Mapping[str, torch.Tensor],
                groups: Groups) -> ParamMasks:
    """A 0/1 mask shaped like each parameter that some unit owns (all ones where no unit is
    removed, so the keys stay the same every round), on the parameter's device."""
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    masks: ParamMasks = {}
    for group in groups:
        if not group.layers:
            continue
        dead = group_mask(group, unit_masks) == 0
        for part in group.parts:
            entries = dead_entries(part, dead)
            module = modules[part.module]
            for name, dim, index in part_entries(part, module, entries):
                full = f"{part.module}.{name}"
                mask = masks.get(full)
                if mask is None:
                    mask = masks[full] = torch.ones_like(params[full], requires_grad=False)
                mask.index_fill_(dim, index.to(mask.device), 0)
    return masks


def unit_masks_from(masks: Mapping[str, torch.Tensor], groups: Groups) -> UnitMasks:
    """Unit masks back from parameter masks (e.g. a checkpoint's): a unit is alive when any
    weight of its rows is."""
    out = {}
    for group in groups:
        alive = torch.ones(group.size, dtype=torch.bool)
        for part in (p for p in group.parts if p.kind in (OUT, PAIR_OUT)):
            weight = masks.get(f"{part.module}.weight")
            if weight is None or f"{part.module}.weight" not in group.layers:
                continue
            rows = weight.detach().flatten(1).ne(0).any(1).cpu()
            if part.kind == PAIR_OUT:
                rows = rows[: rows.shape[0] // 2] | rows[rows.shape[0] // 2:]
            alive[part.unit] &= rows[part.index]
        for layer in group.layers:
            out[layer] = alive.float()
    return out

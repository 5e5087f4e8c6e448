"""Unit scores, unit masks and the unit pruning step, as pure functions.

A unit mask is a float tensor of 0s and 1s with one entry per output unit of a Linear/Conv2d
layer (an MFM layer's unit is one MFM channel), keyed like weight masks (``"fc1.weight"``).
The members of a :class:`~prunetui.structure.groups.UnitGroup` always share one mask.

As in :mod:`prunetui.pruning`, rates are fractions of the units still alive and each round
removes ``round(rate * alive)`` of them, lowest score first (ties: lowest index). A group is
ranked by the sum of its members' scores. The classifier's units are the classes: it never
loses any, in either scope. A group with a member outside ``layers`` (``prune.skip``) stays
dense; in layer scope a group takes the lowest of its members' rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from prunetui.nets import PrunableLayer
from prunetui.pruning import PruneRates
from prunetui.structure.groups import (
    PAIR_OUT,
    CouplingError,
    CriterionError,
    UnitGroup,
    UnitPruningError,
    module_of,
)

UnitMasks = dict[str, torch.Tensor]
Groups = Sequence[UnitGroup]
CRITERIA = ("l1", "l2", "bn-scale")


def unit_scores(model: nn.Module, layers: list[PrunableLayer], criterion: str,
                groups: Groups) -> dict[str, torch.Tensor]:
    """Score of each output unit of every layer but the classifier (which keeps its units).

    ``l1`` / ``l2``: the norm of the unit's weights (a Linear row, a Conv2d output channel,
    both rows of an MFM unit). ``bn-scale``: ``|gamma|`` of the BatchNorm that reads the layer's
    output directly; a layer without one is a :class:`CriterionError` (a ``ValueError``)
    naming it."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown unit criterion {criterion!r}; use one of "
                         + ", ".join(CRITERIA))
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    pairs = {f"{p.module}.weight" for g in groups for p in g.parts if p.kind == PAIR_OUT}
    norms = {layer: bn for g in groups for layer, bn in g.norms}
    scores = {}
    for layer in layers:
        if layer.role == "output":
            continue
        if criterion == "bn-scale":
            scores[layer.name] = bn_scale(modules, norms, layer.name)
            continue
        rows = params[layer.name].detach().flatten(1)
        per_row = rows.abs().sum(1) if criterion == "l1" else rows.square().sum(1)
        if layer.name in pairs:
            half = per_row.shape[0] // 2
            per_row = per_row[:half] + per_row[half:]
        scores[layer.name] = per_row if criterion == "l1" else per_row.sqrt()
    return scores


def bn_scale(modules: Mapping[str, nn.Module], norms: Mapping[str, str],
             layer: str) -> torch.Tensor:
    name = module_of(layer)
    bn = modules[norms[layer]] if layer in norms else None
    if bn is None:
        raise CriterionError(
            "bn-scale", f"ranks units by the BatchNorm that follows each layer, but no "
            f"BatchNorm reads {name}'s output directly; use \"l1\" or \"l2\", or leave {name} "
            "dense with prune.skip")
    if getattr(bn, "weight", None) is None:
        raise CriterionError(
            "bn-scale", f"needs a BatchNorm scale, but the BatchNorm {norms[layer]} after "
            f"{name} has none (affine=False); use \"l1\" or \"l2\"")
    return bn.weight.detach().abs().clone()


def dense_unit_masks(groups: Groups) -> UnitMasks:
    """All units alive, for every Linear/Conv2d layer of the network."""
    return {layer: torch.ones(g.size) for g in groups for layer in g.layers}


def group_mask(group: UnitGroup, unit_masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The group's alive units (a unit dead in any member is dead)."""
    mask = torch.ones(group.size)
    for layer in group.layers:
        mask = mask * unit_masks[layer].detach().to("cpu", torch.float32)
    return mask


def prunable_groups(groups: Groups, layers: list[PrunableLayer]) -> list[UnitGroup]:
    """Groups that may lose units: every member is prunable, none is the classifier.

    A group whose coupling could not be resolved is an error here, naming its layer."""
    roles = {layer.name: layer.role for layer in layers}
    found = []
    for group in groups:
        if not all(m in roles for m in group.layers) or any(
                roles[m] == "output" for m in group.layers):
            continue
        if group.problem:
            names = ", ".join(group.modules())
            raise CouplingError(f"unit pruning cannot prune layer {names}: {group.problem}")
        found.append(group)
    return found


def group_rate(group: UnitGroup, layers: Mapping[str, PrunableLayer],
               rates: PruneRates) -> float:
    """The group's rate in layer scope: the lowest of its members' (``layers``: by name)."""
    return rates.for_layer(rate_member(group, layers, rates))


def rate_member(group: UnitGroup, layers: Mapping[str, PrunableLayer],
                rates: PruneRates) -> PrunableLayer:
    """The member whose rate the group is pruned at (the lowest), to name its setting."""
    return min((layers[m] for m in group.layers), key=rates.for_layer)


def remove_lowest(scores: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """New mask with the ``count`` alive entries of lowest score removed (ties: lowest index)."""
    new = mask.clone()
    if count <= 0:
        return new
    ranked = torch.where(mask > 0, scores, torch.full_like(scores, float("inf")))
    new[torch.argsort(ranked, stable=True)[:count]] = 0
    return new


def prune_units(scores: Mapping[str, torch.Tensor], unit_masks: Mapping[str, torch.Tensor],
                layers: list[PrunableLayer], rates: PruneRates, scope: str,
                groups: Groups) -> UnitMasks:
    """Unit masks for the next round (every key of ``unit_masks`` kept)."""
    if scope not in ("layer", "global"):
        raise ValueError(f"unknown scope {scope!r}")
    by_name = {layer.name: layer for layer in layers}
    todo = prunable_groups(groups, layers)
    masks = {id(g): group_mask(g, unit_masks) for g in todo}
    ranks = {id(g): sum(scores[m].detach().to("cpu", torch.float32) for m in g.layers)
             for g in todo}

    def own_rate(g: UnitGroup) -> bool:  # global scope: as pruning.prune_global
        return scope == "layer" or any(rates.pruned_separately(by_name[m]) for m in g.layers)

    new = {}
    for g in (g for g in todo if own_rate(g)):
        alive = int(masks[id(g)].sum().item())
        rate = group_rate(g, by_name, rates)
        new[id(g)] = remove_lowest(ranks[id(g)], masks[id(g)], round(rate * alive))
    pooled = [g for g in todo if not own_rate(g)]
    if pooled:
        flat_mask = torch.cat([masks[id(g)] for g in pooled])
        flat_new = remove_lowest(torch.cat([ranks[id(g)] for g in pooled]), flat_mask,
                                 round(rates.rate * int(flat_mask.sum().item())))
        for g, part in zip(pooled, flat_new.split([g.size for g in pooled]), strict=True):
            new[id(g)] = part.clone()
    out = {name: mask.clone() for name, mask in unit_masks.items()}
    for g in todo:
        if not new[id(g)].any():
            names = ", ".join(g.modules())
            setting = rates.source(rate_member(g, by_name, rates)) if own_rate(g) else "rate"
            raise UnitPruningError(
                f"layer {names} would lose all its {g.size} units; lower prune.{setting} or "
                "leave it dense with prune.skip", setting)
        for layer in g.layers:
            out[layer] = new[id(g)].to(unit_masks[layer].device, unit_masks[layer].dtype)
    return out


def random_unit_masks_like(unit_masks: Mapping[str, torch.Tensor], groups: Groups,
                           generator: torch.Generator) -> UnitMasks:
    """Random unit masks with as many units alive per group as ``unit_masks`` (random-mask)."""
    out = {name: mask.clone() for name, mask in unit_masks.items()}
    for g in groups:
        if not g.layers:
            continue
        removed = g.size - int(group_mask(g, unit_masks).sum().item())
        mask = remove_lowest(torch.rand(g.size, generator=generator), torch.ones(g.size),
                             removed)
        for layer in g.layers:
            out[layer] = mask.to(unit_masks[layer].device, unit_masks[layer].dtype)
    return out


def units_left(unit_masks: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Alive units per layer."""
    return {name: int(mask.sum().item()) for name, mask in unit_masks.items()}

"""Unit pruning inside the round loop (``prune.structure = "unit"``): each round's masks from
whole units, neurons of a Linear layer and channels of a Conv2d.

The loop is the same for both structures: a segment's masks are a dict parameter name -> 0/1
tensor, multiplied in after every optimizer step and kept in its checkpoints. With units they
cover every parameter a unit owns (:mod:`prunetui.structure.masks`: the members' weight rows
and biases, BatchNorm scale and shift, the readers' input columns), with the same keys every
round. The unit masks are read back from them (``unit_masks_from``), so resume, the schemes,
``mask_from = "rewind"`` and the checkpoints need nothing of their own.

:class:`UnitPruner` holds what a run needs once: the network's unit groups, traced on a CPU
copy of the network when the run starts (which also checks the coupling, the criterion and, in
layer scope, that no layer loses all its units, so such a problem stops the run before any
training, as a :class:`ConfigError`), and that copy, into which trained weights are loaded to
score their units.

Progress is counted in prunable weights with either structure (:func:`sparsity_fields`): the
x-axis stays "fraction of weights left"; a unit run's sparsity records add its unit counts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunetui import pruning
from prunetui.config import Config, ConfigError
from prunetui.nets import PrunableLayer
from prunetui.structure.groups import CouplingError, CriterionError, UnitGroup, UnitPruningError
from prunetui.structure.masks import param_masks, unit_masks_from
from prunetui.structure.units import (
    UnitMasks,
    dense_unit_masks,
    group_rate,
    prunable_groups,
    prune_units,
    random_unit_masks_like,
    rate_member,
    unit_scores,
)

State = dict[str, torch.Tensor]


@dataclass
class UnitPruner:
    """A run's unit groups, its criterion, and a CPU copy of its network to score with."""

    scratch: nn.Module
    groups: list[UnitGroup]
    layers: list[PrunableLayer]
    criterion: str

    def dense_masks(self) -> pruning.Masks:
        """Round 0's masks: every parameter a unit owns, all ones."""
        return self.param_masks(dense_unit_masks(self.groups))

    def unit_masks(self, masks: pruning.Masks) -> UnitMasks:
        return unit_masks_from(masks, self.groups)

    def param_masks(self, unit_masks: UnitMasks) -> pruning.Masks:
        masks = param_masks(self.scratch, unit_masks, self.groups)
        return {name: mask.to(torch.float32) for name, mask in masks.items()}

    def pruned(self, previous: pruning.Masks, trained: State | None, rates: pruning.PruneRates,
               scope: str, where: str, generator: torch.Generator | None = None
               ) -> pruning.Masks:
        """The next round's masks: the units of ``previous`` ranked by the criterion on the
        ``trained`` weights, or by random scores from ``generator`` (random-mask)."""
        units = self.unit_masks(previous)
        if generator is None:
            assert trained is not None
            self.scratch.load_state_dict(trained)
            scores = unit_scores(self.scratch, self.layers, self.criterion, self.groups)
        else:
            scores = {layer.name: torch.rand(units[layer.name].shape, generator=generator)
                      for layer in self.layers if layer.role != "output"}
        try:
            new = prune_units(scores, units, self.layers, rates, scope, self.groups)
        except UnitPruningError as err:
            raise ConfigError(f"prune.{err.setting}", getattr(rates, err.setting),
                              f"{where}, {err}") from None
        except CouplingError as err:
            raise ConfigError("prune.structure", "unit", f"{where}, {err}") from None
        return self.param_masks(new)

    def random_like(self, shared: pruning.Masks, generator: torch.Generator) -> pruning.Masks:
        """Random units, as many per layer as ``shared`` keeps (random-mask, shared masks)."""
        return self.param_masks(random_unit_masks_like(self.unit_masks(shared), self.groups,
                                                       generator))

    def unit_counts(self, masks: pruning.Masks) -> dict[str, list[int]]:
        """``{layer weight: [alive units, units]}`` of every Linear/Conv2d layer."""
        return {name: [int(mask.sum().item()), mask.numel()]
                for name, mask in self.unit_masks(masks).items()}


def unit_pruner(cfg: Config, model: nn.Module, layers: list[PrunableLayer],
                input_shape: tuple[int, ...]) -> UnitPruner | None:
    """The run's :class:`UnitPruner` (None with ``prune.structure = "weight"``); whatever makes
    unit pruning impossible for this network is a :class:`ConfigError` naming the layer."""
    if cfg.prune.structure != "unit":
        return None
    from prunetui.structure.graph import unit_groups  # Torch-Pruning: only for unit runs

    scratch = copy.deepcopy(model).cpu()
    try:
        with torch.random.fork_rng(devices=[]):
            groups = unit_groups(scratch, torch.zeros(2, *input_shape))
        prunable_groups(groups, layers)  # an unresolved coupling of a layer to prune
        if cfg.prune.unit_criterion == "bn-scale":
            unit_scores(scratch, layers, "bn-scale", groups)
    except CouplingError as err:
        raise ConfigError("prune.structure", "unit", str(err)) from None
    except CriterionError as err:
        raise ConfigError("prune.unit_criterion", err.criterion, err.reason) from None
    check_schedule(cfg, groups, layers)
    return UnitPruner(scratch, groups, layers, cfg.prune.unit_criterion)


def check_schedule(cfg: Config, groups: list[UnitGroup], layers: list[PrunableLayer]) -> None:
    """In layer scope each round's unit count is known in advance: a layer that some round
    would leave without units stops the run before it starts (global scope: at that round)."""
    prune = cfg.prune
    if prune.scope != "layer":
        return
    rates = pruning.PruneRates.from_config(prune)
    by_name = {layer.name: layer for layer in layers}
    emptied = []  # (round, group index, group, rate)
    for index, group in enumerate(prunable_groups(groups, layers)):
        rate, alive = group_rate(group, by_name, rates), group.size
        for round_ in range(1, cfg.num_rounds + 1):
            alive -= round(rate * alive)
            if alive <= 0:
                emptied.append((round_, index, group, rate))
                break
    if emptied:
        round_, _, group, rate = min(emptied, key=lambda e: e[:2])  # the first to empty
        names = ", ".join(group.modules())
        source = rates.source(rate_member(group, by_name, rates))
        key, value = f"prune.{source}", getattr(prune, source)
        raise ConfigError(key, value, f"in round {round_}, layer {names} would lose all its "
                          f"{group.size} units; lower {key}, prune fewer rounds, or leave "
                          f"{names} dense with prune.skip")


def weight_masks(masks: pruning.Masks, layers: list[PrunableLayer]) -> pruning.Masks:
    """The masks of the prunable weights (with weights: all of them), in their order."""
    names = {layer.name for layer in layers}
    return {name: mask for name, mask in masks.items() if name in names}


def remaining(masks: pruning.Masks, layers: list[PrunableLayer]) -> float:
    """Fraction of the prunable weights left, whatever the structure."""
    return pruning.remaining(weight_masks(masks, layers))


def sparsity_fields(masks: pruning.Masks, layers: list[PrunableLayer],
                    units: UnitPruner | None) -> dict[str, Any]:
    """A sparsity record's ``remaining``, ``layers`` and ``counts`` (prunable weights), and for
    unit runs ``units``: ``{layer weight: [alive units, units]}``."""
    weights = weight_masks(masks, layers)
    fields: dict[str, Any] = {
        "remaining": pruning.remaining(weights), "layers": pruning.layer_remaining(weights),
        "counts": {k: [int(v.sum().item()), v.numel()] for k, v in weights.items()}}
    if units is not None:
        fields["units"] = units.unit_counts(masks)
    return fields

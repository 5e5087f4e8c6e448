"""Masks and pruning as pure functions: (weights, masks, settings) -> new masks.

A mask is a float tensor of 0s and 1s shaped like its weight, so keeping pruned weights at zero
is one in-place multiply after each optimizer step (measured 1.75x faster than
``torch.nn.utils.prune``'s forward pre-hooks on LeNet-300-100). As in ``torch.nn.utils.prune``,
amounts are fractions of the weights that are still alive, and each round removes an exact whole
number of them (``round(rate * alive)``), so after k rounds a layer keeps ~(1-rate)^k.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from prunetui.nets import PrunableLayer

Masks = dict[str, torch.Tensor]
Weights = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class PruneRates:
    rate: float  # hidden layers (and everything ranked together in global scope)
    first_rate: float  # input layer
    output_rate: float  # classifier
    first_rate_explicit: bool = False  # True when the user set a separate first-layer rate

    def for_role(self, role: str) -> float:
        return {"first": self.first_rate, "output": self.output_rate}.get(role, self.rate)


def dense_masks(weights: Weights, layers: list[PrunableLayer]) -> Masks:
    return {layer.name: torch.ones_like(weights[layer.name]) for layer in layers}


def _remove_lowest(scores: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """New mask with the ``count`` alive entries of lowest score removed (ties: lowest index)."""
    new = mask.clone()
    if count <= 0:
        return new
    flat_scores = torch.where(mask.flatten() > 0, scores.flatten(),
                              torch.full_like(scores.flatten(), float("inf")))
    order = torch.argsort(flat_scores, stable=True)
    new.view(-1)[order[:count]] = 0
    return new


def _removal_count(mask: torch.Tensor, rate: float) -> int:
    return round(rate * int(mask.sum().item()))


def prune_layerwise(scores: Weights, masks: Masks, layers: list[PrunableLayer],
                    rates: PruneRates) -> Masks:
    return {
        layer.name: _remove_lowest(scores[layer.name], masks[layer.name],
                                   _removal_count(masks[layer.name], rates.for_role(layer.role)))
        for layer in layers
    }


def _separately_pruned(layer: PrunableLayer, rates: PruneRates) -> bool:
    """In global scope the output layer, and the input layer when given its own rate, keep
    their own rates: a user who lowered them expects that to hold in either scope."""
    return layer.role == "output" or (layer.role == "first" and rates.first_rate_explicit)


def prune_global(scores: Weights, masks: Masks, layers: list[PrunableLayer],
                 rates: PruneRates) -> Masks:
    own = [layer for layer in layers if _separately_pruned(layer, rates)]
    pooled = [layer for layer in layers if not _separately_pruned(layer, rates)]
    new = prune_layerwise(scores, masks, own, rates)
    if not pooled:
        return new
    flat_scores = torch.cat([scores[layer.name].flatten() for layer in pooled])
    flat_mask = torch.cat([masks[layer.name].flatten() for layer in pooled])
    flat_new = _remove_lowest(flat_scores, flat_mask, _removal_count(flat_mask, rates.rate))
    start = 0
    for layer in pooled:
        n = masks[layer.name].numel()
        new[layer.name] = flat_new[start:start + n].view_as(masks[layer.name]).clone()
        start += n
    return new


def prune(scores: Weights, masks: Masks, layers: list[PrunableLayer], rates: PruneRates,
          scope: str) -> Masks:
    """Masks for the next round: remove the lowest-score alive weights (score = |w| usually)."""
    if scope == "layer":
        return prune_layerwise(scores, masks, layers, rates)
    if scope == "global":
        return prune_global(scores, masks, layers, rates)
    raise ValueError(f"unknown scope {scope!r}")


def magnitude_scores(weights: Weights, layers: list[PrunableLayer]) -> dict[str, torch.Tensor]:
    return {layer.name: weights[layer.name].detach().abs() for layer in layers}


def random_scores(masks: Masks, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {name: torch.rand(m.shape, generator=generator) for name, m in masks.items()}


def random_masks_like(masks: Masks, generator: torch.Generator) -> Masks:
    """Random masks with exactly the same number of survivors per layer as ``masks``."""
    out = {}
    for name, mask in masks.items():
        dense = torch.ones_like(mask)
        removed = mask.numel() - int(mask.sum().item())
        out[name] = _remove_lowest(torch.rand(mask.shape, generator=generator), dense, removed)
    return out


def remaining(masks: Masks) -> float:
    alive = sum(int(m.sum().item()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return alive / total if total else 1.0


def layer_remaining(masks: Masks) -> dict[str, float]:
    return {name: float(m.sum().item()) / m.numel() for name, m in masks.items()}


def apply_masks(params: Mapping[str, torch.Tensor], masks: Masks) -> None:
    """Zero pruned weights in place (call after every optimizer step)."""
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)

"""One replicate's trajectory through the rounds, and where each segment starts from.

:class:`ReplicateState` keeps θ0, the rewind points and each scheme's newest weights and masks.
:func:`segment_start` composes the pure pieces for the next segment: pruning (pruning.py)
decides its masks, the scheme's reset (schemes.py) its start weights. With
``prune.structure = "unit"`` the masks come from whole units (unitmasks.py); they still cover
every parameter they zero, so the start weights are multiplied by all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from prunetui import pruning, schemes
from prunetui.config import Config, parse_scheme
from prunetui.nets import PrunableLayer
from prunetui.segments import Segment, round_owners
from prunetui.training import mix_seed
from prunetui.unitmasks import UnitPruner

State = dict[str, torch.Tensor]
# (method, survivors) -> masks scored at theta0: the experiment holds the model and data.
AtInitMasks = Callable[[str, pruning.Survivors], pruning.Masks]


@dataclass
class ReplicateState:
    """In-memory trajectory of one replicate: theta0, rewind points, each scheme's last state."""

    index: int
    seed: int
    theta0: State
    schemes: tuple[str, ...]
    rewind_points: dict[int, State] = field(default_factory=dict)
    trained: dict[str, State] = field(default_factory=dict)
    masks: dict[str, pruning.Masks] = field(default_factory=dict)
    masks_this_round: dict[str, pruning.Masks] = field(default_factory=dict)

    def record(self, scheme: str, weights: State, masks: pruning.Masks) -> None:
        """Remember a finished segment; the dense round starts every scheme's trajectory."""
        self.masks_this_round[scheme] = masks
        for name in round_owners(scheme, self.schemes):
            self.trained[name] = weights
            self.masks[name] = masks


def segment_start(cfg: Config, seg: Segment, rep: ReplicateState,
                  layers: list[PrunableLayer], fresh: Callable[[int], State],
                  at_init: AtInitMasks | None = None, units: UnitPruner | None = None
                  ) -> tuple[State, pruning.Masks]:
    """Masks and start weights of a segment: pruning, then the scheme's reset.

    ``fresh(seed)`` builds newly initialised weights (``reinit``); ``at_init`` scores θ0 for
    the pruning-at-initialization schemes; ``units`` prunes whole units (unit runs)."""
    if seg.round == 0:
        masks = units.dense_masks() if units else pruning.dense_masks(rep.theta0, layers)
        return {k: v.clone() for k, v in rep.theta0.items()}, masks
    masks = next_masks(cfg, seg, rep, layers, at_init, units)
    start = schemes.start_weights(
        seg.scheme, theta0=rep.theta0, trained=rep.trained[seg.scheme],
        rewind_points=rep.rewind_points,
        fresh=lambda: fresh(mix_seed(rep.seed, 100 + seg.round)))
    for name, mask in masks.items():
        start[name] = start[name] * mask
    return start, masks


def prune_rates(cfg: Config) -> pruning.PruneRates:
    return pruning.PruneRates.from_config(cfg.prune)


def next_masks(cfg: Config, seg: Segment, rep: ReplicateState,
               layers: list[PrunableLayer], at_init: AtInitMasks | None = None,
               units: UnitPruner | None = None) -> pruning.Masks:
    """The scheme's masks for this round: scored at θ0 for as many survivors as magnitude
    pruning keeps by this round (at-init schemes, which never share rewind's masks), else
    rewind's shared masks (``mask_from = "rewind"``), else pruned from its own last masks.

    With ``units`` whole units go: ranked by ``prune.unit_criterion`` on the scheme's trained
    weights (``magnitude``), or at random, as many as magnitude pruning removes (``random``)."""
    prune, spec = cfg.prune, parse_scheme(seg.scheme)
    rng = torch.Generator().manual_seed(mix_seed(rep.seed, 200 + seg.round))
    if spec is not None and spec.at_init:
        if at_init is None:
            raise ValueError(f"{seg.scheme} needs the network and data to score θ0")
        dense = pruning.dense_masks(rep.theta0, layers)
        survivors = pruning.schedule_survivors(dense, layers, prune_rates(cfg), prune.scope,
                                               seg.round)
        return at_init(seg.scheme, survivors)
    if prune.mask_from == "rewind" and seg.scheme != "rewind":
        shared = rep.masks_this_round["rewind"]
        if schemes.uses_random_mask(seg.scheme):
            return (units.random_like(shared, rng) if units
                    else pruning.random_masks_like(shared, rng))
        return {k: v.clone() for k, v in shared.items()}
    previous = rep.masks[seg.scheme]
    if units is not None:
        random = schemes.uses_random_mask(seg.scheme)
        return units.pruned(previous, None if random else rep.trained[seg.scheme],
                            prune_rates(cfg), prune.scope,
                            f"in round {seg.round} of replicate {seg.replicate} ({seg.scheme})",
                            rng if random else None)
    if schemes.uses_random_mask(seg.scheme):
        scores = pruning.random_scores(previous, rng)
    else:
        scores = pruning.magnitude_scores(rep.trained[seg.scheme], layers)
    return pruning.prune(scores, previous, layers, prune_rates(cfg), prune.scope)

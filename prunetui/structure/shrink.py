"""Shrink a unit-pruned network: the dense network whose layers really have fewer units.

Every entry a removed unit owns (:mod:`.masks` zeroes exactly these) is cut out with
Torch-Pruning's pruning functions (its ``ConvPruner``, ``LinearPruner``, ``BatchnormPruner``,
and :mod:`.mfm` for max-feature-map layers), which also update ``in_channels`` /
``out_features`` / ``num_features`` and BatchNorm's running statistics. All indices come from
the groups, in the original network's numbering, so each module is cut once per kind.

The result computes what the masked network computes (the removed entries were all zero and
read nothing), up to float rounding: the shrunk network sums fewer zero terms.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch_pruning as tp
from torch import nn

from prunetui.pruning import apply_masks
from prunetui.structure.groups import IN, dead_entries
from prunetui.structure.masks import param_masks
from prunetui.structure.mfm import MFM_PRUNER, is_mfm
from prunetui.structure.units import Groups, group_mask

CHECK_TOLERANCE = 1e-4  # of the largest |output|, at least 1: shrunk against masked (float32)


class ShrinkError(ValueError):
    """The network cannot be shrunk as asked; the message says why."""


def cuts(unit_masks: Mapping[str, torch.Tensor], groups: Groups
         ) -> dict[tuple[str, bool], list[int]]:
    """(module, True for outputs / False for inputs) -> sorted entries to remove."""
    found: dict[tuple[str, bool], set[int]] = {}
    for group in groups:
        if not group.layers:
            continue
        dead = group_mask(group, unit_masks) == 0
        if not dead.any():
            continue
        if dead.all():
            raise ShrinkError(f"layer {', '.join(group.modules())} has no units left: "
                              "there is nothing to shrink it into")
        if group.problem:
            raise ShrinkError(f"layer {', '.join(group.modules())} lost units, but "
                              f"{group.problem}")
        for part in group.parts:
            key = (part.module, part.kind != IN)
            found.setdefault(key, set()).update(dead_entries(part, dead).tolist())
    return {key: sorted(entries) for key, entries in found.items() if entries}


def pruner_of(module: nn.Module) -> tp.pruner.BasePruningFunc:
    if is_mfm(module):
        return MFM_PRUNER
    pruner = tp.pruner.function.PrunerBox.get(tp.ops.module2type(module))
    if pruner is None:
        raise ShrinkError(f"Torch-Pruning has no pruning function for {type(module).__name__}")
    return pruner


def shrink(model: nn.Module, unit_masks: Mapping[str, torch.Tensor], groups: Groups,
           example_input: torch.Tensor | None = None) -> nn.Module:
    """A shrunk copy of ``model`` (which is left as it is).

    With ``example_input`` the copy is checked against the masked network on it (eval mode,
    on the CPU): a difference beyond float rounding is a :class:`ShrinkError`."""
    small = copy.deepcopy(model)
    if hasattr(small, "prunetui_rebuild"):
        del small.prunetui_rebuild  # it would build the dense network
    modules = dict(small.named_modules())
    with torch.no_grad():
        for (name, outputs), entries in cuts(unit_masks, groups).items():
            pruner_of(modules[name])(modules[name], entries, to_output=outputs)
    if example_input is not None:
        check_same(model, small, unit_masks, groups, example_input)
    return small


def masked_copy(model: nn.Module, unit_masks: Mapping[str, torch.Tensor],
                groups: Groups) -> nn.Module:
    """A copy of ``model`` with the parameter masks of ``unit_masks`` applied."""
    masked = copy.deepcopy(model)
    apply_masks(dict(masked.named_parameters()), param_masks(masked, unit_masks, groups))
    return masked


def check_same(model: nn.Module, small: nn.Module, unit_masks: Mapping[str, torch.Tensor],
               groups: Groups, example_input: torch.Tensor) -> None:
    """On the CPU (no TF32, no cuDNN algorithm choices), in eval mode."""
    device = next((p.device for p in small.parameters()), torch.device("cpu"))
    masked = masked_copy(model, unit_masks, groups).cpu().eval()
    modes = [(m, m.training) for m in small.modules()]
    x = example_input.cpu()
    with torch.no_grad():
        want = masked(x)
        try:
            got = small.cpu().eval()(x)
        except RuntimeError as err:
            raise ShrinkError(f"the shrunk network fails on the example input ({err})") from None
        finally:
            small.to(device)
            for module, training in modes:
                module.training = training
    if got.shape != want.shape:
        raise ShrinkError(f"the shrunk network outputs {tuple(got.shape)}, not "
                          f"{tuple(want.shape)}")
    diff = (got - want).abs().max().item()
    if diff > CHECK_TOLERANCE * max(1.0, want.abs().max().item()):
        raise ShrinkError(
            f"the shrunk network computes something else than the masked one (largest output "
            f"difference {diff:.3g}): the network's coupling was not resolved correctly; "
            "use prune.structure = \"weight\" for it")

"""The unit groups of a network, from Torch-Pruning's dependency graph.

Torch-Pruning traces one forward pass through autograd and, for the output units of each
Linear/Conv2d, follows everything that must change with them: BatchNorm entries, residual
additions (the layers added together), concatenations and flattens into the next layer's
inputs. Its groups become :class:`~prunetui.structure.groups.UnitGroup` s here, with every
index mapping resolved, so masks and shrinking need no graph afterwards.

LightCNN's max-feature-map layers get their own pruner (:mod:`.mfm`). What Torch-Pruning cannot
map one to one (channel splits or slices, grouped convolutions, bare parameters, other modules
with parameters, units that reach the network's output) marks the group with a ``problem``: it
stays dense, and pruning it is an error that names the layer. Shared (reused) and tied layers
are refused at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch_pruning as tp
from torch import nn

from prunetui.nets import weight_layers
from prunetui.structure.groups import (
    CHANNEL,
    IN,
    OUT,
    OUTPUT_KINDS,
    PAIR_OUT,
    SKIP_HINT,
    CouplingError,
    Part,
    UnitGroup,
)
from prunetui.structure.mfm import CUSTOM_PRUNERS, is_mfm
from prunetui.structure.verify import verified

OPS = tp.ops.OPTYPE
SPLITTING = (OPS.SPLIT, OPS.SLICE, OPS.UNBIND)


def unit_groups(model: nn.Module, example_input: torch.Tensor) -> list[UnitGroup]:
    """One group per set of coupled Linear/Conv2d layers, in the network's layer order.

    ``example_input`` is a batch the network accepts (e.g. ``torch.zeros(2, *input_shape)``);
    it is traced once, in eval mode (the network's modes are restored), and every group is
    then checked on a random batch of its shape (:mod:`.verify`)."""
    refuse_tied(model)
    graph = trace(model, example_input)
    names = {module: name for name, module in model.named_modules()}
    groups, assigned = [], set()
    for name, module in weight_layers(model):
        if name in assigned:
            continue
        if module not in graph.module2node:
            groups.append(UnitGroup((f"{name}.weight",), units_of(module), (),
                                    problem=f"layer {name} is not used in the forward pass"))
            continue
        group = traced_group(graph, module, names)
        assigned.update(group.modules())
        groups.append(group)
    return verified(model, groups, example_input)


def units_of(module: nn.Module) -> int:
    return module.weight.shape[0] // 2 if is_mfm(module) else module.weight.shape[0]


def refuse_tied(model: nn.Module) -> None:
    first: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first:
            raise CouplingError(
                f"{first[id(param)]} and {name} are one tensor (tied weights): unit pruning "
                "cannot remove units of one without the other's; use prune.structure = "
                "\"weight\" for this network")
        first[id(param)] = name


@contextmanager
def modes_kept(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def trace(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Torch-Pruning's graph of one forward pass; a layer run twice is refused."""
    calls: dict[nn.Module, int] = {}

    def count(module: nn.Module, *_: object) -> None:
        calls[module] = calls.get(module, 0) + 1

    watched = [m for _, m in weight_layers(model)]
    watched += [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    hooks = [m.register_forward_hook(count) for m in watched]
    try:
        with modes_kept(model), torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                model, example_input, forward_fn=lambda m, x: m(x),
                customized_pruners=dict(CUSTOM_PRUNERS), verbose=False)
    finally:
        for hook in hooks:
            hook.remove()
    names = {module: name for name, module in model.named_modules()}
    for module, n in calls.items():
        if n > 1:
            raise CouplingError(
                f"layer {names[module]} runs {n} times in one forward pass (a shared layer): "
                "unit pruning cannot give each use its own units; use prune.structure = "
                "\"weight\" for this network")
    return graph


def traced_group(graph: tp.DependencyGraph, root: nn.Module,
                 names: dict[nn.Module, str]) -> UnitGroup:
    pruner = graph.get_pruner_of_module(root)
    size = int(pruner.get_out_channels(root))
    tp_group = graph.get_pruning_group(root, pruner.prune_out_channels, list(range(size)))
    parts: list[Part] = []
    problems: list[str] = []
    root_name = names[root]
    for item in tp_group:
        target, handler = item.dep.target, item.dep.handler
        kind, problem = classify(graph, target, handler, names)
        if problem:
            problems.append(problem)
            continue
        if kind is None:
            continue
        if None in item.root_idxs:
            problems.append(f"Torch-Pruning lost track of {root_name}'s units in "
                            f"{names[target.module]}")
            continue
        part = Part(module=names[target.module], kind=kind,
                    unit=torch.tensor(item.root_idxs, dtype=torch.long),
                    index=torch.tensor(item.idxs, dtype=torch.long))
        problems += part_problems(part, size, root_name, extent(target.module, kind))
        parts.append(part)
    order = {name: i for i, name in enumerate(names.values())}
    members = sorted({p.module for p in parts if p.kind in OUTPUT_KINDS}, key=order.__getitem__)
    return UnitGroup(
        layers=tuple(f"{m}.weight" for m in members), size=size, parts=tuple(parts),
        norms=direct_norms(graph, members, names),
        problem=(problems[0] + SKIP_HINT) if problems else "")


def classify(graph: tp.DependencyGraph, node: tp.dependency.Node, handler: object,
             names: dict[nn.Module, str]) -> tuple[str | None, str]:
    """(part kind or None for no parameters, problem or "") of a node in a group."""
    if node.type == OPS.OUTPUT:
        return None, "its units reach the network's output"
    if node.type in SPLITTING:
        return None, f"its units pass through a channel split or slice ({node.name})"
    if node.type == OPS.PARAMETER:
        return None, f"the bare parameter {node.name} reads its units"
    module = node.module
    if module not in names:
        return None, ""  # an operation without parameters (add, pool, flatten, ...)
    name = names[module]
    out = graph.is_out_channel_pruning_fn(handler)
    if is_mfm(module) or isinstance(module, (nn.Linear, nn.Conv2d)):
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            return None, f"{name} is a grouped convolution"
        if out and graph.is_in_channel_pruning_fn(handler):
            return None, f"Torch-Pruning couples {name}'s inputs with its outputs"
        return (PAIR_OUT if is_mfm(module) else OUT) if out else IN, ""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return CHANNEL, ""
    if isinstance(module, nn.PReLU):
        return (CHANNEL if module.num_parameters > 1 else None), ""
    if any(True for _ in module.parameters(recurse=False)):
        return None, f"{name} ({type(module).__name__}) reads its units"
    return None, ""


def extent(module: nn.Module, kind: str) -> int:
    """How many entries of that kind the module has (rows, MFM channels, columns, channels)."""
    if kind == CHANNEL:
        return module.num_parameters if isinstance(module, nn.PReLU) else module.num_features
    return module.weight.shape[1] if kind == IN else units_of(module)


def part_problems(part: Part, size: int, root: str, entries: int) -> list[str]:
    """Members must map one to one; every other part must give each unit an entry."""
    if part.index.numel() and int(part.index.max()) >= entries:
        return [f"Torch-Pruning mapped {root}'s units past the end of {part.module}"]
    if part.kind in OUTPUT_KINDS:
        if entries != size:
            return [f"{part.module} has {entries} units and {root} {size}, yet they are "
                    "coupled"]
        if not (torch.equal(part.unit, part.index)
                and torch.equal(torch.sort(part.unit).values, torch.arange(size))):
            return [f"{part.module}'s units do not line up one to one with {root}'s"]
        return []
    if part.unit.numel() == 0 or torch.bincount(part.unit, minlength=size).min() < 1:
        return [f"Torch-Pruning could not map each unit of {root} into {part.module}"]
    return []


def direct_norms(graph: tp.DependencyGraph, members: list[str],
                 names: dict[nn.Module, str]) -> tuple[tuple[str, str], ...]:
    """(member weight, BatchNorm module) where the BatchNorm reads the member's output."""
    modules = {name: module for module, name in names.items()}
    found = []
    for member in members:
        node = graph.module2node.get(modules[member])
        for nxt in node.outputs if node is not None else ():
            if isinstance(nxt.module, nn.modules.batchnorm._BatchNorm):
                found.append((f"{member}.weight", names[nxt.module]))
    return tuple(found)

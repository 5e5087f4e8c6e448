"""Shrinking: remove the units and channels a pruned network cannot use, keeping its function.

Both networks are chains of weight layers: LeNet-300-100 is fc1 -> fc2 -> fc3 with ReLU,
LightCNN-9 is ten max-feature-map (MFM) layers (a unit is one MFM channel, fed by two filters)
then the classifier fc2. A unit of a hidden layer is removed when

- no surviving weight leaves it (its inputs to the next layer are all pruned): exact; or
- no surviving weight enters it: it outputs the constant act(bias), which is added to the next
  layer's bias instead. Only where the next layer sees that constant at every position alike
  (a Linear layer, or a 1x1 convolution, which has no padding); a 3x3 convolution pads with
  zeros, so the constant differs at the border and such a channel stays.

Removing units can leave others without inputs or outputs, so this repeats until nothing
changes. The first Linear layer also drops the input pixels it never reads; the shrunk model
gathers the pixels it uses. The result is a smaller dense network with the same outputs (up to
float rounding of the folded biases).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

State = dict[str, torch.Tensor]


class ShrinkError(ValueError):
    """The network cannot be shrunk (e.g. a layer lost every unit); the message says why."""


@dataclass(frozen=True)
class ChainLayer:
    name: str  # module name, e.g. "fc1" or "conv2a"
    mfm: bool  # output units are max-feature-map pairs (rows c and c + units)


@dataclass
class ShrinkReport:
    units_before: dict[str, int] = field(default_factory=dict)
    units_after: dict[str, int] = field(default_factory=dict)
    inputs_before: int = 0
    inputs_after: int = 0
    unit_word: str = "units"

    @property
    def removed(self) -> int:
        return sum(self.units_before[k] - self.units_after[k] for k in self.units_before)

    def summary(self) -> str:
        parts = [f"{name} {self.units_before[name]}->{self.units_after[name]}"
                 for name in self.units_before]
        text = f"removed {self.removed} {self.unit_word} ({', '.join(parts)})"
        if self.inputs_before != self.inputs_after:
            text += f" and {self.inputs_before - self.inputs_after} of {self.inputs_before} " \
                    "input pixels"
        return text


@dataclass
class Shrunk:
    state: State  # state dict of the smaller network
    input_index: torch.Tensor | None  # input features the first layer reads (None: all)
    report: ShrinkReport


def _units(weight: torch.Tensor, layer: ChainLayer) -> int:
    return weight.shape[0] // 2 if layer.mfm else weight.shape[0]


def _unit_rows(keep: torch.Tensor, layer: ChainLayer) -> torch.Tensor:
    return torch.cat([keep, keep]) if layer.mfm else keep


def _constant_output(bias: torch.Tensor, layer: ChainLayer) -> torch.Tensor:
    """What a unit without inputs outputs: relu(b) (LeNet) or max of its two biases (MFM)."""
    if layer.mfm:
        half = bias.shape[0] // 2
        return torch.maximum(bias[:half], bias[half:])
    return torch.relu(bias)


def _sees_constant_alike(weight: torch.Tensor) -> bool:
    """Linear, or a 1x1 convolution: a constant input channel adds the same at every position."""
    return weight.dim() == 2 or tuple(weight.shape[2:]) == (1, 1)


def _shrink_step(state: State, layer: ChainLayer, consumer: ChainLayer) -> bool:
    """Remove the dead units of ``layer`` (folding constant ones); True when any was removed."""
    w, b = state[f"{layer.name}.weight"], state[f"{layer.name}.bias"]
    wn, bn = state[f"{consumer.name}.weight"], state[f"{consumer.name}.bias"]
    units = _units(w, layer)
    grouped = wn.reshape(wn.shape[0], units, -1)  # [out', unit, positions or kernel]
    no_output = ~(grouped != 0).any(dim=2).any(dim=0)
    rows_alive = (w.reshape(w.shape[0], -1) != 0).any(dim=1)
    no_input = ~(rows_alive[:units] | rows_alive[units:]) if layer.mfm else ~rows_alive
    foldable = no_input & ~no_output if _sees_constant_alike(wn) else torch.zeros_like(no_input)
    drop = no_output | foldable
    if not drop.any():
        return False
    if drop.all():
        raise ShrinkError(
            f"Layer {layer.name} has no units left: every weight into or out of each of its "
            f"{units} units is pruned, so the network gives the same output for every input. "
            "There is nothing to shrink it into; export it as sparse or dense instead.")
    if foldable.any():
        const = _constant_output(b, layer)
        bn = bn + (grouped[:, foldable].sum(dim=2) * const[foldable]).sum(dim=1)
    keep = ~drop
    rows = _unit_rows(keep, layer)
    state[f"{layer.name}.weight"], state[f"{layer.name}.bias"] = w[rows].clone(), b[rows].clone()
    kept = grouped[:, keep]
    shape = (wn.shape[0], -1, *wn.shape[2:]) if wn.dim() == 4 else (wn.shape[0], -1)
    state[f"{consumer.name}.weight"] = kept.reshape(shape).clone()
    state[f"{consumer.name}.bias"] = bn.clone()
    return True


def shrink(state: State, chain: list[ChainLayer], unit_word: str = "units") -> Shrunk:
    """Shrink the masked weights ``state`` (pruned weights exactly zero) of a layer chain."""
    state = {k: v.detach().clone() for k, v in state.items()}
    hidden = list(itertools.pairwise(chain))
    report = ShrinkReport(unit_word=unit_word)
    for layer, _ in hidden:
        report.units_before[layer.name] = _units(state[f"{layer.name}.weight"], layer)
    changed = True
    while changed:  # each pass can only remove, so this ends
        changed = False
        for layer, consumer in hidden:
            changed |= _shrink_step(state, layer, consumer)
    for layer, _ in hidden:
        report.units_after[layer.name] = _units(state[f"{layer.name}.weight"], layer)
    input_index = None
    first = state[f"{chain[0].name}.weight"]
    report.inputs_before = report.inputs_after = first.shape[1]
    if first.dim() == 2:
        used = (first != 0).any(dim=0)
        if not used.any():
            raise ShrinkError(f"Layer {chain[0].name} reads no input: every weight of it is "
                              "pruned. Export it as sparse or dense instead.")
        if not used.all():
            input_index = used.nonzero().flatten()
            state[f"{chain[0].name}.weight"] = first[:, used].clone()
            report.inputs_after = int(used.sum())
    return Shrunk(state=state, input_index=input_index, report=report)

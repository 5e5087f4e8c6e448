"""Unit pruning on every network family: coupling groups from Torch-Pruning, masks that make
the network compute what the shrunk one computes, and the shrunk network itself.

Each network is pruned in three rounds (scopes layer, global, layer; random scores; ~half of
the units go), with BatchNorm given random scales, shifts and running statistics so that a
dead channel whose BatchNorm were left alone would output its shift."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from prunetui.config import ModelConfig
from prunetui.nets import build_model, prunable_layers
from prunetui.pruning import PruneRates, apply_masks
from prunetui.structure.graph import unit_groups
from prunetui.structure.groups import group_of
from prunetui.structure.masks import param_masks
from prunetui.structure.rebuild import rebuild, shapes
from prunetui.structure.shrink import shrink
from prunetui.structure.units import dense_unit_masks, prune_units

RATES = PruneRates(rate=0.2, output_rate=0.1)
NETS = {  # arch: (input shape, model.width)
    "lenet-300-100": ((784,), 1.0),
    "conv-4": ((3, 32, 32), 1.0),
    "resnet-20": ((3, 32, 32), 1.0),
    "lightcnn-9": ((1, 128, 128), 0.25),
    "torchvision:resnet18": ((3, 64, 64), 1.0),
    "tests.test_structure:user_net": ((3, 16, 16), 1.0),
}


class UserNet(nn.Module):
    """A user's own network: Conv-BN-ReLU twice, a global pool and a Linear."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(12, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean(dim=(2, 3)))


def user_net(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return UserNet(input_shape[0], num_classes)


def randomise_norms(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(n, generator=generator))
                m.running_mean.copy_(torch.randn(n, generator=generator))
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


@functools.cache
def pruned(arch: str):
    """(dense, masked, shrunk, unit masks, groups, input shape) after three rounds."""
    shape, width = NETS[arch]
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        dense = build_model(ModelConfig(arch=arch, width=width), shape, 10)
    randomise_norms(dense, generator)
    groups = unit_groups(dense, torch.zeros(2, *shape))
    layers = prunable_layers(dense)
    masks = dense_unit_masks(groups)
    for scope in ("layer", "global", "layer"):
        scores = {layer.name: torch.rand(masks[layer.name].shape, generator=generator)
                  for layer in layers if layer.role != "output"}
        masks = prune_units(scores, masks, layers, RATES, scope, groups)
    masked = copy.deepcopy(dense)
    apply_masks(dict(masked.named_parameters()), param_masks(masked, masks, groups))
    small = shrink(masked, masks, groups)
    return dense, masked, small, masks, groups, shape


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("arch", list(NETS))
def test_shrunk_computes_what_the_masked_network_computes(arch):
    _, masked, small, masks, _, shape = pruned(arch)
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
    want, got = outputs(masked, x), outputs(small, x)
    assert got.shape == want.shape == (16, 10)  # the classes are all still there
    assert torch.equal(got.argmax(1), want.argmax(1))
    assert (got - want).abs().max().item() <= 1e-5
    # about half of the hidden units are gone, and the network really is smaller
    left = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert 0.45 < left < 0.75
    assert params(small) < 0.75 * params(masked)


@pytest.mark.parametrize("arch", list(NETS))
def test_shrinking_removes_exactly_the_masked_parameters(arch):
    dense, masked, small, masks, groups, _ = pruned(arch)
    zeros = sum(int((m == 0).sum()) for m in param_masks(masked, masks, groups).values())
    assert params(dense) - params(small) == zeros > 0
    head = prunable_layers(dense)[-1].name.removesuffix(".weight")
    assert dict(small.named_modules())[head].weight.shape[0] == 10


def test_lenet_and_conv4_shrink_to_the_sizes_their_units_give():
    _, _, small, masks, _, _ = pruned("lenet-300-100")
    a, b = (int(masks[f"fc{i}.weight"].sum()) for i in (1, 2))
    assert params(small) == 784 * a + a + a * b + b + b * 10 + 10
    _, _, small, masks, _, _ = pruned("conv-4")
    c1, c2, c3, c4, f1, f2 = (int(masks[f"{n}.weight"].sum()) for n in (
        "features.0", "features.2", "features.5", "features.7", "fc_layers.0", "fc_layers.2"))
    convs = 3 * 9 * c1 + c1 + c1 * 9 * c2 + c2 + c2 * 9 * c3 + c3 + c3 * 9 * c4 + c4
    assert params(small) == convs + c4 * 64 * f1 + f1 + f1 * f2 + f2 + f2 * 10 + 10


def test_residual_convolutions_of_resnet20_drop_the_same_channels():
    _, masked, small, masks, groups, _ = pruned("resnet-20")
    stage1 = group_of(groups, "conv.weight")
    assert stage1.layers == ("conv.weight", "blocks.0.conv2.weight", "blocks.1.conv2.weight",
                             "blocks.2.conv2.weight")
    stage2 = group_of(groups, "blocks.3.shortcut.0.weight")
    assert stage2.layers == ("blocks.3.conv2.weight", "blocks.3.shortcut.0.weight",
                             "blocks.4.conv2.weight", "blocks.5.conv2.weight")
    assert group_of(groups, "blocks.0.conv1.weight").layers == ("blocks.0.conv1.weight",)
    for group in (stage1, stage2):
        first = masks[group.layers[0]]
        assert 0 < first.sum() < group.size
        assert all(torch.equal(masks[m], first) for m in group.layers)
        kept = first.nonzero().flatten()
        for _, norm in group.norms:  # each BatchNorm keeps the masked network's entries
            want = dict(masked.named_parameters())[f"{norm}.bias"][kept]
            assert torch.equal(dict(small.named_parameters())[f"{norm}.bias"], want)
    assert torch.equal(small.conv.weight, masked.conv.weight[masks["conv.weight"] > 0])
    norms = dict(small.named_modules())
    assert norms["bn"].num_features == norms["blocks.2.bn2"].num_features == int(
        masks["conv.weight"].sum())


def test_torchvision_resnet18_couples_stem_downsample_and_residual_convs():
    _, _, small, masks, groups, _ = pruned("torchvision:resnet18")
    assert group_of(groups, "conv1.weight").layers == (
        "conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv2.weight")
    assert group_of(groups, "layer4.0.downsample.0.weight").layers == (
        "layer4.0.conv2.weight", "layer4.0.downsample.0.weight", "layer4.1.conv2.weight")
    layer4 = group_of(groups, "layer4.1.conv2.weight")
    alive = int(masks["layer4.1.conv2.weight"].sum())
    assert all(torch.equal(masks[m], masks[layer4.layers[0]]) for m in layer4.layers)
    assert small.fc.in_features == small.layer4[1].bn2.num_features == alive < 512


def test_lightcnn_units_are_mfm_channels_removed_in_row_pairs():
    _, masked, small, masks, groups, _ = pruned("lightcnn-9")
    assert all(len(g.layers) == 1 for g in groups)  # no residuals: nothing coupled
    previous = torch.arange(1)  # conv1 reads the one gray channel
    for name in ("conv1", "conv2a", "conv2", "conv3a", "conv3", "conv4a", "conv4", "conv5a",
                 "conv5"):
        kept = masks[f"{name}.weight"].nonzero().flatten()
        half = masks[f"{name}.weight"].numel()
        weight = getattr(masked, name).weight
        assert weight.shape[0] == 2 * half
        rows = weight[torch.cat([kept, kept + half])][:, previous]
        assert torch.equal(getattr(small, name).weight, rows)
        previous = kept
    # conv5's channels reach fc1 flattened: each kept channel keeps its 8x8 columns
    assert small.fc1.in_features == int(masks["conv5.weight"].sum()) * 64


@pytest.mark.parametrize("arch", ["lightcnn-9", "resnet-20", "tests.test_structure:user_net"])
def test_a_shrunk_built_in_network_is_rebuilt_from_its_shapes(arch):
    _, _, small, _, _, shape = pruned(arch)
    _, width = NETS[arch]
    again = rebuild(ModelConfig(arch=arch, width=width), shape, 10, shapes(small))
    again.load_state_dict(small.state_dict())
    x = torch.randn(4, *shape)
    assert torch.equal(outputs(again, x), outputs(small, x))

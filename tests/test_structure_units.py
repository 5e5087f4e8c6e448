"""Unit scores, the unit pruning step, parameter masks and the bad inputs of unit pruning."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
import torch_pruning as tp
from torch import nn

from prunetui.config import Config, ConfigError, ModelConfig, PruneConfig
from prunetui.nets import build_model, prunable_layers
from prunetui.nets.lightcnn import LightCNN9
from prunetui.pruning import PruneRates, apply_masks
from prunetui.structure.graph import unit_groups
from prunetui.structure.groups import IN, CouplingError, UnitPruningError, group_of
from prunetui.structure.masks import param_masks, unit_masks_from
from prunetui.structure.shrink import ShrinkError, masked_copy, shrink
from prunetui.structure.units import (
    dense_unit_masks,
    prune_units,
    random_unit_masks_like,
    unit_scores,
)
from prunetui.unitmasks import check_schedule

RATES = PruneRates(rate=0.2, output_rate=0.1)


@functools.cache
def net(arch: str, shape: tuple[int, ...] = (3, 32, 32), width: float = 1.0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch=arch, width=width), shape, 10)
    return model, unit_groups(model, torch.zeros(2, *shape)), prunable_layers(model)


def lenet():
    return net("lenet-300-100", (784,))


def lightcnn():
    return net("lightcnn-9", (1, 128, 128), 0.25)


def removed(masks, name):
    return masks[name].numel() - int(masks[name].sum())


# ---------------------------------------------------------------------------------------------
# Scores


def test_l1_and_l2_scores_are_the_norms_of_each_units_weights():
    model, groups, layers = net("conv-4")
    l1, l2 = (unit_scores(model, layers, c, groups) for c in ("l1", "l2"))
    w = model.features[2].weight.detach()
    assert torch.allclose(l1["features.2.weight"], w.abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(l2["features.2.weight"], torch.linalg.vector_norm(w, dim=(1, 2, 3)))
    w = model.fc_layers[0].weight.detach()
    assert torch.allclose(l1["fc_layers.0.weight"], w.abs().sum(1))
    assert "fc.weight" not in l1  # the classifier keeps its units: no score


def test_an_mfm_units_score_counts_both_of_its_rows():
    model, groups, layers = lightcnn()
    l1, l2 = (unit_scores(model, layers, c, groups) for c in ("l1", "l2"))
    w = model.conv2a.weight.detach()
    half = w.shape[0] // 2
    assert l1["conv2a.weight"].shape == (half,)
    assert torch.allclose(l1["conv2a.weight"],
                          w[:half].abs().sum((1, 2, 3)) + w[half:].abs().sum((1, 2, 3)))
    both = torch.cat([w[:half], w[half:]], 1)
    assert torch.allclose(l2["conv2a.weight"], torch.linalg.vector_norm(both, dim=(1, 2, 3)))


def test_bn_scale_is_the_gamma_of_the_batchnorm_reading_the_layer():
    model, groups, layers = net("resnet-20")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_()
    scores = unit_scores(model, layers, "bn-scale", groups)
    assert torch.equal(scores["blocks.0.conv1.weight"], model.blocks[0].bn1.weight.abs())
    assert torch.equal(scores["conv.weight"], model.bn.weight.abs())
    assert torch.equal(scores["blocks.3.shortcut.0.weight"],
                       model.blocks[3].shortcut[1].weight.abs())


@pytest.mark.parametrize("getter, layer", [(lambda: net("conv-4"), "features.0"),
                                           (lightcnn, "conv1")])
def test_bn_scale_without_a_batchnorm_names_the_layer(getter, layer):
    model, groups, layers = getter()
    with pytest.raises(ValueError, match=f"no BatchNorm reads {layer}'s output"):
        unit_scores(model, layers, "bn-scale", groups)
    with pytest.raises(ValueError, match="unknown unit criterion 'l3'"):
        unit_scores(model, layers, "l3", groups)


# ---------------------------------------------------------------------------------------------
# The pruning step


def test_layer_scope_removes_round_rate_of_the_alive_units_of_each_layer():
    model, groups, layers = lenet()
    scores = unit_scores(model, layers, "l1", groups)
    masks = prune_units(scores, dense_unit_masks(groups), layers, RATES, "layer", groups)
    assert (removed(masks, "fc1.weight"), removed(masks, "fc2.weight")) == (60, 20)
    assert removed(masks, "fc3.weight") == 0  # the classes stay, whatever output_rate says
    gone = masks["fc1.weight"] == 0
    assert scores["fc1.weight"][gone].max() <= scores["fc1.weight"][~gone].min()
    masks = prune_units(scores, masks, layers, RATES, "layer", groups)
    assert removed(masks, "fc1.weight") == 60 + 48


def test_global_scope_pools_every_hidden_unit_but_keeps_the_classes():
    _, groups, layers = lenet()
    scores = {"fc1.weight": torch.zeros(300) + 5, "fc2.weight": torch.arange(100.0)}
    rates = PruneRates(rate=0.2, output_rate=0.5)
    masks = prune_units(scores, dense_unit_masks(groups), layers, rates, "global", groups)
    # 80 go: fc2's scores 0..4, then 75 of the 301 units scoring 5, lowest index (fc1) first
    assert (removed(masks, "fc1.weight"), removed(masks, "fc2.weight")) == (75, 5)
    assert removed(masks, "fc3.weight") == 0
    explicit = dataclasses.replace(rates, first_rate=0.0)
    masks = prune_units(scores, dense_unit_masks(groups), layers, explicit, "global", groups)
    assert removed(masks, "fc1.weight") == 0 and removed(masks, "fc2.weight") == 20


def test_a_coupled_group_is_ranked_by_the_sum_of_its_members_scores():
    model, groups, layers = net("resnet-20")
    group = group_of(groups, "conv.weight")
    scores = unit_scores(model, layers, "l1", groups)
    for i, layer in enumerate(group.layers):  # each member's own lowest unit is unit i...
        scores[layer] = torch.full((16,), 10.0)
        scores[layer][i] = 0.0
        scores[layer][9] = 3.0  # ...but unit 9 has the lowest sum (12 against 30)
    rates = PruneRates(rate=1 / 16, output_rate=0.0)
    masks = prune_units(scores, dense_unit_masks(groups), layers, rates, "layer", groups)
    for layer in group.layers:
        assert masks[layer].nonzero().flatten().tolist() == [i for i in range(16) if i != 9]
    assert removed(masks, "blocks.0.conv1.weight") == 1


def test_a_group_takes_its_lowest_rate_and_a_skipped_member_keeps_it_dense():
    model, groups, layers = net("resnet-20")
    scores = unit_scores(model, layers, "l1", groups)
    rates = PruneRates(rate=0.5, first_rate=0.125, output_rate=0.0)
    masks = prune_units(scores, dense_unit_masks(groups), layers, rates, "layer", groups)
    assert removed(masks, "conv.weight") == removed(masks, "blocks.2.conv2.weight") == 2
    assert removed(masks, "blocks.0.conv1.weight") == 8
    skipping = prunable_layers(model, skip=("blocks.1.conv2",))
    masks = prune_units(scores, dense_unit_masks(groups), skipping, rates, "layer", groups)
    assert removed(masks, "conv.weight") == removed(masks, "blocks.0.conv2.weight") == 0
    assert removed(masks, "blocks.0.conv1.weight") == 8


def test_a_layer_that_would_lose_all_its_units_is_an_error_naming_it():
    model, groups, layers = lenet()
    scores = unit_scores(model, layers, "l1", groups)
    rates = PruneRates(rate=0.999, first_rate=0.1, output_rate=0.0)
    with pytest.raises(UnitPruningError, match="layer fc2 would lose all its 100 units"):
        prune_units(scores, dense_unit_masks(groups), layers, rates, "layer", groups)


def test_an_emptied_layer_names_the_rate_that_emptied_it_in_global_scope_too():
    model, groups, layers = net("conv-4")
    scores = unit_scores(model, layers, "l1", groups)
    rates = PruneRates.from_config(PruneConfig(rate=0.2, conv_rate=0.99, output_rate=0.1))
    once = prune_units(scores, dense_unit_masks(groups), layers, rates, "global", groups)
    with pytest.raises(UnitPruningError, match=r"lower prune\.conv_rate") as info:
        prune_units(scores, once, layers, rates, "global", groups)  # 1 unit left, then 0
    assert info.value.setting == "conv_rate"
    pooled = PruneRates.from_config(PruneConfig(rate=0.99, output_rate=0.1))
    with pytest.raises(UnitPruningError, match=r"lower prune\.rate ") as info:
        prune_units(scores, dense_unit_masks(groups), layers, pooled, "global", groups)
    assert info.value.setting == "rate"


def test_random_unit_masks_keep_each_groups_count_and_coupling():
    model, groups, layers = net("resnet-20")
    scores = unit_scores(model, layers, "l1", groups)
    masks = prune_units(scores, dense_unit_masks(groups), layers, RATES, "layer", groups)
    rand = random_unit_masks_like(masks, groups, torch.Generator().manual_seed(3))
    assert {k: int(v.sum()) for k, v in rand.items()} == {k: int(v.sum()) for k, v in
                                                          masks.items()}
    stage1 = group_of(groups, "conv.weight").layers
    assert all(torch.equal(rand[m], rand[stage1[0]]) for m in stage1)
    assert any(not torch.equal(rand[k], masks[k]) for k in masks)


# ---------------------------------------------------------------------------------------------
# Parameter masks


class Sigmoids(nn.Module):
    """Units that are not 0 when dead (sigmoid(0) = 1/2) and a BatchNorm without affine."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 8, 8)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.fc1 = nn.Linear(8 * 16, 12)
        self.fc2 = nn.Linear(12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.sigmoid(self.bn(self.conv(x))), 2)
        return self.fc2(torch.sigmoid(self.fc1(x.flatten(1))))


def test_dead_units_reach_nothing_even_where_they_are_not_zero():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Sigmoids()
    with torch.no_grad():
        model.bn.running_mean.normal_()
    groups = unit_groups(model, torch.zeros(2, 3, 8, 8))
    layers = prunable_layers(model)
    masks = dense_unit_masks(groups)
    masks["conv.weight"][[1, 5]] = 0
    masks["fc1.weight"][[0, 3, 4]] = 0
    masked = masked_copy(model, masks, groups)
    assert masked.fc1.weight[:, 16:32].abs().sum() == 0  # channel 1, flattened: 16 columns
    small = shrink(model, masks, groups, torch.randn(4, 3, 8, 8))
    assert small.fc1.weight.shape == (9, 6 * 16) and small.fc2.in_features == 9
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        assert (small.eval()(x) - masked.eval()(x)).abs().max() <= 1e-6
    assert len(layers) == 3


def test_a_dead_channel_after_batchnorm_is_zero_in_train_and_eval_mode():
    model, groups, _ = net("resnet-20")
    masks = dense_unit_masks(groups)
    masks["blocks.0.conv1.weight"][[2, 7]] = 0
    masked = masked_copy(model, masks, groups)
    with torch.no_grad():
        masked.blocks[0].bn1.running_mean.normal_()
        masked.blocks[0].bn1.bias.normal_()  # the mask is applied again, as after a step
    apply_masks(dict(masked.named_parameters()), param_masks(masked, masks, groups))
    seen = []
    masked.blocks[0].bn1.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.randn(4, 3, 32, 32)
    for train in (True, False):
        with torch.no_grad():
            masked.train(train)(x)
        assert seen[-1][:, [2, 7]].abs().max() == 0
        assert seen[-1][:, 3].abs().max() > 0


def test_masks_kept_through_training_steps_keep_shrunk_equal_to_masked():
    model, groups, layers = net("tests.test_structure:user_net", (3, 16, 16))
    masks = prune_units(unit_scores(model, layers, "l1", groups), dense_unit_masks(groups),
                        layers, PruneRates(rate=0.4, output_rate=0.0), "layer", groups)
    trained = masked_copy(model, masks, groups)
    pmasks = param_masks(trained, masks, groups)
    assert set(pmasks) == set(param_masks(trained, dense_unit_masks(groups), groups))
    assert {"bn1.weight", "bn1.bias", "conv2.weight", "head.weight"} <= set(pmasks)
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.5, momentum=0.9)
    for _ in range(3):
        x = torch.randn(8, 3, 16, 16)
        loss = nn.functional.cross_entropy(trained.train()(x), torch.randint(0, 10, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        apply_masks(dict(trained.named_parameters()), pmasks)
    small = shrink(trained, masks, groups, torch.randn(4, 3, 16, 16))
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        assert (small.eval()(x) - trained.eval()(x)).abs().max() <= 1e-5
    back = unit_masks_from(pmasks, groups)
    assert all(torch.equal(back[k], masks[k]) for k in masks)


# ---------------------------------------------------------------------------------------------
# Bad input: what cannot be coupled


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.block = nn.Linear(8, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(torch.relu(self.block(self.inp(x)))))


class Tied(Shared):
    def __init__(self) -> None:
        super().__init__()
        self.again = nn.Linear(8, 8)
        self.again.weight = self.block.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.again(torch.relu(self.block(self.inp(x)))))


class Chunked(nn.Module):
    """Two halves of one convolution added together: a split Torch-Pruning cannot map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return self.fc(torch.relu(self.conv2(torch.relu(a + b))).mean((2, 3)))


class Concatenated(nn.Module):
    """A concatenation then a flatten: Torch-Pruning 1.6 couples the branches by mistake."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 5, 3, padding=1)
        self.b = nn.Conv2d(3, 5, 1)
        self.fc1 = nn.Linear(10 * 16, 12)
        self.fc = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.cat([self.a(x), self.b(x)], 1), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def test_shared_and_tied_layers_are_refused_by_name():
    with pytest.raises(CouplingError, match="layer block runs 2 times in one forward pass"):
        unit_groups(Shared(), torch.zeros(2, 6))
    with pytest.raises(CouplingError, match=r"block.weight and again.weight are one tensor"):
        unit_groups(Tied(), torch.zeros(2, 6))


@pytest.mark.parametrize("model, layer, words", [
    (Chunked(), "conv", "channel split or slice"),
    (Concatenated(), "a, b", "changes what the network computes"),
])
def test_unresolved_coupling_names_the_layer_and_skipping_it_works(model, layer, words):
    groups = unit_groups(model, torch.zeros(2, 3, 8, 8))
    scores = {k: torch.rand(v.shape) for k, v in dense_unit_masks(groups).items()}
    layers = prunable_layers(model)
    with pytest.raises(CouplingError, match=f"cannot prune layer {layer}: .*{words}.*prune.skip"):
        prune_units(scores, dense_unit_masks(groups), layers, RATES, "layer", groups)
    skipping = prunable_layers(model, skip=tuple(layer.split(", ")))
    masks = prune_units(scores, dense_unit_masks(groups), skipping, RATES, "layer", groups)
    shrink(model, masks, groups, torch.randn(4, 3, 8, 8))  # checked against the masked one
    assert sum(removed(masks, k) for k in masks) > 0


def test_shrink_refuses_an_emptied_layer_and_checks_itself():
    model, groups, _ = lenet()
    masks = dense_unit_masks(groups)
    masks["fc2.weight"][:] = 0
    with pytest.raises(ShrinkError, match="layer fc2 has no units left"):
        shrink(model, masks, groups)
    masks = dense_unit_masks(groups)
    masks["fc1.weight"][:10] = 0
    fc1 = group_of(groups, "fc1.weight")
    lying = [dataclasses.replace(g, parts=tuple(p for p in g.parts if p.kind != IN))
             if g is fc1 else g for g in groups]  # as if nothing read fc1's units
    with pytest.raises(ShrinkError, match="fails on the example input"):
        shrink(model, masks, lying, torch.randn(2, 784))


def test_torch_pruning_alone_breaks_lightcnn_and_the_mfm_pruner_fixes_it():
    """Torch-Pruning 1.6 without :mod:`prunetui.structure.mfm` maps the 2C rows of conv2a to
    conv2's C inputs two to one and prunes single rows: the MFM halves fall out of step."""
    model = LightCNN9((1, 128, 128), 10, width=0.25)
    x = torch.zeros(2, 1, 128, 128)
    graph = tp.DependencyGraph().build_dependency(model, x, verbose=False)
    group = graph.get_pruning_group(model.conv2a, tp.prune_conv_out_channels, [4, 5])
    assert [(item.dep.target.module, item.idxs) for item in group][-1] == (model.conv2, [2, 2])
    graph.get_pruning_group(model.conv5, tp.prune_conv_out_channels, [1]).prune()
    with pytest.raises(RuntimeError, match="unflatten"):
        model(x)
    _, groups, _ = lightcnn()
    assert not any(g.problem for g in groups)
    assert group_of(groups, "conv2a.weight").size == 12  # MFM channels, not 24 rows


def test_conv_rate_prunes_the_units_of_convolutions():
    model, groups, layers = net("conv-4")
    scores = unit_scores(model, layers, "l1", groups)
    rates = PruneRates.from_config(PruneConfig(rate=0.5, conv_rate=0.1, output_rate=0.1))
    convs = {"features.0.weight": 6, "features.2.weight": 6, "features.5.weight": 13,
             "features.7.weight": 13}  # round(0.1 * 64), round(0.1 * 128)
    masks = prune_units(scores, dense_unit_masks(groups), layers, rates, "layer", groups)
    assert {name: removed(masks, name) for name in convs} == convs
    assert removed(masks, "fc_layers.0.weight") == removed(masks, "fc_layers.2.weight") == 128
    assert removed(masks, "fc.weight") == 0
    rates = dataclasses.replace(rates, rate=0.2)  # global: convolutions apart, 20% of the FCs
    pooled = prune_units(scores, dense_unit_masks(groups), layers, rates, "global", groups)
    assert {name: removed(pooled, name) for name in convs} == convs
    assert removed(pooled, "fc_layers.0.weight") + removed(pooled, "fc_layers.2.weight") == 102


def test_a_conv_rate_that_empties_a_convolution_is_refused_naming_conv_rate():
    _, groups, layers = net("conv-4")
    cfg = Config(prune=PruneConfig(structure="unit", rate=0.2, conv_rate=0.99, rounds=2))
    with pytest.raises(ConfigError) as info:  # 64 units, then 1 (round(0.99 * 64) = 63), then 0
        check_schedule(cfg, list(groups), layers)
    assert info.value.key == "prune.conv_rate"
    assert "in round 2, layer features.0 would lose all its 64 units" in str(info.value)
    check_schedule(Config(prune=PruneConfig(rate=0.2, conv_rate=0.5, rounds=2)), list(groups),
                   layers)

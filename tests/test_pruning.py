"""Pruning math: exact counts per round, layer and global scope, output and first-layer rates."""

from __future__ import annotations

import torch

from prunetui import pruning
from prunetui.nets import PrunableLayer, prunable_layers
from prunetui.nets.lenet import LeNet300100

LAYERS = [PrunableLayer("fc1.weight", "first"), PrunableLayer("fc2.weight", "hidden"),
          PrunableLayer("fc3.weight", "output")]
RATES = pruning.PruneRates(rate=0.2, first_rate=0.2, output_rate=0.1)


def lenet_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.detach() for k, v in LeNet300100().state_dict().items()}


def alive(masks):
    return {k: int(v.sum()) for k, v in masks.items()}


def test_lenet_prunable_layers_are_the_three_weights_not_biases():
    layers = prunable_layers(LeNet300100())
    assert layers == LAYERS


def test_layerwise_counts_are_exact_whole_weights_each_round():
    w = lenet_weights()
    masks = pruning.dense_masks(w, LAYERS)
    expected = {"fc1.weight": 235200, "fc2.weight": 30000, "fc3.weight": 1000}
    for _ in range(5):
        masks = pruning.prune(pruning.magnitude_scores(w, LAYERS), masks, LAYERS, RATES, "layer")
        for name, rate in (("fc1.weight", 0.2), ("fc2.weight", 0.2), ("fc3.weight", 0.1)):
            expected[name] -= round(rate * expected[name])
        assert alive(masks) == expected
    # 0.8^5 = 0.32768 of the hidden layers, 0.9^5 of the output layer, up to whole weights.
    fractions = pruning.layer_remaining(masks)
    assert abs(fractions["fc1.weight"] - 0.8 ** 5) < 1 / 235200 * 5
    assert abs(fractions["fc3.weight"] - 0.9 ** 5) < 5 / 1000


def test_magnitude_pruning_removes_the_smallest_surviving_weights():
    w = {"a.weight": torch.tensor([[0.5, -0.1, 0.3, -0.9, 0.05]])}
    layers = [PrunableLayer("a.weight", "hidden")]
    masks = pruning.dense_masks(w, layers)
    rates = pruning.PruneRates(rate=0.4, first_rate=0.4, output_rate=0.0)
    masks = pruning.prune(pruning.magnitude_scores(w, layers), masks, layers, rates, "layer")
    assert masks["a.weight"].tolist() == [[1, 0, 1, 1, 0]]
    # Next round: 40% of the 3 survivors = 1 (the 0.3); pruned weights are never counted again.
    masks = pruning.prune(pruning.magnitude_scores(w, layers), masks, layers, rates, "layer")
    assert masks["a.weight"].tolist() == [[1, 0, 0, 1, 0]]


def test_global_scope_ranks_hidden_layers_together_and_keeps_output_rate():
    w = {"first.weight": torch.full((10,), 0.01), "mid.weight": torch.full((10,), 1.0),
         "out.weight": torch.arange(1, 11).float()}
    layers = [PrunableLayer("first.weight", "first"), PrunableLayer("mid.weight", "hidden"),
              PrunableLayer("out.weight", "output")]
    masks = pruning.dense_masks(w, layers)
    rates = pruning.PruneRates(rate=0.5, first_rate=0.5, output_rate=0.2)
    new = pruning.prune(pruning.magnitude_scores(w, layers), masks, layers, rates, "global")
    # Half of the 20 pooled weights go, all from the small-magnitude first layer.
    assert alive(new) == {"first.weight": 0, "mid.weight": 10, "out.weight": 8}
    layerwise = pruning.prune(pruning.magnitude_scores(w, layers), masks, layers, rates, "layer")
    assert alive(layerwise) == {"first.weight": 5, "mid.weight": 5, "out.weight": 8}


def test_global_scope_respects_an_explicit_first_layer_rate():
    w = {"first.weight": torch.full((10,), 0.01), "mid.weight": torch.full((10,), 1.0),
         "out.weight": torch.ones(10)}
    layers = [PrunableLayer("first.weight", "first"), PrunableLayer("mid.weight", "hidden"),
              PrunableLayer("out.weight", "output")]
    rates = pruning.PruneRates(rate=0.5, first_rate=0.1, output_rate=0.0,
                               first_rate_explicit=True)
    new = pruning.prune(pruning.magnitude_scores(w, layers), pruning.dense_masks(w, layers),
                        layers, rates, "global")
    assert alive(new) == {"first.weight": 9, "mid.weight": 5, "out.weight": 10}


def test_random_masks_keep_per_layer_counts_and_differ_from_magnitude():
    w = lenet_weights()
    masks = pruning.dense_masks(w, LAYERS)
    for _ in range(3):
        masks = pruning.prune(pruning.magnitude_scores(w, LAYERS), masks, LAYERS, RATES, "layer")
    random = pruning.random_masks_like(masks, torch.Generator().manual_seed(1))
    assert alive(random) == alive(masks)
    assert not torch.equal(random["fc1.weight"], masks["fc1.weight"])
    again = pruning.random_masks_like(masks, torch.Generator().manual_seed(1))
    assert all(torch.equal(random[k], again[k]) for k in masks)


def test_remaining_is_the_fraction_of_all_prunable_weights():
    masks = {"a": torch.tensor([1.0, 0.0, 0.0, 0.0]), "b": torch.tensor([1.0, 1.0, 1.0, 1.0])}
    assert pruning.remaining(masks) == 5 / 8
    assert pruning.layer_remaining(masks) == {"a": 0.25, "b": 1.0}


# --- survivor counts for pruning at initialisation ------------------------------------------

SMALL = {"fc1.weight": (30, 20), "fc2.weight": (20, 15), "fc3.weight": (7, 15)}


def test_remove_lowest_selects_exactly_what_a_stable_sort_would():
    gen = torch.Generator().manual_seed(0)
    for trial in range(400):
        n = int(torch.randint(1, 50, (1,), generator=gen))
        scores = torch.randint(0, 1 + trial % 6, (n,), generator=gen).double()
        if trial % 4 == 0:
            scores[torch.rand(n, generator=gen) < 0.2] = float("inf")
        if trial % 9 == 0:
            scores[torch.rand(n, generator=gen) < 0.2] = float("nan")
        mask = (torch.rand(n, generator=gen) < 0.7).float()
        count = int(torch.randint(-1, n + 2, (1,), generator=gen))
        expected = mask.clone()
        if count > 0:
            flat = torch.where(mask > 0, scores, torch.full_like(scores, float("inf")))
            expected[torch.argsort(flat, stable=True)[:count]] = 0
        assert torch.equal(pruning._remove_lowest(scores, mask, count), expected)


def iterated_prune(rates: pruning.PruneRates, scope: str, rounds: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    masks = {name: torch.ones(shape) for name, shape in SMALL.items()}
    start = dict(masks)
    for _ in range(rounds):
        scores = {name: torch.rand(shape, generator=gen) for name, shape in SMALL.items()}
        masks = pruning.prune(scores, masks, LAYERS, rates, scope)
    return start, masks


def test_schedule_survivors_equals_iterated_pruning_in_both_scopes():
    for explicit in (False, True):
        rates = pruning.PruneRates(rate=0.3, first_rate=0.15, output_rate=0.1,
                                   first_rate_explicit=explicit)
        for rounds in (0, 1, 2, 5, 9):
            dense, layer_masks = iterated_prune(rates, "layer", rounds, seed=rounds)
            counted = pruning.schedule_survivors(dense, LAYERS, rates, "layer", rounds)
            assert counted == pruning.Survivors(per_layer=alive(layer_masks))
            dense, global_masks = iterated_prune(rates, "global", rounds, seed=rounds)
            counted = pruning.schedule_survivors(dense, LAYERS, rates, "global", rounds)
            assert counted == pruning.Survivors(total=sum(alive(global_masks).values()))


def test_schedule_survivors_on_lenet_counts_like_the_layerwise_test():
    w = lenet_weights()
    dense = pruning.dense_masks(w, LAYERS)
    counted = pruning.schedule_survivors(dense, LAYERS, RATES, "layer", 5)
    masks = dense
    for _ in range(5):
        masks = pruning.prune(pruning.magnitude_scores(w, LAYERS), masks, LAYERS, RATES, "layer")
    assert counted.per_layer == alive(masks)


def test_survivors_need_exactly_one_of_per_layer_and_total():
    for bad in ({}, {"per_layer": {"a": 1}, "total": 1}):
        try:
            pruning.Survivors(**bad)
        except ValueError:
            continue
        raise AssertionError(f"Survivors({bad}) accepted")


def test_keep_highest_per_layer_and_in_total():
    scores = {"a.weight": torch.tensor([5.0, 1.0, 3.0, 1.0, 4.0]),
              "b.weight": torch.tensor([[2.0, 0.5], [6.0, 1.0]])}
    layers = [PrunableLayer("a.weight", "first"), PrunableLayer("b.weight", "output")]
    masks = pruning.dense_masks(scores, layers)
    kept = pruning.keep_highest(scores, masks, layers,
                                pruning.Survivors(per_layer={"a.weight": 3, "b.weight": 1}))
    assert kept["a.weight"].tolist() == [1, 0, 1, 0, 1]
    assert kept["b.weight"].tolist() == [[0, 0], [1, 0]]
    # Pooled: the 5 lowest of all 9 go (0.5, the three 1.0s, 2.0).
    pooled = pruning.keep_highest(scores, masks, layers, pruning.Survivors(total=4))
    assert pooled["a.weight"].tolist() == [1, 0, 1, 0, 1]
    assert pooled["b.weight"].tolist() == [[0, 0], [1, 0]]
    # Remove 2: 0.5, then of the three tied 1.0s the lowest index in a+b's concatenation.
    ties = pruning.keep_highest(scores, masks, layers, pruning.Survivors(total=7))
    assert ties["a.weight"].tolist() == [1, 0, 1, 1, 1]
    assert ties["b.weight"].tolist() == [[1, 0], [1, 1]]


def test_keep_highest_never_brings_a_removed_weight_back():
    scores = {"a.weight": torch.tensor([9.0, 8.0, 1.0, 2.0])}
    layers = [PrunableLayer("a.weight", "hidden")]
    masks = {"a.weight": torch.tensor([0.0, 1.0, 1.0, 1.0])}
    kept = pruning.keep_highest(scores, masks, layers, pruning.Survivors(total=2))
    assert kept["a.weight"].tolist() == [0, 1, 0, 1]
    for too_many in (pruning.Survivors(total=4), pruning.Survivors(per_layer={"a.weight": 4})):
        try:
            pruning.keep_highest(scores, masks, layers, too_many)
        except ValueError:
            continue
        raise AssertionError("kept more weights than are alive")

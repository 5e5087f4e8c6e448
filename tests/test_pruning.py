"""Pruning math: exact counts per round, layer and global scope, output, first-layer and
convolution rates."""

from __future__ import annotations

import torch

from prunetui import config, pruning, store
from prunetui.config import Config, ModelConfig, PruneConfig
from prunetui.experiment import Experiment
from prunetui.nets import PrunableLayer, build_model, prunable_layers
from prunetui.nets.lenet import LeNet300100
from prunetui.segments import Segment
from prunetui.store import new_run
from prunetui.trajectory import ReplicateState, next_masks, prune_rates
from tests.conftest import tiny_overrides

LAYERS = [PrunableLayer("fc1.weight", "first"), PrunableLayer("fc2.weight", "hidden"),
          PrunableLayer("fc3.weight", "output")]
RATES = pruning.PruneRates(rate=0.2, output_rate=0.1)


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
    rates = pruning.PruneRates(rate=0.4, output_rate=0.0)
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
    rates = pruning.PruneRates(rate=0.5, output_rate=0.2)
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
    rates = pruning.PruneRates(rate=0.5, first_rate=0.1, output_rate=0.0)
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
        rates = pruning.PruneRates(rate=0.3, output_rate=0.1,
                                   first_rate=0.15 if explicit else None)
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


# --- a separate rate for convolutions (prune.conv_rate) ---------------------------------------


def conv4(shape: tuple[int, ...] = (3, 8, 8)):
    """Prunetui's own Conv-4 (small inputs: small fully connected layers) and its layers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch="conv-4"), shape, 10)
    return model, prunable_layers(model)


def one_round(cfg: Config, model: torch.nn.Module, layers) -> pruning.Masks:
    """Round 1's masks of the rewind scheme, from the loop's own function (next_masks)."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rep = ReplicateState(0, 7, weights, schemes=cfg.prune.schemes)
    rep.record("dense", weights, pruning.dense_masks(weights, layers))
    return next_masks(cfg, Segment(0, 1, "rewind"), rep, layers)


def prune_cfg(**prune) -> Config:
    return Config(prune=PruneConfig(schemes=("rewind",), **prune))


def removed_counts(masks):
    return {k: v.numel() - int(v.sum()) for k, v in masks.items()}


CONV4_CONVS = ["features.0.weight", "features.2.weight", "features.5.weight",
               "features.7.weight"]
CONV4_FCS = ["fc_layers.0.weight", "fc_layers.2.weight"]


def test_conv4_layers_know_they_are_convolutions():
    _, layers = conv4()
    assert [layer.name for layer in layers if layer.conv] == CONV4_CONVS
    assert [layer.name for layer in layers if not layer.conv] == [*CONV4_FCS, "fc.weight"]
    assert layers[0].role == "first" and layers[-1].role == "output"


def test_conv_rate_prunes_conv4_exactly_as_the_paper_does():
    model, layers = conv4()
    sizes = {layer.name: model.state_dict()[layer.name].numel() for layer in layers}
    paper = one_round(prune_cfg(rate=0.2, conv_rate=0.1, output_rate=0.1), model, layers)
    expected = {name: round((0.1 if name in CONV4_CONVS or name == "fc.weight" else 0.2) * n)
                for name, n in sizes.items()}
    assert removed_counts(paper) == expected
    assert expected["features.0.weight"] == 173  # 10% of 1,728, not 20%
    # Without conv_rate the convolutions lose rate, as before.
    before = one_round(prune_cfg(rate=0.2, output_rate=0.1), model, layers)
    assert removed_counts(before) == {
        name: round((0.1 if name == "fc.weight" else 0.2) * n) for name, n in sizes.items()}
    # An explicit first_rate still wins on the first convolution.
    first = one_round(prune_cfg(rate=0.2, conv_rate=0.1, first_rate=0.3, output_rate=0.1),
                      model, layers)
    assert removed_counts(first) == {**expected, "features.0.weight": round(0.3 * 1728)}


def test_prune_rates_come_from_the_config_in_one_place():
    rates = pruning.PruneRates.from_config(PruneConfig(rate=0.2, conv_rate=0.1))
    assert (rates.conv_rate, rates.first_rate) == (0.1, None)
    assert pruning.PruneRates.from_config(PruneConfig()).conv_rate is None
    assert prune_rates(prune_cfg(conv_rate=0.1)) == pruning.PruneRates.from_config(
        prune_cfg(conv_rate=0.1).prune)
    _, layers = conv4()
    assert [rates.source(layer) for layer in layers] == ["conv_rate"] * 4 + ["rate"] * 2 + [
        "output_rate"]


class UsersNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.hidden = torch.nn.Linear(4 * 6 * 6, 8)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(torch.relu(self.conv(x)).flatten(1))))


def users_net(num_classes: int, input_shape: tuple[int, ...]) -> torch.nn.Module:
    return UsersNet()


def test_a_users_factory_network_gets_the_conv_flag_too():
    model = build_model(ModelConfig(arch="tests.test_pruning:users_net"), (3, 8, 8), 10)
    layers = prunable_layers(model)
    assert [(layer.name, layer.role, layer.conv) for layer in layers] == [
        ("conv.weight", "first", True), ("hidden.weight", "hidden", False),
        ("head.weight", "output", False)]
    masks = one_round(prune_cfg(rate=0.5, conv_rate=0.25, output_rate=0.0), model, layers)
    assert removed_counts(masks) == {"conv.weight": 27, "hidden.weight": 576, "head.weight": 0}


def test_global_scope_prunes_convolutions_at_conv_rate_and_pools_the_rest():
    model, layers = conv4()
    sizes = {layer.name: model.state_dict()[layer.name].numel() for layer in layers}
    cfg = prune_cfg(scope="global", rate=0.5, conv_rate=0.1, output_rate=0.1)
    masks = one_round(cfg, model, layers)
    removed = removed_counts(masks)
    for name in CONV4_CONVS:
        assert removed[name] == round(0.1 * sizes[name])
    assert removed["fc.weight"] == round(0.1 * sizes["fc.weight"])
    pooled = sum(sizes[name] for name in CONV4_FCS)
    assert sum(removed[name] for name in CONV4_FCS) == round(0.5 * pooled)
    assert removed["fc_layers.0.weight"] != round(0.5 * sizes["fc_layers.0.weight"])  # ranked
    survivors = pruning.schedule_survivors(pruning.dense_masks(model.state_dict(), layers),
                                           layers, prune_rates(cfg), "global", 1)
    assert survivors.total == sum(sizes.values()) - sum(removed.values())


def test_a_run_records_its_convolutions_pruned_at_conv_rate(mnist_root, tmp_path):
    cfg = config.apply_overrides(Config(), tiny_overrides(mnist_root, **{
        "model.arch": "tests.test_unit_pruning:small_cnn", "prune.schemes": ["rewind"],
        "prune.rounds": 1, "prune.rate": 0.5, "prune.conv_rate": 0.25,
        "prune.output_rate": 0.1, "train.iterations": 5, "train.eval_every": 5,
        "data.train_subset": 120, "data.validation": 60}))
    run = new_run(cfg, tmp_path, "conv-rate")
    assert Experiment(run).execute() == store.FINISHED
    counts = {r["round"]: r["counts"] for r in run.sparsity()}
    # conv1 1->4 and conv2 4->8 (3x3) lose 25%, fc1 (392->24) 50%, the classifier 10%.
    assert counts[1] == {"conv1.weight": [27, 36], "conv2.weight": [216, 288],
                         "fc1.weight": [4704, 9408], "fc.weight": [216, 240]}

"""Networks: the built-in conv-N / VGG-19 / ResNet-20, torchvision: and MODULE:CALLABLE
factories, what is prunable (skip, output), seeded initialisation, FLOPs and bad input."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch
from torch import nn

from prunetui import config, footprint
from prunetui.config import Config, ConfigError, ModelConfig
from prunetui.nets import (
    build_model,
    check_model,
    init_weights,
    layers_for,
    prunable_layers,
    weight_layers,
)
from tests.conftest import tiny_overrides

CONV_NETS = ("conv-2", "conv-4", "conv-6", "vgg-19", "resnet-20")
SHAPES = ((1, 28, 28), (3, 32, 32), (784,))


def model(arch: str, shape=(3, 32, 32), classes: int = 10, **kw) -> nn.Module:
    return build_model(ModelConfig(arch=arch, **kw), shape, classes)


def weights(net: nn.Module) -> int:
    return sum(m.weight.numel() for _, m in weight_layers(net))


def cfg_with(**sections) -> Config:
    raw = {name: values for name, values in sections.items()}
    return config.from_dict(raw)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("arch", CONV_NETS)
def test_built_in_networks_build_for_gray_and_colour(arch, shape):
    net = model(arch, shape, 10)
    assert net.eval()(torch.zeros(3, *shape)).shape == (3, 10)
    assert model(arch, shape, 7).eval()(torch.zeros(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("arch, paper", [("conv-2", 4.3), ("conv-4", 2.4)])
def test_conv_weight_counts_match_the_lth_paper(arch, paper):
    """Frankle & Carbin (2019), Figure 2, for 32x32x3 inputs (weights, no biases; the paper
    rounds to 0.1M: conv-2 has 4.30M, conv-4 2.43M)."""
    assert round(weights(model(arch)) / 1e6, 1) == paper


def test_conv6_weight_count_follows_its_layer_list():
    # Figure 2 lists 1.7M for Conv-6, but the layers it lists (64,64,P,128,128,P,256,256,P
    # then FC 256,256,10 on 32x32x3) have 2.26M weights, as written out here.
    convs = 3 * 64 * 9 + 64 * 64 * 9 + 64 * 128 * 9 + 128 * 128 * 9 + 128 * 256 * 9 \
        + 256 * 256 * 9
    fcs = 4 * 4 * 256 * 256 + 256 * 256 + 256 * 10
    assert weights(model("conv-6")) == convs + fcs == 2_261_184


@pytest.mark.parametrize("arch, total", [("resnet-20", 0.27e6), ("vgg-19", 20.0e6)])
def test_cifar_networks_have_open_lth_sizes(arch, total):
    assert sum(p.numel() for p in model(arch).parameters()) == pytest.approx(total, rel=0.01)


@pytest.mark.parametrize("arch", ("conv-4", "vgg-19", "resnet-20"))
def test_prunable_layers_are_linear_and_conv_weights_in_order(arch):
    net = model(arch)
    layers = prunable_layers(net)
    expected = [f"{n}.weight" for n, m in net.named_modules()
                if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert [layer.name for layer in layers] == expected
    assert [layer.role for layer in layers] == ["first"] + ["hidden"] * (len(layers) - 2) + [
        "output"]
    assert layers[-1].name == "fc.weight"
    batchnorm = {f"{n}.weight" for n, m in net.named_modules()
                 if isinstance(m, nn.BatchNorm2d)}
    assert (arch == "conv-4") or batchnorm  # BatchNorm present but never prunable
    assert not batchnorm & {layer.name for layer in layers}
    assert not any(layer.name.endswith("bias") for layer in layers)


def test_skip_leaves_layers_dense_and_output_names_the_classifier():
    net = model("resnet-20")
    layers = prunable_layers(net, skip=("conv", "blocks.*.shortcut.0"))
    names = [layer.name for layer in layers]
    assert "conv.weight" not in names and not any("shortcut" in n for n in names)
    assert names[0] == "blocks.0.conv1.weight" and layers[0].role == "hidden"
    assert layers[-1].role == "output"
    chosen = prunable_layers(net, output="blocks.8.conv2")
    roles = {layer.name: layer.role for layer in chosen}
    assert roles["blocks.8.conv2.weight"] == "output" and roles["fc.weight"] == "hidden"
    assert roles["conv.weight"] == "first"
    cfg = cfg_with(model={"arch": "resnet-20", "output": "fc.weight"},
                   prune={"skip": ["fc.weight"]})
    assert "fc.weight" not in [layer.name for layer in layers_for(cfg, net)]


def test_check_model_names_bad_output_and_skip():
    with pytest.raises(ConfigError) as info:
        check_model(cfg_with(model={"arch": "conv-2", "output": "nope"}), (784,), 10)
    assert info.value.key == "model.output" and "fc_layers.0" in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_model(cfg_with(model={"arch": "conv-2"}, prune={"skip": ["conv*"]}), (784,), 10)
    assert info.value.key == "prune.skip" and "matches no layer" in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_model(cfg_with(model={"arch": "lenet-300-100"}, prune={"skip": ["fc*"]}),
                    (784,), 10)
    assert info.value.key == "prune.skip"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_models_build_with_the_data_classes(name):
    for shape in ((3, 32, 32), (1, 28, 28), (784,)):
        net = model(f"torchvision:{name}", shape, 7)
        assert net.eval()(torch.zeros(2, *shape)).shape == (2, 7)
    check_model(cfg_with(model={"arch": f"torchvision:{name}"}), (784,), 10)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(textwrap.dedent("""
        from torch import nn

        NOT_A_FUNCTION = 3

        def small_cnn(num_classes, input_shape, channels=4):
            c = input_shape[0] if len(input_shape) == 3 else 1
            return nn.Sequential(nn.Unflatten(1, (c, 28, 28)) if len(input_shape) == 1
                                 else nn.Identity(),
                                 nn.Conv2d(c, channels, 3), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(channels * 26 * 26, num_classes))

        def five_outputs(num_classes, input_shape):
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 5))

        def not_a_module(num_classes, input_shape):
            return "a string"
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mynets", raising=False)
    yield tmp_path
    sys.modules.pop("mynets", None)


def test_user_factory_gets_num_classes_input_shape_and_args(user_module):
    cfg = cfg_with(model={"arch": "mynets:small_cnn", "args": {"channels": 6}})
    net = build_model(cfg.model, (784,), 10)
    assert net[1].out_channels == 6
    assert net(torch.zeros(2, 784)).shape == (2, 10)
    check_model(cfg, (784,), 10)
    assert [layer.name for layer in layers_for(cfg, net)] == ["1.weight", "4.weight"]


def test_user_factory_is_found_in_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "herenets.py").write_text(
        "from torch import nn\n\ndef tiny(num_classes, input_shape):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "herenets", raising=False)
    try:
        assert model("herenets:tiny", (784,), 10)(torch.zeros(1, 784)).shape == (1, 10)
    finally:
        sys.modules.pop("herenets", None)


@pytest.mark.parametrize("arch, words", [
    ("no_such_module_xyz:net", "importing no_such_module_xyz failed"),
    ("mynets:missing", "has no attribute"),
    ("mynets:NOT_A_FUNCTION", "not callable"),
    ("mynets:not_a_module", "not an nn.Module"),
    ("mynets:five_outputs", "not (2, 10)"),
    ("torchvision:no_such_net", "torchvision has no classification model"),
])
def test_bad_networks_are_config_errors_naming_the_key(user_module, arch, words):
    with pytest.raises(ConfigError) as info:
        check_model(cfg_with(model={"arch": arch}), (784,), 10)
    err = info.value
    assert err.key == "model.arch" and err.value == arch
    assert words in str(err) and "model.arch" in str(err)


@pytest.mark.parametrize("raw, key", [
    ({"model": {"arch": "lenet"}}, "model.arch"),
    ({"model": {"arch": "my nets:f"}}, "model.arch"),
    ({"model": {"arch": "conv-2", "args": {"x": 1}}}, "model.args"),
    ({"model": {"arch": "mynets:f", "args": 3}}, "model.args"),
    ({"prune": {"skip": [""]}}, "prune.skip"),
])
def test_bad_model_settings_fail_at_config_time(raw, key):
    with pytest.raises(ConfigError) as info:
        config.from_dict(raw)
    assert info.value.key == key


def test_model_args_round_trip_through_toml(tmp_path):
    cfg = config.apply_overrides(Config(), [
        config.parse_override("model.arch=torchvision:resnet18"),
        config.parse_override("model.args={zero_init_residual = true}"),
        config.parse_override('prune.skip=["conv1"]')])
    assert cfg.model.args == {"zero_init_residual": True} and cfg.prune.skip == ("conv1",)
    config.save(cfg, tmp_path / "c.toml")
    assert config.load(tmp_path / "c.toml") == cfg


def state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["resnet-20", "torchvision:mobilenet_v3_small"])
def test_default_init_is_redrawn_from_the_seed_and_resets_batchnorm(arch):
    net = model(arch)
    rng = torch.get_rng_state()
    init_weights(net, "default", torch.Generator().manual_seed(1))
    first = state(net)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(3.0)
                m.running_mean.fill_(5.0)
    init_weights(net, "default", torch.Generator().manual_seed(1))
    assert same(state(net), first)
    init_weights(net, "default", torch.Generator().manual_seed(2))
    assert not same(state(net), first)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.all(bn.running_mean == 0)


def test_glorot_on_a_batchnorm_network_is_seeded_everywhere():
    a, b = model("resnet-20"), model("resnet-20")
    with torch.no_grad():
        b.bn.weight.fill_(2.0)
    for net in (a, b):
        init_weights(net, "glorot-normal", torch.Generator().manual_seed(4))
    assert same(state(a), state(b))


@pytest.mark.parametrize("arch, shape", [("lenet-300-100", (784,)),
                                         ("lightcnn-9", (1, 32, 32))])
def test_default_init_of_lenet_and_lightcnn_is_glorot_normal(arch, shape):
    """model.init = "default" keeps the presets' numbers: the same draws as glorot-normal."""
    a = build_model(ModelConfig(arch=arch, width=0.25), shape, 10)
    b = build_model(ModelConfig(arch=arch, width=0.25), shape, 10)
    init_weights(a, "default", torch.Generator().manual_seed(3))
    init_weights(b, "glorot-normal", torch.Generator().manual_seed(3))
    assert same(state(a), state(b))
    assert ModelConfig().init == "default"


def test_flops_count_convolutions():
    net = model("conv-2")
    with torch.no_grad():  # no weight exactly 0 (a random draw can be): nonzero == dense
        for p in net.parameters():
            p.fill_(0.5)
    dense, nonzero = footprint.flops(net, (3, 32, 32))
    convs = 64 * 27 * 32 * 32 + 64 * 576 * 32 * 32
    fcs = 16 * 16 * 64 * 256 + 256 * 256 + 256 * 10
    assert dense == nonzero == convs + fcs


def test_conv2_runs_end_to_end_on_mnist(mnist_root, tmp_path, capsys):
    from prunetui.cli import main

    sets = [*tiny_overrides(mnist_root), ("model.arch", "conv-2"),
            ("prune.rounds", 1), ("train.iterations", 5), ("train.eval_every", 5),
            ("prune.schemes", ["rewind"]), ("train.threads", 2), ("data.validation", 200)]
    args = ["run", "quick", "--out", str(tmp_path), "--name", "conv", "--plain",
            "--no-estimate"]
    for key, value in sets:
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    rows = [json.loads(line) for line in
            (tmp_path / "conv" / "metrics.jsonl").read_text().splitlines()]
    assert {(r["round"], r["scheme"]) for r in rows} == {(0, "dense"), (1, "rewind")}
    assert 0.70 < rows[-1]["remaining"] < 0.85


def test_setup_form_carries_skip_and_output_and_checks_the_import(user_module):
    from prunetui.app import formspec

    cfg = cfg_with(model={"arch": "resnet-20", "output": "fc"},
                   prune={"skip": ["conv", "*.shortcut.0"]})
    values = formspec.values_from_config(cfg)
    assert values["prune.skip"] == "conv, *.shortcut.0" and values["model.output"] == "fc"
    checked, errors = formspec.check(values)
    assert not errors and checked == cfg
    for arch, words in (("mynets:NOT_A_FUNCTION", "not callable"),
                        ("no_such_module_xyz:f", "importing"),
                        ("torchvision:nope", "torchvision has no")):
        _, errors = formspec.check(values | {"model.arch": arch})
        assert words in errors["model.arch"]
    assert formspec.check(values | {"model.arch": "mynets:small_cnn"})[1] == {}


def test_a_network_that_cannot_be_built_stops_the_cli_with_exit_2(mnist_root, tmp_path, capsys):
    """A bad ``model.arch`` is caught before any training: exit 2, the key named, no run left."""
    from prunetui.cli import main

    code = main(["run", "quick", "--set", f"data.root={mnist_root}", "--set",
                 "model.arch=no_such_module_here:small_cnn", "--out", str(tmp_path), "--plain",
                 "--no-estimate"])
    assert code == 2
    assert "model.arch" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_generated_run_names_are_usable_for_any_network():
    from prunetui.store.layout import check_run_name, generated_name

    for arch in ("torchvision:resnet18", "mynets:small_cnn", "conv-4"):
        name = generated_name("folder", arch, when=0)
        assert check_run_name(name) == name and ":" not in name

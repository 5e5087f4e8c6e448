"""LightCNN-9: shapes, MFM layers as single prunable weights, init, and that it can learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunetui.config import ModelConfig
from prunetui.nets import build_model, init_weights, prunable_layers
from prunetui.nets.lightcnn import LightCNN9, MFMConv2d, mfm

LAYERS = ["conv1", "conv2a", "conv2", "conv3a", "conv3", "conv4a", "conv4", "conv5a", "conv5",
          "fc1", "fc2"]


@pytest.mark.parametrize(("crop", "width", "fc1_in"), [
    (128, 1.0, 128 * 8 * 8), (64, 1.0, 128 * 4 * 4), (64, 0.5, 64 * 4 * 4), (100, 0.5, 64 * 7 * 7),
])
def test_forward_shapes(crop: int, width: float, fc1_in: int) -> None:
    model = build_model(ModelConfig(arch="lightcnn-9", width=width), (1, crop, crop), 7)
    assert isinstance(model, LightCNN9)
    assert model.fc1.in_features == fc1_in
    with torch.no_grad():
        assert model(torch.randn(2, 1, crop, crop)).shape == (2, 7)
        assert model.features(torch.randn(2, 1, crop, crop)).shape == (2, round(256 * width))


def test_paper_channel_counts_and_width_scaling() -> None:
    full = LightCNN9((1, 128, 128), 10)
    # An MFM layer holds 2*C filters and outputs C channels.
    outs = [getattr(full, n).weight.shape[0] for n in LAYERS]
    assert outs == [96, 96, 192, 192, 384, 384, 256, 256, 256, 512, 10]
    assert full.conv2a.weight.shape[1:] == (48, 1, 1) and full.conv2.weight.shape[1:] == (48, 3, 3)
    assert full.conv1.weight.shape[1:] == (1, 5, 5)
    half = LightCNN9((1, 128, 128), 10, width=0.5)
    assert [getattr(half, n).weight.shape[0] for n in LAYERS] == [o // 2 for o in outs[:-1]] + [10]
    tiny = LightCNN9((1, 32, 32), 3, width=0.001)  # every layer keeps at least one channel
    assert min(getattr(tiny, n).weight.shape[0] for n in LAYERS[:-1]) == 2
    assert tiny(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_prunable_layers_are_the_eleven_weights_in_order() -> None:
    layers = prunable_layers(LightCNN9((1, 64, 64), 5, width=0.5))
    assert [layer.name for layer in layers] == [f"{n}.weight" for n in LAYERS]
    assert layers[0].role == "first" and layers[0].name == "conv1.weight"
    assert layers[-1].role == "output" and layers[-1].name == "fc2.weight"
    assert {layer.role for layer in layers[1:-1]} == {"hidden"}


def test_mfm_is_the_max_of_two_halves() -> None:
    x = torch.randn(3, 8, 5, 5)
    torch.testing.assert_close(mfm(x), torch.maximum(x[:, :4], x[:, 4:]), rtol=0, atol=0)
    layer = MFMConv2d(2, 3, 3)
    assert layer(torch.randn(1, 2, 6, 6)).shape == (1, 3, 6, 6)


@pytest.mark.parametrize("scheme", ["glorot-normal", "kaiming-normal"])
def test_init_weights_is_seeded_with_zero_biases(scheme: str) -> None:
    a, b = LightCNN9((1, 64, 64), 5, 0.5), LightCNN9((1, 64, 64), 5, 0.5)
    init_weights(a, scheme, torch.Generator().manual_seed(3))
    init_weights(b, scheme, torch.Generator().manual_seed(3))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
        if name.endswith("bias"):
            assert not pa.any(), name
    assert a.fc1.weight.std() > 0


def test_a_few_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    model = LightCNN9((1, 32, 32), 4, width=0.25)
    init_weights(model, "glorot-normal", torch.Generator().manual_seed(0))
    x = torch.randn(8, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 4
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            loss = F.cross_entropy(model(x), y).item()
        model.train()
        return loss

    before = eval_loss()
    for _ in range(40):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert eval_loss() < 0.5 * before


@pytest.mark.parametrize("scheme", ["glorot-normal", "kaiming-normal"])
def test_both_inits_start_with_sane_logits(scheme):
    model = LightCNN9((1, 64, 64), 40, width=0.5)
    init_weights(model, scheme, torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(16, 1, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert 0.01 < logits.std().item() < 5  # Kaiming's ReLU gain gave ~80 through MFM layers

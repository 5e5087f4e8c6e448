"""Pruning at initialisation (SNIP, GraSP, SynFlow): scores against their formulas computed
independently, exact survivor counts, an untouched model, and SynFlow against a port of the
reference implementation (ganguli-lab/Synaptic-Flow)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunetui import saliency
from prunetui.config import ModelConfig
from prunetui.data.images import ImageData
from prunetui.data.tensors import TensorData
from prunetui.nets import PrunableLayer, build_model, prunable_layers
from prunetui.pruning import PruneRates, Survivors, dense_masks, schedule_survivors

T = saliency.GRASP_TEMPERATURE


# --- two tiny networks and their forward passes written out by hand ---------------------------


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double()


def mlp_forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = torch.relu(x @ p["0.weight"].T + p["0.bias"])
    return h @ p["2.weight"].T + p["2.bias"]


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def tiny_conv_bn() -> nn.Module:
    """Non-trivial BatchNorm statistics and affine values, some negative (SynFlow takes |.|)."""
    torch.manual_seed(1)
    model = ConvBN().double()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.tensor([0.3, -0.2, 0.1]))
        model.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
        model.bn.weight.copy_(torch.tensor([1.2, -0.7, 0.9]))
        model.bn.bias.copy_(torch.tensor([-0.1, 0.4, 0.2]))
    return model.train()  # the scores must still use eval mode (running statistics)


def conv_bn_forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = F.conv2d(x, p["conv.weight"], padding=1)
    scale = p["bn.weight"] / torch.sqrt(p["bn.running_var"] + 1e-5)
    h = (h - p["bn.running_mean"][:, None, None]) * scale[:, None, None]
    h = torch.relu(h + p["bn.bias"][:, None, None])
    return h.flatten(1) @ p["fc.weight"].T + p["fc.bias"]


NETS = {"mlp": (tiny_mlp, mlp_forward, (5,), 3), "conv_bn": (tiny_conv_bn, conv_bn_forward,
                                                           (2, 4, 4), 4)}


def sample(shape: tuple[int, ...], classes: int, n: int = 300, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn((n, *shape), generator=gen, dtype=torch.float64),
            torch.randint(0, classes, (n,), generator=gen))


def leaves(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().requires_grad_(True) for k, v in model.state_dict().items()
            if v.is_floating_point()}


def batch_losses(forward, p, x, y, temperature: float = 1.0) -> torch.Tensor:
    """The reference's loss: CrossEntropy (batch mean) per batch of 256, summed."""
    return sum(F.cross_entropy(forward(p, x[i:i + 256]) / temperature, y[i:i + 256])
               for i in range(0, len(x), 256))


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-7, atol=1e-12 * float(b[k].abs().max()))


# --- scores against their formulas ---------------------------------------------------------


@pytest.mark.parametrize("net", sorted(NETS))
def test_snip_is_abs_gradient_times_weight(net: str) -> None:
    make, forward, shape, classes = NETS[net]
    model = make()
    layers = prunable_layers(model)
    x, y = sample(shape, classes)
    p = leaves(model)
    names = [layer.name for layer in layers]
    grads = torch.autograd.grad(batch_losses(forward, p, x, y), [p[n] for n in names])
    expected = {n: (g * p[n]).abs().detach() for n, g in zip(names, grads, strict=True)}
    close(saliency.snip_scores(model, layers, x, y), expected)


@pytest.mark.parametrize("net", sorted(NETS))
def test_grasp_is_weight_times_hessian_gradient_product(net: str) -> None:
    """θ ⊙ Hg from the full Hessian of the prunable weights (the reference's stored score,
    the negated GraSP score -θ ⊙ Hg)."""
    make, forward, shape, classes = NETS[net]
    model = make()
    layers = prunable_layers(model)
    x, y = sample(shape, classes)
    p = {k: v.detach() for k, v in model.state_dict().items()}
    names = [layer.name for layer in layers]
    sizes = [p[n].numel() for n in names]
    theta = torch.cat([p[n].flatten() for n in names])

    def loss(vector: torch.Tensor) -> torch.Tensor:
        params = dict(p)
        for n, part in zip(names, vector.split(sizes), strict=True):
            params[n] = part.view_as(p[n])
        return batch_losses(forward, params, x, y, T)

    g = torch.autograd.functional.jacobian(loss, theta)
    hessian = torch.autograd.functional.hessian(loss, theta)
    hg = (theta * (hessian @ g)).split(sizes)
    expected = {n: part.view_as(p[n]) for n, part in zip(names, hg, strict=True)}
    close(saliency.grasp_scores(model, layers, x, y), expected)


def test_synflow_on_a_linear_net_has_the_closed_form() -> None:
    """R = 1ᵀ|W2||W1|1: dR/d|W1|_ij = (1ᵀ|W2|)_i and dR/d|W2|_ki = (|W1|1)_i."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.Linear(5, 3, bias=False))
    layers = prunable_layers(model)
    w1, w2 = (m.weight.detach().double().abs() for m in model)
    expected = {"0.weight": w1 * w2.sum(0)[:, None], "1.weight": w2 * w1.sum(1)[None, :]}
    close(saliency.synflow_scores(model, layers, (6,)), expected)


def test_synflow_linearises_batchnorm_and_uses_its_running_statistics() -> None:
    model = tiny_conv_bn()
    layers = prunable_layers(model)
    p = {k: v.detach().abs().requires_grad_(True) for k, v in model.state_dict().items()
         if v.is_floating_point()}
    names = [layer.name for layer in layers]
    r = conv_bn_forward(p, torch.ones(1, 2, 4, 4, dtype=torch.float64)).sum()
    grads = torch.autograd.grad(r, [p[n] for n in names])
    expected = {n: (g * p[n]).abs().detach() for n, g in zip(names, grads, strict=True)}
    close(saliency.synflow_scores(model, layers, (2, 4, 4)), expected)


def test_synflow_scores_know_the_input_shape_of_a_built_model() -> None:
    model = build_model(ModelConfig(arch="lenet-300-100"), (784,), 10)
    layers = prunable_layers(model)
    close(saliency.synflow_scores(model, layers), saliency.synflow_scores(model, layers, (784,)))
    with pytest.raises(ValueError, match="input_shape"):
        saliency.synflow_scores(tiny_mlp(), prunable_layers(tiny_mlp()))


def test_grasp_masks_remove_the_highest_grasp_scores() -> None:
    """GraSP removes the top of -θ ⊙ Hg, i.e. keeps the highest θ ⊙ Hg, as the reference."""
    model = tiny_mlp()
    layers = prunable_layers(model)
    x, y = sample((5,), 3)
    keep = saliency.grasp_scores(model, layers, x, y)
    masks = saliency.at_init_masks("grasp", model, layers, Survivors(total=10), x, y)
    kept = torch.cat([keep[n][masks[n] > 0] for n in keep])
    removed = torch.cat([keep[n][masks[n] == 0] for n in keep])
    assert kept.numel() == 10
    assert float(kept.min()) >= float(removed.max())


# --- masks: exact counts, an untouched model, determinism ----------------------------------

ARCHS = {"lenet-300-100": (784,), "conv-4": (3, 8, 8), "resnet-20": (3, 8, 8)}
RATES = PruneRates(rate=0.2, output_rate=0.1)


def built(arch: str, skip: tuple[str, ...] = ()):
    torch.manual_seed(3)
    shape = ARCHS[arch]
    model = build_model(ModelConfig(arch=arch), shape, 10)
    x, y = sample(shape, 10, n=100)
    return model, prunable_layers(model, skip), x.float(), y


@pytest.mark.parametrize("method", saliency.AT_INIT_METHODS)
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_masks_keep_exactly_the_survivors_and_leave_the_model_alone(arch: str,
                                                                     method: str) -> None:
    model, layers, x, y = built(arch)
    model.train()
    before = copy.deepcopy(model.state_dict())
    dense = dense_masks(dict(model.named_parameters()), layers)
    for scope in ("layer", "global"):
        survivors = schedule_survivors(dense, layers, RATES, scope, 4)
        masks = saliency.at_init_masks(method, model, layers, survivors, x, y, steps=4)
        assert list(masks) == [layer.name for layer in layers]
        counts = {n: int(m.sum()) for n, m in masks.items()}
        if scope == "layer":
            assert counts == dict(survivors.per_layer)
        else:
            assert sum(counts.values()) == survivors.total
        assert all(set(m.unique().tolist()) <= {0.0, 1.0} for m in masks.values())
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_masks_are_deterministic_and_cover_only_the_given_layers() -> None:
    model, layers, x, y = built("conv-4", skip=("features.0",))
    assert "features.0.weight" not in [layer.name for layer in layers]
    survivors = Survivors(total=20_000)
    for method in saliency.AT_INIT_METHODS:
        first = saliency.at_init_masks(method, model, layers, survivors, x, y, steps=5)
        again = saliency.at_init_masks(method, model, layers, survivors, x, y, steps=5)
        assert "features.0.weight" not in first
        assert all(torch.equal(first[k], again[k]) for k in first)


def test_an_unknown_method_is_refused_naming_the_methods() -> None:
    model, layers, x, y = built("lenet-300-100")
    with pytest.raises(ValueError, match="snip, grasp, synflow"):
        saliency.at_init_masks("magnitude", model, layers, Survivors(total=10), x, y)


def test_prune_sample_draws_ten_examples_per_class() -> None:
    x = torch.arange(500, dtype=torch.float32)[:, None].repeat(1, 3)
    data = TensorData("t", 10, (3,), x, torch.arange(500) % 10, x[:1], torch.zeros(1),
                      x[:1], torch.zeros(1))
    sx, sy = saliency.prune_sample(data, torch.Generator().manual_seed(0))
    assert sx.shape == (100, 3) and torch.equal(sy, sx[:, 0].long() % 10)
    assert len(set(sx[:, 0].tolist())) == 100
    again, _ = saliency.prune_sample(data, torch.Generator().manual_seed(0))
    other, _ = saliency.prune_sample(data, torch.Generator().manual_seed(1))
    assert torch.equal(sx, again) and not torch.equal(sx, other)
    small = TensorData("s", 10, (3,), x[:40], torch.arange(40) % 10, x[:1], torch.zeros(1),
                       x[:1], torch.zeros(1))
    assert saliency.prune_sample(small, torch.Generator().manual_seed(0))[0].shape == (40, 3)


def test_prune_sample_of_an_image_set_is_model_ready() -> None:
    images = torch.randint(0, 256, (300, 1, 6, 6), dtype=torch.uint8)
    data = ImageData("img", 3, (1, 4, 4), images, torch.arange(300) % 3, images[:2],
                     torch.zeros(2), images[:2], torch.zeros(2), crop=4, pad=0)
    x, y = saliency.prune_sample(data, torch.Generator().manual_seed(0))
    assert x.shape == (30, 1, 4, 4) and x.dtype == torch.float32 and y.shape == (30,)


# --- SynFlow against a port of the reference -----------------------------------------------


def reference_synflow(model: nn.Module, density: float, epochs: int = 100
                      ) -> dict[str, torch.Tensor]:
    """Synaptic-Flow's SynFlow.score + prune_loop (global scope, exponential schedule,
    kthvalue threshold), for LeNet-300-100 with the reference's masked Linear layers
    (forward uses mask * weight), in float64 and eval mode."""
    state = {k: v.detach().clone().double() for k, v in model.state_dict().items()}
    names = ["fc1", "fc2", "fc3"]
    masks = {n: torch.ones_like(state[f"{n}.weight"]) for n in names}

    def forward(x: torch.Tensor) -> torch.Tensor:
        for i, n in enumerate(names):
            x = F.linear(x, masks[n] * state[f"{n}.weight"], state[f"{n}.bias"])
            x = torch.relu(x) if i < len(names) - 1 else x
        return x

    for epoch in range(epochs):
        # SynFlow.score: linearize (signs, abs_), ones input, sum backward, |grad * p|
        signs = {k: torch.sign(v) for k, v in state.items()}
        for v in state.values():
            v.abs_()
        weights = [state[f"{n}.weight"].requires_grad_(True) for n in names]
        grads = torch.autograd.grad(forward(torch.ones(1, 784, dtype=torch.float64)).sum(),
                                    weights)
        scores = {n: (g * w).detach().abs() for n, g, w in zip(names, grads, weights,
                                                                strict=True)}
        for w in weights:
            w.requires_grad_(False)
        for k, v in state.items():  # nonlinearize
            v.mul_(signs[k])
        # prune_loop: exponential schedule; Pruner._global_mask
        sparse = density ** ((epoch + 1) / epochs)
        global_scores = torch.cat([s.flatten() for s in scores.values()])
        k = int((1.0 - sparse) * global_scores.numel())
        if not k < 1:
            threshold, _ = torch.kthvalue(global_scores, k)
            for n in names:
                masks[n] = torch.where(scores[n] <= threshold, 0.0, 1.0).double()
    return {f"{n}.weight": m for n, m in masks.items()}


@pytest.mark.parametrize("density", [0.2, 0.02])
def test_synflow_agrees_with_the_reference_on_lenet(density: float) -> None:
    model, layers, x, y = built("lenet-300-100")
    total = sum(dict(model.named_parameters())[layer.name].numel() for layer in layers)
    survivors = Survivors(total=total - int((1.0 - density) * total))
    ours = saliency.at_init_masks("synflow", model, layers, survivors, x, y)
    theirs = reference_synflow(model, density)
    same = sum(int((ours[n] == theirs[n]).sum()) for n in ours)
    agreement = same / total
    both = sum(int((ours[n] * theirs[n]).sum()) for n in ours)
    overlap = both / survivors.total  # of the kept weights: stricter when most are removed
    print(f"SynFlow vs reference at {density}: {agreement:.6f} of entries agree, "
          f"{overlap:.6f} of survivors shared")
    assert sum(int(m.sum()) for m in ours.values()) == survivors.total
    assert math.isclose(sum(int(m.sum()) for m in theirs.values()), survivors.total,
                        abs_tol=5)  # the reference's own check
    assert agreement >= 0.99
    assert overlap >= 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masks_on_cuda_match_cpu_counts_and_mostly_the_cpu_masks() -> None:
    for arch in ("resnet-20", "lenet-300-100"):
        model, layers, x, y = built(arch)
        survivors = Survivors(per_layer={layer.name: 50 for layer in layers})
        cpu = {m: saliency.at_init_masks(m, model, layers, survivors, x, y, steps=10)
               for m in saliency.AT_INIT_METHODS}
        gpu_model = copy.deepcopy(model).cuda()
        for method in saliency.AT_INIT_METHODS:
            masks = saliency.at_init_masks(method, gpu_model, layers, survivors, x.cuda(),
                                           y.cuda(), steps=10)
            assert all(m.is_cuda and int(m.sum()) == 50 for m in masks.values())
            same = sum(int((masks[n].cpu() == cpu[method][n]).sum()) for n in masks)
            assert same / sum(m.numel() for m in masks.values()) >= 0.99


def test_scores_cover_only_the_given_layers() -> None:
    """Scores are keyed by the given layers' parameter names, nothing else."""
    model = tiny_mlp()
    layers = [PrunableLayer("2.weight", "output")]
    x, y = sample((5,), 3)
    assert list(saliency.snip_scores(model, layers, x, y)) == ["2.weight"]

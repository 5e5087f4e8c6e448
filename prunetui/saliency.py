"""Pruning at initialisation: SNIP, GraSP and SynFlow scores and masks.

Pure functions of (network at θ0, prunable layers, a few training examples) -> masks, following
the reference implementation of Tanaka et al. (2020), ganguli-lab/Synaptic-Flow
(``Pruners/pruners.py``, ``prune.py``, ``Experiments/singleshot.py``, ``Utils/load.py``).
Its conventions, kept here:

* Which weights: the masks cover the weights of ``layers`` only (``nn.Linear`` / ``nn.Conv2d``
  weights not left dense by ``prune.skip``); biases and BatchNorm are never scored or masked
  (the reference's defaults ``--prune-bias/--prune-batchnorm/--prune-residual False``). GraSP's
  Hessian is the block of those weights, as the reference differentiates only them.
* Mode: every score is computed in eval mode (``prune_loop`` calls ``model.eval()`` unless
  ``--prune-train-mode``, default off), so BatchNorm uses its running statistics and updates
  nothing. All work happens on a deep copy: the caller's model (values, mode, ``.grad``,
  BatchNorm statistics) comes back unchanged.
* Data: ``PRUNE_EXAMPLES_PER_CLASS`` (10, ``--prune-dataset-ratio``) x classes random training
  examples, drawn as training batches are (with the dataset's augmentation, the reference's
  loader being a train-mode one), in batches of 256 (``--prune-batch-size``); the loss is
  ``CrossEntropyLoss`` (mean over a batch) and gradients are summed over the batches.
* SNIP: ``|g ⊙ θ|`` with ``g = dL/dθ`` (the reference's gradient with respect to the mask, which
  at a dense mask is the same number).
* GraSP: logits divided by the temperature 200; first pass ``g = dL/dθ`` without a graph, second
  pass ``Hg = d(gᵀ·dL/dθ)/dθ`` with ``create_graph``. The reference stores ``θ ⊙ Hg`` (its
  comment: "negate to remove top percent") and removes the *lowest* scores, which is GraSP's
  rule of removing the *highest* ``-θ ⊙ Hg``. :func:`grasp_scores` therefore returns ``θ ⊙ Hg``
  (= ``-(-θ ⊙ Hg)``), a keep-score like the others: higher is kept.
* SynFlow: a float64 copy with every floating state tensor (weights, biases, BatchNorm affine
  and running statistics) replaced by its absolute value (``linearize``), eval mode, one input
  of ones ``[1, *input_shape]``, ``R = sum(model(ones))``, score ``|θ ⊙ dR/dθ|``. The
  reference computes in float32 (its ``model.double()`` is commented out); float64 keeps the
  products over many layers from overflowing or underflowing. Iterated for ``steps`` (100, the
  paper's setting) rounds on the exponential schedule: at step k keep the fraction
  ``f^(k/steps)`` of the final fraction ``f``, rescoring each step with the current masks
  applied to the weights (the reference's masked layers), so pruned weights score 0.
* Scope: survivors in total rank all ``layers`` together (the reference's default global mask);
  per-layer survivors rank each layer on its own (its ``local`` mask, with each layer's own
  final fraction).
* Normalisation: the reference divides SNIP scores by their sum and GraSP scores by
  ``|sum| + 1e-10``; a positive factor common to all scores cannot change a ranking, so it is
  left out.

Deviation: the reference thresholds with ``kthvalue`` (``score <= threshold`` is removed, so
ties at the threshold all go and a step can remove a few more than planned). Here each step
removes an exact count with :func:`prunetui.pruning.keep_highest` (ties: lowest index first),
so the last step keeps exactly ``survivors``; intermediate counts are the reference's
``n - int((1 - fraction) * n)``. Masks can differ from the reference's only where scores tie.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from prunetui.nets import PrunableLayer
from prunetui.pruning import Masks, Survivors, dense_masks, keep_highest

if TYPE_CHECKING:
    from prunetui.data.tensors import TensorData

AT_INIT_METHODS = ("snip", "grasp", "synflow")
PRUNE_EXAMPLES_PER_CLASS = 10  # the reference's --prune-dataset-ratio
PRUNE_BATCH = 256  # the reference's --prune-batch-size
GRASP_TEMPERATURE = 200.0
SYNFLOW_STEPS = 100

Scores = dict[str, torch.Tensor]


def prune_sample(data: TensorData, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``PRUNE_EXAMPLES_PER_CLASS * num_classes`` random training examples (at most the whole
    training set), model-ready, augmented as training batches are, drawn from ``generator``."""
    n = min(PRUNE_EXAMPLES_PER_CLASS * data.num_classes, data.train_size)
    # A copy, not a slice of the permutation: a streamed set would read the rest ahead.
    idx = torch.randperm(data.train_size, generator=generator)[:n].clone()
    return data.train_batch(idx, generator)


def _scoring_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval()


def _weights(model: nn.Module, layers: list[PrunableLayer]) -> list[torch.Tensor]:
    params = dict(model.named_parameters())
    weights = [params[layer.name] for layer in layers]
    for w in weights:
        w.requires_grad_(True)
    return weights


def _grad(output: torch.Tensor, weights: list[torch.Tensor],
          create_graph: bool = False) -> list[torch.Tensor]:
    grads = torch.autograd.grad(output, weights, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights, strict=True)]


def _batches(x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(x), PRUNE_BATCH):
        yield x[start:start + PRUNE_BATCH], y[start:start + PRUNE_BATCH]


def _loss_grads(model: nn.Module, weights: list[torch.Tensor], x: torch.Tensor,
                y: torch.Tensor, temperature: float = 1.0) -> list[torch.Tensor]:
    """dL/dθ summed over the batches (no graph kept)."""
    total = [torch.zeros_like(w) for w in weights]
    for xb, yb in _batches(x, y):
        loss = F.cross_entropy(model(xb) / temperature, yb)
        for t, g in zip(total, _grad(loss, weights), strict=True):
            t += g.detach()
    return total


def snip_scores(model: nn.Module, layers: list[PrunableLayer], x: torch.Tensor,
                y: torch.Tensor) -> Scores:
    """SNIP: ``|dL/dθ ⊙ θ|`` for each weight of ``layers`` (eval mode, on a copy)."""
    net = _scoring_copy(model)
    with torch.enable_grad():
        weights = _weights(net, layers)
        grads = _loss_grads(net, weights, x, y)
    return {layer.name: (g * w.detach()).abs()
            for layer, g, w in zip(layers, grads, weights, strict=True)}


def grasp_scores(model: nn.Module, layers: list[PrunableLayer], x: torch.Tensor,
                 y: torch.Tensor, temperature: float = GRASP_TEMPERATURE) -> Scores:
    """GraSP as the reference: ``θ ⊙ Hg`` (keep the highest = remove the highest ``-θ ⊙ Hg``),
    ``g`` and ``H`` of the loss of ``logits / temperature`` (eval mode, on a copy)."""
    net = _scoring_copy(model)
    with torch.enable_grad():
        weights = _weights(net, layers)
        stopped = _loss_grads(net, weights, x, y, temperature)
        hg = [torch.zeros_like(w) for w in weights]
        for xb, yb in _batches(x, y):
            loss = F.cross_entropy(net(xb) / temperature, yb)
            grads = _grad(loss, weights, create_graph=True)
            inner = sum((s * g).sum() for s, g in zip(stopped, grads, strict=True))
            if not isinstance(inner, torch.Tensor) or not inner.requires_grad:
                continue  # the gradient does not depend on the weights: Hg is 0
            for h, d in zip(hg, _grad(inner, weights), strict=True):
                h += d.detach()
    return {layer.name: w.detach() * h for layer, w, h in zip(layers, weights, hg, strict=True)}


def _linearised(model: nn.Module) -> nn.Module:
    """A float64 eval-mode copy with every floating state tensor replaced by its |value|."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return net


def _synflow(net: nn.Module, layers: list[PrunableLayer], input_shape: tuple[int, ...]
             ) -> Scores:
    """``|θ ⊙ dR/dθ|``, ``R = sum(net(ones))``, for an already linearised ``net``."""
    with torch.enable_grad():
        weights = _weights(net, layers)
        ones = torch.ones((1, *input_shape), dtype=torch.float64, device=weights[0].device)
        grads = _grad(net(ones).sum(), weights)
    return {layer.name: (g.detach() * w.detach()).abs()
            for layer, g, w in zip(layers, grads, weights, strict=True)}


def synflow_scores(model: nn.Module, layers: list[PrunableLayer],
                   input_shape: tuple[int, ...] | None = None) -> Scores:
    """SynFlow: ``|θ ⊙ dR/dθ|`` with ``R = sum(model(ones))`` on a linearised float64 copy.

    ``input_shape`` is one input's shape; by default that the model was built for (models
    from :func:`prunetui.nets.build_model` remember it)."""
    if input_shape is None:
        input_shape = _built_input_shape(model)
    return _synflow(_linearised(model), layers, tuple(input_shape))


def _built_input_shape(model: nn.Module) -> tuple[int, ...]:
    rebuild = getattr(model, "prunetui_rebuild", None)  # partial(construct, cfg, shape, classes)
    args = getattr(rebuild, "args", ())
    if len(args) < 2:
        raise ValueError("synflow_scores needs input_shape for a model not made by build_model")
    return tuple(args[1])


def _step_keep(size: int, keep: int, step: int, steps: int) -> int:
    """Weights kept after ``step`` of ``steps`` on the exponential schedule (exact at the end)."""
    if step >= steps or size == 0:
        return keep
    fraction = (keep / size) ** (step / steps)
    return max(keep, size - int((1.0 - fraction) * size))


def _step_survivors(survivors: Survivors, sizes: Mapping[str, int], step: int,
                    steps: int) -> Survivors:
    if survivors.per_layer is not None:
        return Survivors(per_layer={name: _step_keep(size, survivors.per_layer[name], step, steps)
                                    for name, size in sizes.items()})
    assert survivors.total is not None
    return Survivors(total=_step_keep(sum(sizes.values()), survivors.total, step, steps))


def _check_survivors(survivors: Survivors, sizes: Mapping[str, int]) -> None:
    if survivors.per_layer is None:
        if not 0 <= (survivors.total or 0) <= sum(sizes.values()):
            raise ValueError(f"cannot keep {survivors.total} of {sum(sizes.values())} weights")
        return
    for name, size in sizes.items():
        keep = survivors.per_layer.get(name)
        if keep is None or not 0 <= keep <= size:
            raise ValueError(f"{name}: cannot keep {keep} of {size} weights")


def _synflow_masks(model: nn.Module, layers: list[PrunableLayer], survivors: Survivors,
                   masks: Masks, input_shape: tuple[int, ...], steps: int) -> Masks:
    net = _linearised(model)
    weights = _weights(net, layers)
    start = [w.detach().clone() for w in weights]
    sizes = {layer.name: masks[layer.name].numel() for layer in layers}
    for step in range(1, steps + 1):
        with torch.no_grad():
            for layer, w, w0 in zip(layers, weights, start, strict=True):
                w.copy_(w0 * masks[layer.name])
        scores = _synflow(net, layers, input_shape)
        masks = keep_highest(scores, masks, layers,
                             _step_survivors(survivors, sizes, step, steps))
    return masks


def at_init_masks(method: str, model: nn.Module, layers: list[PrunableLayer],
                  survivors: Survivors, x: torch.Tensor, y: torch.Tensor,
                  steps: int = SYNFLOW_STEPS) -> Masks:
    """Masks of ``layers`` keeping exactly ``survivors``, chosen by ``method`` at the weights
    ``model`` holds (θ0). SNIP and GraSP score once on ``x, y`` (on ``model``'s device);
    SynFlow needs no data beyond the input shape ``x.shape[1:]`` and prunes over ``steps``
    rounds. ``model`` is left unchanged."""
    if method not in AT_INIT_METHODS:
        raise ValueError(f"unknown pruning-at-initialisation method {method!r}; "
                         f"the methods are {', '.join(AT_INIT_METHODS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    params = dict(model.named_parameters())
    masks = dense_masks({layer.name: params[layer.name].detach() for layer in layers}, layers)
    _check_survivors(survivors, {name: m.numel() for name, m in masks.items()})
    if not layers:
        return masks
    if method == "snip":
        return keep_highest(snip_scores(model, layers, x, y), masks, layers, survivors)
    if method == "grasp":
        return keep_highest(grasp_scores(model, layers, x, y), masks, layers, survivors)
    return _synflow_masks(model, layers, survivors, masks, tuple(x.shape[1:]), steps)

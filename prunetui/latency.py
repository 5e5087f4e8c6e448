"""Running a network several ways and timing each: the latency half of the size report.

A backend is a callable from a model-ready float tensor to logits:

- ``dense``: the masked network in PyTorch (what training produced);
- ``shrunk``: the shrunk network (shrink.py) in PyTorch, loaded from its export's bytes;
- ``scipy-csr``: every Linear weight a ``scipy.sparse`` CSR matrix, activations kept as
  (features x batch) NumPy arrays (LeNet only);
- ``torch-csr``: the same with ``torch.sparse`` CSR tensors (LeNet only).

Timing: ``torch.inference_mode``, warm-up calls, then the median of many repeats, alone
(:func:`median_latency`) or in turns with the others (:func:`interleaved_latency`).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from prunetui.export import Exported, chain_of, model_from, read_bytes

BACKENDS = ("dense", "shrunk", "scipy-csr", "torch-csr")
Forward = Callable[[torch.Tensor], torch.Tensor]


def linear_chain(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of a ReLU MLP (LeNet-300-100), or None for other networks."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if chain_of(model) and all(type(m) is nn.Linear for m in layers) \
            and not any(c.mfm for c in chain_of(model)):
        return layers
    return None


def scipy_forward(layers: list[nn.Linear], input_index: torch.Tensor | None = None) -> Forward:
    import numpy as np
    import scipy.sparse

    mats = [scipy.sparse.csr_matrix(m.weight.detach().numpy()) for m in layers]
    biases = [m.bias.detach().numpy()[:, None].copy() for m in layers]
    index = None if input_index is None else input_index.numpy()

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1).numpy()
        if index is not None:
            h = h[:, index]
        h = np.ascontiguousarray(h.T)  # features x batch: each row of W streams over the batch
        for i, (w, b) in enumerate(zip(mats, biases, strict=True)):
            h = w @ h
            h += b
            if i < len(mats) - 1:
                np.maximum(h, 0, out=h)
        return torch.from_numpy(np.ascontiguousarray(h.T))

    return forward


def torch_csr_forward(layers: list[nn.Linear]) -> Forward:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": known, measured here
        warnings.simplefilter("ignore", UserWarning)
        mats = [m.weight.detach().to_sparse_csr() for m in layers]
    biases = [m.bias.detach()[:, None] for m in layers]

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1).T.contiguous()
        for i, (w, b) in enumerate(zip(mats, biases, strict=True)):
            h = torch.addmm(b, w, h)
            if i < len(mats) - 1:
                h = torch.relu(h)
        return h.T

    return forward


def forwards(model: nn.Module, shrunk: Exported | None, sparse: bool = True
             ) -> dict[str, Forward]:
    """Every backend that applies to the masked network ``model``, whose shrunk export is
    ``shrunk`` (None: it cannot be shrunk). The dense backend is ``model`` itself; the shrunk
    one is loaded from the export's bytes, as load_pruned gives it. ``sparse=False``: no
    sparse backends (unit runs)."""
    out: dict[str, Forward] = {"dense": model}
    if shrunk is not None:
        out["shrunk"] = model_from(*read_bytes(shrunk.data))
    chain = linear_chain(model) if sparse else None
    if chain is not None:
        out["scipy-csr"] = scipy_forward(chain)
        out["torch-csr"] = torch_csr_forward(chain)
    return out


def median_latency(forward: Forward, x: torch.Tensor, repeats: int = 50, warmup: int = 5,
                   should_stop: Callable[[], bool] | None = None,
                   budget_s: float = 2.0) -> float:
    """Median seconds per call of ``forward(x)`` alone: :func:`interleaved_latency` with one
    forward (a full-size LightCNN at batch 256 takes seconds per call, hence the budget)."""
    return interleaved_latency({"alone": forward}, x, repeats, warmup, should_stop,
                               budget_s)["alone"]


def interleaved_latency(forwards: dict[str, Forward], x: torch.Tensor, repeats: int = 50,
                        warmup: int = 3, should_stop: Callable[[], bool] | None = None,
                        budget_s: float = 4.0) -> dict[str, float]:
    """Median seconds per call of each forward on ``x``, timed in turns (one call of each per
    turn: a machine whose speed drifts slows them alike): ``warmup`` turns, then up to
    ``repeats`` timed ones, fewer (at least 3) once ``budget_s`` is spent."""
    times: dict[str, list[float]] = {name: [] for name in forwards}
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(warmup):
            for forward in forwards.values():
                forward(x)
            if time.perf_counter() - start > budget_s / 4:
                break
        spent = 0.0
        for turn in range(repeats):
            if (should_stop is not None and should_stop()) or (turn >= 3 and spent > budget_s):
                break
            for name, forward in forwards.items():
                start = time.perf_counter()
                forward(x)
                times[name].append(time.perf_counter() - start)
                spent += times[name][-1]
    return {name: statistics.median(t) if t else float("nan") for name, t in times.items()}


def synchronized(forward: Forward) -> Forward:
    """``forward`` waiting for the GPU to finish, so that a timer measures the work."""
    def run(x: torch.Tensor) -> torch.Tensor:
        out = forward(x)
        torch.cuda.synchronize()
        return out

    return run

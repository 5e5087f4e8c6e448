"""What a pruned network costs: parameters, FLOPs, file sizes and measured inference latency.

FLOPs follow ShrinkBench (Blalock et al., 2020): multiply-adds of the Linear and Conv2d weights
(``in * out`` for a Linear layer, ``in * out * kh * kw * output positions`` for a convolution);
a layer's nonzero FLOPs are its dense FLOPs times its fraction of nonzero weights. Theoretical
speedup is dense / nonzero FLOPs, compression ratio total / nonzero parameters.

Latency backends (``BACKENDS``), each a callable from a model-ready float tensor to logits:

- ``dense``: the masked network in PyTorch (what training produced);
- ``shrunk``: the shrunk network (shrink.py) in PyTorch;
- ``scipy-csr``: every Linear weight a ``scipy.sparse`` CSR matrix, activations kept as
  (features x batch) NumPy arrays (LeNet only);
- ``torch-csr``: the same with ``torch.sparse`` CSR tensors (LeNet only).

LightCNN-9 has no sparse backend: CPU PyTorch has no sparse convolution, so its sparse file is
loaded into dense convolutions. Timing: ``torch.inference_mode``, warm-up calls, then the
median of many repeats.

A unit-pruned run (``prune.structure = "unit"``) is measured as what it buys: the shrunk
network (whole units and channels removed, a smaller dense network) against the dense one, in
parameters and FLOPs (:class:`ShrunkCounts`), file size (``dense`` and ``shrunk`` exports) and
latency (the ``dense`` and ``shrunk`` backends only, ``UNIT_BACKENDS``).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui import store
from prunetui.export import (
    FORMATS,
    Choice,
    Exported,
    ExportError,
    Rows,
    Source,
    build_export,
    chain_of,
    choose,
    finished_segments,
    input_normalization,
    load_source,
    model_from,
    read_bytes,
    run_config,
)
from prunetui.segments import DENSE

BACKENDS = ("dense", "shrunk", "scipy-csr", "torch-csr")
# What the report and the app time and show (scipy-csr won the benchmark); torch-csr stays in
# backends() for benchmarks/export_size_speed.py.
REPORTED_BACKENDS = ("dense", "shrunk", "scipy-csr")
# What a unit-pruned run is measured with: its export formats and latency backends.
UNIT_FORMATS = ("dense", "shrunk")
UNIT_BACKENDS = ("dense", "shrunk")
Forward = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# Counts


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(total, nonzero) over every parameter, biases included."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(int((p != 0).sum()) for p in params)


def flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(dense, nonzero) multiply-adds of one forward pass on one input, ShrinkBench-style."""
    dense, nonzero = [0], [0.0]

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        weight = module.weight
        per_output = weight[0].numel()  # in (Linear) or in * kh * kw (Conv2d)
        positions = output.shape[2] * output.shape[3] if output.dim() == 4 else 1
        # MFM layers return half their filters' channels; count every filter.
        layer = weight.shape[0] * per_output * positions
        dense[0] += layer
        nonzero[0] += layer * float((weight != 0).sum()) / weight.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return dense[0], round(nonzero[0])


def exports(src: Source, model: nn.Module | None = None,
            formats: tuple[str, ...] = FORMATS) -> dict[str, Exported | None]:
    """Each format's export of ``src`` (None where it cannot be made, e.g. nothing to shrink
    into). ``model``: ``src.build()``, when the caller has built it already."""
    if model is None:
        model = src.build()
    normalization = input_normalization(src)
    files: dict[str, Exported | None] = {}
    for fmt in formats:
        try:
            files[fmt] = build_export(src, fmt, normalization, model=model)
        except ExportError:  # an unshrinkable network: the report shows "-"
            files[fmt] = None
    return files


def sizes_of(files: dict[str, Exported | None]) -> dict[str, int | None]:
    return {fmt: None if f is None else len(f.data) for fmt, f in files.items()}


def file_sizes(src: Source) -> dict[str, int | None]:
    """Bytes of each export format (None where it cannot be made, e.g. nothing to shrink into)."""
    return sizes_of(exports(src))


# ---------------------------------------------------------------------------------------------
# Backends


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


def backends(src: Source) -> dict[str, Forward]:
    """Every backend that applies to ``src``'s network."""
    model = src.build()
    return forwards(model, exports(src, model, ("shrunk",))["shrunk"])


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


# ---------------------------------------------------------------------------------------------
# Timing


def median_latency(forward: Forward, x: torch.Tensor, repeats: int = 50, warmup: int = 5,
                   should_stop: Callable[[], bool] | None = None,
                   budget_s: float = 2.0) -> float:
    """Median seconds per call of ``forward(x)``: ``warmup`` calls, then up to ``repeats``
    timed ones, fewer (at least 3) once ``budget_s`` is spent (a full-size LightCNN at batch
    256 takes seconds per call)."""
    times: list[float] = []
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(warmup):
            forward(x)
            if time.perf_counter() - start > budget_s / 4:
                break
        spent = 0.0
        for _ in range(repeats):
            if should_stop is not None and should_stop():
                break
            if len(times) >= 3 and spent > budget_s:
                break
            start = time.perf_counter()
            forward(x)
            times.append(time.perf_counter() - start)
            spent += times[-1]
    return statistics.median(times) if times else float("nan")


def interleaved_latency(forwards: dict[str, Forward], x: torch.Tensor, repeats: int = 50,
                        warmup: int = 3, should_stop: Callable[[], bool] | None = None,
                        budget_s: float = 4.0) -> dict[str, float]:
    """Median seconds per call of each forward on ``x``, timed in turns (one call of each per
    turn: a machine whose speed drifts slows them alike), as :func:`median_latency`."""
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


@dataclass(frozen=True)
class ShrunkCounts:
    """A unit-pruned round's dense network against its shrunk one (one input, FLOPs as
    :func:`flops` counts them: multiply-adds of every Linear and Conv2d)."""

    dense_params: int
    params: int  # of the shrunk network, biases and norms included
    dense_flops: int
    flops: int  # of the shrunk network


@dataclass
class Footprint:
    """The size-and-speed row of one round."""

    round: int
    scheme: str
    remaining: float
    test_acc: float  # at early stop
    compression: float  # unit runs: dense / shrunk parameters
    speedup: float  # unit runs: dense / shrunk FLOPs
    sizes: dict[str, int | None]
    # seconds per call, keyed (device, backend, batch)
    latency: dict[tuple[str, str, int], float] = field(default_factory=dict)
    structure: str = "weight"  # the run's prune.structure
    # unit runs: the shrunk network against the dense one (None: weight runs, or no shrunk
    # network could be made)
    shrunk: ShrunkCounts | None = None


def measure(src: Source, batches: tuple[int, ...] = (1, 256), repeats: int = 30,
            should_stop: Callable[[], bool] | None = None,
            devices: tuple[str, ...] | None = None) -> Footprint:
    model = src.build()  # counted, exported, then timed as the dense backend (moved last)
    unit = src.cfg.prune.structure == "unit"
    total, nonzero = parameter_counts(model)
    dense_flops, sparse_flops = flops(model, src.input_shape())
    files = exports(src, model, UNIT_FORMATS if unit else FORMATS)
    row = Footprint(round=src.round, scheme=src.scheme, remaining=src.remaining,
                    test_acc=src.early_stop_test_acc, compression=total / max(nonzero, 1),
                    speedup=dense_flops / max(sparse_flops, 1), sizes=sizes_of(files),
                    structure=src.cfg.prune.structure)
    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    timed_forwards = forwards(model, files["shrunk"], sparse=not unit)
    if unit:
        small = timed_forwards.get("shrunk")
        if isinstance(small, nn.Module):  # counted on the CPU, before any timing
            row.shrunk = ShrunkCounts(total, parameter_counts(small)[0], dense_flops,
                                      flops(small, src.input_shape())[0])
            row.compression = total / max(row.shrunk.params, 1)
            row.speedup = dense_flops / max(row.shrunk.flops, 1)
        time_in_turns(row, timed_forwards, src.input_shape(), devices, batches, repeats,
                      should_stop)
        return row
    for device in devices:
        timed_here = REPORTED_BACKENDS if device == "cpu" else ("dense", "shrunk")
        for name, forward in timed_forwards.items():
            if name not in timed_here:
                continue
            fn = forward.to(device) if isinstance(forward, nn.Module) else forward
            for batch in batches:
                if should_stop is not None and should_stop():
                    return row
                x = torch.randn(batch, *src.input_shape(), generator=torch.Generator()
                                .manual_seed(0)).to(device)
                timed = fn if device == "cpu" else _synchronized(fn)
                row.latency[(device, name, batch)] = median_latency(timed, x, repeats,
                                                                    should_stop=should_stop)
    return row


def time_in_turns(row: Footprint, timed: dict[str, Forward], input_shape: tuple[int, ...],
                  devices: tuple[str, ...], batches: tuple[int, ...], repeats: int,
                  should_stop: Callable[[], bool] | None) -> None:
    """A unit run's latency: the dense and the shrunk network timed in turns
    (:func:`interleaved_latency`), on each device at each batch size, into ``row.latency``."""
    for device in devices:
        fns = {name: forward.to(device) if isinstance(forward, nn.Module) else forward
               for name, forward in timed.items() if name in UNIT_BACKENDS}
        if device != "cpu":
            fns = {name: _synchronized(fn) for name, fn in fns.items()}
        for batch in batches:
            if should_stop is not None and should_stop():
                return
            x = torch.randn(batch, *input_shape, generator=torch.Generator()
                            .manual_seed(0)).to(device)
            found = interleaved_latency(fns, x, repeats, should_stop=should_stop)
            row.latency.update({(device, name, batch): seconds
                                for name, seconds in found.items()})


def _synchronized(forward: Forward) -> Forward:
    def run(x: torch.Tensor) -> torch.Tensor:
        out = forward(x)
        torch.cuda.synchronize()
        return out

    return run


def default_scheme(run: store.RunDir, replicate: int = 0, *,
                   metrics: Rows | None = None) -> str:
    """The scheme of the default export choice (the first pruned scheme if that is round 0).
    ``metrics``: the run's metric rows, when the caller has read them."""
    if metrics is None:
        metrics = run.metrics()
    choice = choose(run, replicate=replicate, metrics=metrics)
    if choice.scheme != DENSE:
        return choice.scheme
    return next((s.scheme for s in finished_segments(run, replicate, metrics=metrics)
                 if s.round > 0), DENSE)


def run_footprints(run: store.RunDir, scheme: str | None = None, replicate: int = 0,
                   repeats: int = 30, on_progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[str, list[Footprint]]:
    """(scheme, one Footprint per finished round of it, round 0 first) for ``run``, whose
    config and metrics are read once."""
    metrics = run.metrics()
    scheme = scheme or default_scheme(run, replicate, metrics=metrics)
    segs = [s for s in finished_segments(run, replicate, metrics=metrics)
            if s.round == 0 or s.scheme == scheme]
    if not any(s.round > 0 for s in segs) and scheme != DENSE:
        raise ExportError(f"{run.path} has no finished round of scheme {scheme!r}.")
    cfg = run_config(run) if segs else None
    rows = []
    for i, seg in enumerate(sorted(segs, key=lambda s: s.round)):
        if should_stop is not None and should_stop():
            break
        if on_progress is not None:
            on_progress(i, len(segs))
        src = load_source(run, Choice(replicate, seg.round, seg.scheme, ""), cfg=cfg,
                          metrics=metrics)
        rows.append(measure(src, repeats=repeats, should_stop=should_stop))
    if on_progress is not None:
        on_progress(len(rows), len(segs))
    return scheme, rows


__all__ = ["BACKENDS", "REPORTED_BACKENDS", "UNIT_BACKENDS", "UNIT_FORMATS", "Footprint",
           "ShrunkCounts", "backends", "default_scheme", "exports", "file_sizes", "flops",
           "forwards", "interleaved_latency", "measure", "median_latency", "parameter_counts",
           "run_footprints", "sizes_of"]

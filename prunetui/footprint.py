"""What a pruned network costs: parameters, FLOPs, file sizes and measured inference latency.

FLOPs follow ShrinkBench (Blalock et al., 2020): multiply-adds of the Linear and Conv2d weights
(``in * out`` for a Linear layer, ``in * out * kh * kw * output positions`` for a convolution);
a layer's nonzero FLOPs are its dense FLOPs times its fraction of nonzero weights. Theoretical
speedup is dense / nonzero FLOPs, compression ratio total / nonzero parameters.

Latency is measured with :mod:`prunetui.latency`'s backends (the masked network, the shrunk one,
and for LeNet the CSR matrices of scipy and torch). LightCNN-9 has no sparse backend: CPU
PyTorch has no sparse convolution, so its sparse file is loaded into dense convolutions.

A unit-pruned run (``prune.structure = "unit"``) is measured as what it buys: the shrunk
network (whole units and channels removed, a smaller dense network) against the dense one, in
parameters and FLOPs (:class:`ShrunkCounts`), file size (``dense`` and ``shrunk`` exports) and
latency (the ``dense`` and ``shrunk`` backends only, ``UNIT_BACKENDS``).
"""

from __future__ import annotations

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
    choose,
    finished_segments,
    input_normalization,
    load_source,
    run_config,
)
from prunetui.latency import (
    Forward,
    forwards,
    interleaved_latency,
    median_latency,
    synchronized,
)
from prunetui.segments import DENSE

# What the report and the app time and show (scipy-csr won the benchmark); torch-csr stays in
# backends() for benchmarks/export_size_speed.py.
REPORTED_BACKENDS = ("dense", "shrunk", "scipy-csr")
# What a unit-pruned run is measured with: its export formats and latency backends.
UNIT_FORMATS = ("dense", "shrunk")
UNIT_BACKENDS = ("dense", "shrunk")


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


def backends(src: Source) -> dict[str, Forward]:
    """Every backend that applies to ``src``'s network."""
    model = src.build()
    return forwards(model, exports(src, model, ("shrunk",))["shrunk"])


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
                timed = fn if device == "cpu" else synchronized(fn)
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
            fns = {name: synchronized(fn) for name, fn in fns.items()}
        for batch in batches:
            if should_stop is not None and should_stop():
                return
            x = torch.randn(batch, *input_shape, generator=torch.Generator()
                            .manual_seed(0)).to(device)
            found = interleaved_latency(fns, x, repeats, should_stop=should_stop)
            row.latency.update({(device, name, batch): seconds
                                for name, seconds in found.items()})


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


__all__ = ["REPORTED_BACKENDS", "UNIT_BACKENDS", "UNIT_FORMATS", "Footprint",
           "ShrunkCounts", "backends", "default_scheme", "exports", "file_sizes", "flops",
           "measure", "parameter_counts", "run_footprints", "sizes_of"]

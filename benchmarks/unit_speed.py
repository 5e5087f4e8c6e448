"""What structured (unit) pruning buys on the CPU: the shrunk network against the dense one.

Each network is randomly initialised (no training: latency depends on the shapes, not the
values), about half of its units are removed in one round by the L1 norm of their weights
(``prune.structure = "unit"``, layer scope, rate 0.5; the classifier keeps its classes) with
prunetui.structure's own functions, and the network is shrunk (whole neurons and channels cut
out, a smaller dense network):

- LeNet-300-100 (784 inputs): half of the hidden units;
- conv-4 (3x32x32), torchvision:resnet18 (3x64x64, residual convolutions coupled), LightCNN-9
  (1x128x128, width 0.5; max-feature-map channels): about half of the channels.

Prints, per network: units left, parameters and FLOPs (multiply-adds of every Linear and
Conv2d, prunetui.footprint.flops) of the shrunk network against the dense one, the file size
ratio (the real ``prunetui export`` files for LeNet, ``torch.save`` state dicts otherwise),
and the largest difference between the shrunk network's logits and the masked network's
(target: 1e-5, eval mode, a random batch). Then the CPU latency at batch 1, 32 and 256 of the
shrunk network and of the dense network (the masked one: same shapes as the unpruned network),
both timed the same way in this process with torch's default settings, in interleaved trials
(each trial times every network's dense and shrunk forward in turn, alternating which goes
first; medians over trials), and the measured speedup next to the FLOP ratio.

    python benchmarks/unit_speed.py [--quick] [--trials 7]

``--quick``: 3 trials, batches 1 and 256 only, LightCNN-9 at width 0.25: to check that the
benchmark works (about a minute and a half on 2 busy cores).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from dataclasses import dataclass

import torch
from results_file import recorded
from torch import nn

from prunetui import config, store
from prunetui.export import Source, build_export
from prunetui.footprint import flops, parameter_counts
from prunetui.nets import build_model, prunable_layers
from prunetui.pruning import PruneRates
from prunetui.sizecolumns import count
from prunetui.structure.graph import unit_groups
from prunetui.structure.masks import param_masks
from prunetui.structure.shrink import masked_copy, shrink
from prunetui.structure.units import dense_unit_masks, prune_units, unit_scores

BATCHES = (1, 32, 256)
RATES = PruneRates(rate=0.5, first_rate=0.5, output_rate=0.0)
TIMING_S = 0.15  # aim per timing: enough calls of a fast network to last about this long


@dataclass
class Case:
    name: str
    input_shape: tuple[int, ...]
    masked: nn.Module
    shrunk: nn.Module
    units: tuple[int, int]  # (alive, all) over the layers that may lose units
    params: tuple[int, int]  # (dense, shrunk)
    flops: tuple[int, int]
    files: tuple[int, int]  # bytes: (dense, shrunk)
    file_kind: str
    max_diff: float


def state_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def lenet_files(model: nn.Module, masks: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Bytes of the real dense and shrunk export files of the unit-pruned LeNet."""
    cfg = config.apply_overrides(config.Config(), [("prune.structure", "unit")])
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    src = Source(run=store.RunDir("benchmark"), cfg=cfg, replicate=0, round=1, scheme="keep",
                 weights=weights, masks={k: m.bool() for k, m in masks.items()},
                 remaining=float("nan"), test_acc=float("nan"),
                 early_stop_test_acc=float("nan"))
    return tuple(len(build_export(src, fmt, model=src.build()).data)  # type: ignore[return-value]
                 for fmt in ("dense", "shrunk"))


def make_case(name: str, arch: str, shape: tuple[int, ...], width: float = 1.0) -> Case:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(config.ModelConfig(arch=arch, width=width), shape, 10).eval()
    groups, layers = unit_groups(model, torch.zeros(2, *shape)), prunable_layers(model)
    scores = unit_scores(model, layers, "l1", groups)
    masks = prune_units(scores, dense_unit_masks(groups), layers, RATES, "layer", groups)
    masked = masked_copy(model, masks, groups).eval()
    shrunk = shrink(masked, masks, groups).eval()
    x = torch.randn(8, *shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        diff = (shrunk(x) - masked(x)).abs().max().item()
    hidden = [layer.name for layer in layers if layer.role != "output"]
    alive = sum(int(masks[n].sum()) for n in hidden if n in masks)
    total = sum(masks[n].numel() for n in hidden if n in masks)
    if arch == "lenet-300-100":
        files, kind = lenet_files(masked, param_masks(masked, masks, groups)), "export files"
    else:
        files, kind = (state_bytes(model), state_bytes(shrunk)), "state dicts"
    return Case(name, shape, masked, shrunk, (alive, total),
                (parameter_counts(model)[0], parameter_counts(shrunk)[0]),
                (flops(model, shape)[0], flops(shrunk, shape)[0]), files, kind, diff)


def time_calls(forward: nn.Module, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        forward(x)
    return (time.perf_counter() - start) / calls


def measure(cases: list[Case], trials: int, batches: tuple[int, ...]
            ) -> dict[tuple[str, str, int], float]:
    """Median seconds per call, keyed (network, "dense" or "shrunk", batch)."""
    inputs = {(c.name, b): torch.randn(b, *c.input_shape,
                                       generator=torch.Generator().manual_seed(2))
              for c in cases for b in batches}
    calls: dict[tuple[str, int], int] = {}
    samples: dict[tuple[str, str, int], list[float]] = {}
    with torch.inference_mode():
        for c in cases:  # warm-up, and how many calls make one timing
            for b in batches:
                x = inputs[(c.name, b)]
                time_calls(c.shrunk, x, 1)
                once = time_calls(c.masked, x, 1)
                calls[(c.name, b)] = max(1, min(50, round(TIMING_S / max(once, 1e-6))))
        for trial in range(trials):
            for c in cases:
                pair = [("dense", c.masked), ("shrunk", c.shrunk)]
                for b in batches:
                    for which, net in pair if trial % 2 == 0 else pair[::-1]:
                        t = time_calls(net, inputs[(c.name, b)], calls[(c.name, b)])
                        samples.setdefault((c.name, which, b), []).append(t)
    return {k: statistics.median(v) for k, v in samples.items()}


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:9.3f}" if seconds < 0.1 else f"{1e3 * seconds:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 trials, batches 1 and 256, LightCNN-9 at width 0.25")
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    trials = 3 if args.quick else args.trials
    light_width = 0.25 if args.quick else 0.5
    batches = (1, 256) if args.quick else BATCHES
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (default), "
          f"{'quick' if args.quick else 'full'} run: {trials} interleaved trials, batches "
          f"{', '.join(map(str, batches))}; rate 0.5 by L1 norm, one round, random init")
    start = time.perf_counter()
    cases = [make_case("lenet-300-100", "lenet-300-100", (784,)),
             make_case("conv-4", "conv-4", (3, 32, 32)),
             make_case("resnet18", "torchvision:resnet18", (3, 64, 64)),
             make_case(f"lightcnn-9 w{light_width}", "lightcnn-9", (1, 128, 128), light_width)]
    print(f"pruned and shrunk in {time.perf_counter() - start:.1f} s\n")

    print(f"{'network':<18} {'units left':>15} {'params':>14} {'FLOPs':>14} {'file':>7} "
          f"{'max |diff|':>11}")
    for c in cases:
        units = f"{c.units[0]}/{c.units[1]} ({100 * c.units[0] / c.units[1]:.0f}%)"
        params = f"{count(c.params[1])} {100 * c.params[1] / c.params[0]:5.1f}%"
        flop = f"{count(c.flops[1])} {100 * c.flops[1] / c.flops[0]:5.1f}%"
        print(f"{c.name:<18} {units:>15} {params:>14} {flop:>14} "
              f"{100 * c.files[1] / c.files[0]:6.1f}% {c.max_diff:11.2e}")
    print("(params, FLOPs: the shrunk network's, and as % of the dense network's; file: "
          "shrunk / dense bytes; LeNet: export files, the others: torch.save state dicts)")
    worst = max(c.max_diff for c in cases)
    print(f"shrunk logits equal masked logits within 1e-5: "
          f"{'yes' if worst <= 1e-5 else 'NO'} (largest difference {worst:.2e})")
    for c in cases:
        print(f"  {c.name}: dense {c.params[0]:,} parameters, {c.flops[0]:,} FLOPs, "
              f"{c.files[0] / 1024:,.1f} KiB; shrunk {c.params[1]:,}, {c.flops[1]:,}, "
              f"{c.files[1] / 1024:,.1f} KiB")

    start = time.perf_counter()
    latency = measure(cases, trials, batches)
    print(f"\nCPU latency (ms per call, median of {trials} interleaved trials; timed in "
          f"{time.perf_counter() - start:.0f} s):")
    print(f"{'network':<18} {'batch':>5} {'dense':>9} {'shrunk':>9} {'speedup':>8} "
          f"{'FLOP ratio':>10}")
    for c in cases:
        for b in batches:
            dense, small = latency[(c.name, "dense", b)], latency[(c.name, "shrunk", b)]
            print(f"{c.name:<18} {b:>5} {ms(dense)} {ms(small)} {dense / small:7.2f}x "
                  f"{c.flops[0] / c.flops[1]:9.2f}x")
    lenet = cases[0]
    b256 = latency[(lenet.name, "dense", 256)] / latency[(lenet.name, "shrunk", 256)]
    print(f"\nLeNet-300-100, half of the hidden units removed: shrunk file "
          f"{100 * lenet.files[1] / lenet.files[0]:.1f}% of the dense one (target <= 60%), "
          f"{b256:.2f}x faster at batch 256 (target >= 1.6x)")


if __name__ == "__main__":
    with recorded("unit_speed"):
        main()

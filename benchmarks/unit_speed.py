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
and the measured speedup next to the FLOP ratio.

Every latency is measured in its own fresh Python process (``python -c``, this file's
``CHILD``), started with the OpenMP/MKL variables (OMP_NUM_THREADS, OMP_WAIT_POLICY,
GOMP_SPINCOUNT, ...) removed from its environment, so that neither side inherits this script's
settings or the other side's:

- dense (the baseline): the masked network pickled whole (``torch.save(module)``); the
  process imports torch first, with torch's default settings, and then loads it. Unpickling
  imports the network's classes from prunetui after torch, when OpenMP has already read its
  settings: the spin count that ``import prunetui`` sets is not in force there (the process
  checks that the variable was unset when torch loaded).
- shrunk (the product): the real ``prunetui export --format shrunk`` file, loaded the way a
  user's script does: ``import prunetui`` (which sets its OpenMP spin count before torch
  loads, unless the user chose one) and ``prunetui.load_pruned(FILE)``; the file's network
  rebuilt from the file alone, checked here to give the same logits as the shrunk network.

Each process times every batch in turn: eval mode, ``torch.inference_mode()``, a random batch,
warm-up calls (the first call, then more until ``WARMUP_S``), then enough calls to last about
``TIMING_S``; it prints seconds per call. Process start, imports and loading are not timed.
Trials interleave: each trial runs, network by network, one dense and one shrunk process,
alternating which goes first (between trials and between consecutive networks), so that the
machine's drift falls on both sides alike. Reported: the median time per call of each side
over the trials and the speedup as the median of the per-trial ratios dense / shrunk (with
their range). On a busy machine the baseline's OpenMP threads (torch's default spin count)
lose far more to other processes than the product's do: run it on an idle machine (before
each trial the cores' worth kept busy by other processes is sampled and printed; a warning
follows the table when it reached 0.6).

    python benchmarks/unit_speed.py [--quick] [--trials 7]

``--quick``: 3 trials, batches 1 and 256 only, LightCNN-9 at width 0.25: to check that the
benchmark works (about six minutes on 2 cores shared with another benchmark).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from results_file import recorded
from torch import nn

from prunetui import config, store
from prunetui.export import Source, build_export, load_pruned
from prunetui.footprint import flops, parameter_counts
from prunetui.nets import build_model, prunable_layers
from prunetui.pruning import PruneRates
from prunetui.sizecolumns import count
from prunetui.structure.graph import unit_groups
from prunetui.structure.masks import param_masks
from prunetui.structure.shrink import masked_copy, shrink
from prunetui.structure.units import dense_unit_masks, prune_units, unit_scores
from prunetui.threads import BUSY_CORE_THRESHOLD, sample_cores

REPO = Path(__file__).resolve().parents[1]
BATCHES = (1, 32, 256)
RATES = PruneRates(rate=0.5, output_rate=0.0)
TIMING_S = 0.15  # aim per timing: enough calls of a fast network to last about this long
WARMUP_S = 0.1  # untimed calls first, in each fresh process (at least one)
BUSY_SAMPLE_S = 0.5  # before each trial: how busy other processes keep the cores
CLEAN_ENV_DROP = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OMP_PROC_BIND",
                  "KMP_BLOCKTIME", "GOMP_SPINCOUNT")

# One timing process: argv = side, file, input shape, batches, WARMUP_S, TIMING_S. Prints one
# JSON line: seconds per call for each batch, torch's thread count, GOMP_SPINCOUNT when torch
# loaded.
CHILD = """\
import json, os, sys, time
side, path, shape, batches, warmup_s, timing_s = sys.argv[1:7]
if side == "shrunk":  # the product, as a user's script: import prunetui, load the export
    import prunetui
    import torch
    spin = os.environ.get("GOMP_SPINCOUNT")  # as torch loaded
    net = prunetui.load_pruned(path)
else:  # the baseline: torch first, with its defaults; the network's classes load after it
    if "prunetui" in sys.modules or {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ):
        sys.exit("the baseline process is not clean")
    import torch
    spin = os.environ.get("GOMP_SPINCOUNT")  # as torch loaded
    net = torch.load(path, weights_only=False)
net.eval()
shape = [int(n) for n in shape.split(",")]
seconds = []
with torch.inference_mode():
    for b in batches.split(","):
        x = torch.randn(int(b), *shape, generator=torch.Generator().manual_seed(2))
        start = time.perf_counter()
        net(x)  # warm-up: the first call (one-time costs), then more until warmup_s
        first = once = time.perf_counter() - start
        n = 0
        while time.perf_counter() - start < float(warmup_s):
            net(x)
            n += 1
        if n:
            once = (time.perf_counter() - start - first) / n
        calls = max(1, round(float(timing_s) / max(once, 1e-7)))
        start = time.perf_counter()
        for _ in range(calls):
            net(x)
        seconds.append((time.perf_counter() - start) / calls)
print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                  "spin": spin}))
"""


@dataclass
class Case:
    name: str
    input_shape: tuple[int, ...]
    masked: nn.Module
    shrunk: nn.Module
    shrunk_export: bytes  # the real ``prunetui export --format shrunk`` file
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


def export_files(masked: nn.Module, masks: dict[str, torch.Tensor], arch: str, width: float,
                 data: list[tuple[str, object]], formats: tuple[str, ...]) -> dict[str, bytes]:
    """The real export files of the unit-pruned network (``data``: a dataset whose input shape
    is the network's; nothing is read from it)."""
    cfg = config.apply_overrides(config.Config(), [("prune.structure", "unit"),
                                                   ("model.arch", arch), ("model.width", width),
                                                   *data])
    weights = {k: v.detach().clone() for k, v in masked.state_dict().items()}
    src = Source(run=store.RunDir("benchmark"), cfg=cfg, replicate=0, round=1, scheme="keep",
                 weights=weights, masks={k: m.bool() for k, m in masks.items()},
                 remaining=float("nan"), test_acc=float("nan"),
                 early_stop_test_acc=float("nan"))
    built = src.build()
    return {fmt: build_export(src, fmt, model=built).data for fmt in formats}


def make_case(name: str, arch: str, shape: tuple[int, ...], width: float = 1.0,
              data: list[tuple[str, object]] | None = None) -> Case:
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
    lenet = arch == "lenet-300-100"
    exported = export_files(masked, param_masks(masked, masks, groups), arch, width, data or [],
                            ("dense", "shrunk") if lenet else ("shrunk",))
    if lenet:
        files = (len(exported["dense"]), len(exported["shrunk"]))
        kind = "export files"
    else:
        files, kind = (state_bytes(model), state_bytes(shrunk)), "state dicts"
    return Case(name, shape, masked, shrunk, exported["shrunk"], (alive, total),
                (parameter_counts(model)[0], parameter_counts(shrunk)[0]),
                (flops(model, shape)[0], flops(shrunk, shape)[0]), files, kind, diff)


def save_files(cases: list[Case], folder: Path) -> tuple[dict[tuple[str, str], Path], float]:
    """Each network's dense (pickled) and shrunk (export) file, and the largest difference
    between the logits of the loaded export and of the shrunk network."""
    paths: dict[tuple[str, str], Path] = {}
    worst = 0.0
    for i, c in enumerate(cases):
        paths[(c.name, "dense")] = folder / f"{i}-dense.pickle"
        torch.save(c.masked, paths[(c.name, "dense")])
        paths[(c.name, "shrunk")] = folder / f"{i}-shrunk.pt"
        paths[(c.name, "shrunk")].write_bytes(c.shrunk_export)
        x = torch.randn(8, *c.input_shape, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            loaded = load_pruned(paths[(c.name, "shrunk")])
            worst = max(worst, (loaded(x) - c.shrunk(x)).abs().max().item())
    return paths, worst


def clean_env() -> dict[str, str]:
    """This environment without the OpenMP/MKL settings (``import prunetui`` set one here)."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_DROP}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def time_in_child(side: str, path: Path, shape: tuple[int, ...],
                  batches: tuple[int, ...]) -> dict:
    """Seconds per call at each batch, timed in a fresh process (``CHILD``)."""
    command = [sys.executable, "-c", CHILD, side, str(path), ",".join(map(str, shape)),
               ",".join(map(str, batches)), str(WARMUP_S), str(TIMING_S)]
    done = subprocess.run(command, env=clean_env(), capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        sys.exit(f"timing {side} {path} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(cases: list[Case], paths: dict[tuple[str, str], Path], trials: int,
            batches: tuple[int, ...]
            ) -> tuple[dict[tuple[str, str, int], list[float]], dict, list[float]]:
    """Per-trial seconds per call, keyed (network, "dense" or "shrunk", batch); what each
    side's processes reported of their settings (threads, GOMP_SPINCOUNT); per trial, the
    cores' worth that other processes kept busy just before it (nan: unknown)."""
    samples: dict[tuple[str, str, int], list[float]] = {}
    settings: dict[str, set[tuple[int, str | None]]] = {"dense": set(), "shrunk": set()}
    busy: list[float] = []
    for trial in range(trials):
        other = sample_cores(BUSY_SAMPLE_S).busy_other
        busy.append(float("nan") if other is None else other)
        ratios = []
        for i, c in enumerate(cases):
            order = ("dense", "shrunk") if (trial + i) % 2 == 0 else ("shrunk", "dense")
            for side in order:
                got = time_in_child(side, paths[(c.name, side)], c.input_shape, batches)
                settings[side].add((got["threads"], got["spin"]))
                for b, seconds in zip(batches, got["seconds"], strict=True):
                    samples.setdefault((c.name, side, b), []).append(seconds)
            ratios.append(f"{c.name} " + " ".join(
                f"{samples[(c.name, 'dense', b)][-1] / samples[(c.name, 'shrunk', b)][-1]:.2f}"
                for b in batches))
        print(f"trial {trial + 1} (other processes: {busy[-1]:.1f} cores busy): speedup at "
              f"batch {', '.join(map(str, batches))}: " + "; ".join(ratios), flush=True)
    return samples, settings, busy


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:9.3f}" if seconds < 0.1 else f"{1e3 * seconds:9.1f}"


def describe(settings: set[tuple[int, str | None]]) -> str:
    return " or ".join(f"{threads} threads, GOMP_SPINCOUNT {spin or 'unset'}"
                       for threads, spin in sorted(settings, key=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 trials, batches 1 and 256, LightCNN-9 at width 0.25")
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    trials = 3 if args.quick else args.trials
    light_width = 0.25 if args.quick else 0.5
    batches = (1, 256) if args.quick else BATCHES
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{'quick' if args.quick else 'full'} run: {trials} interleaved trials, batches "
          f"{', '.join(map(str, batches))}; rate 0.5 by L1 norm, one round, random init")
    with tempfile.TemporaryDirectory(prefix="unit-speed-") as tmp:
        folder = Path(tmp)
        no_data = [("data.root", str(folder / "no-data"))]  # exports read no dataset
        start = time.perf_counter()
        cases = [make_case("lenet-300-100", "lenet-300-100", (784,)),
                 make_case("conv-4", "conv-4", (3, 32, 32),
                           data=[("data.dataset", "cifar10"), *no_data]),
                 make_case("resnet18", "torchvision:resnet18", (3, 64, 64),
                           data=[("data.dataset", "folder"), ("data.channels", 3),
                                 ("data.image_size", 64), ("data.crop", 64), *no_data]),
                 make_case(f"lightcnn-9 w{light_width}", "lightcnn-9", (1, 128, 128),
                           light_width, data=[("data.dataset", "faces"), *no_data])]
        paths, export_diff = save_files(cases, folder)
        print(f"pruned, shrunk and exported in {time.perf_counter() - start:.1f} s\n")
        report_shapes(cases, export_diff)

        start = time.perf_counter()
        print(f"\nTiming: {trials} trials, each a fresh process per network and side "
              "(dense = pickled masked network, torch defaults; shrunk = prunetui.load_pruned "
              "of the export file)", flush=True)
        samples, settings, busy = measure(cases, paths, trials, batches)
    print(f"processes reported: dense {describe(settings['dense'])}; "
          f"shrunk {describe(settings['shrunk'])}")
    print(f"\nCPU latency (ms per call, median of {trials} interleaved trials; speedup: median "
          f"of the per-trial ratios dense / shrunk, their range; timed in "
          f"{time.perf_counter() - start:.0f} s, process starts included):")
    print(f"{'network':<18} {'batch':>5} {'dense':>9} {'shrunk':>9} {'speedup':>8} "
          f"{'range':>11} {'FLOP ratio':>10}")
    speedup: dict[tuple[str, int], float] = {}
    for c in cases:
        for b in batches:
            dense, small = samples[(c.name, "dense", b)], samples[(c.name, "shrunk", b)]
            ratios = [d / s for d, s in zip(dense, small, strict=True)]
            speedup[(c.name, b)] = statistics.median(ratios)
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            print(f"{c.name:<18} {b:>5} {ms(statistics.median(dense))} "
                  f"{ms(statistics.median(small))} {speedup[(c.name, b)]:7.2f}x {spread:>11} "
                  f"{c.flops[0] / c.flops[1]:9.2f}x")
    lenet = cases[0]
    print(f"\nLeNet-300-100, half of the hidden units removed: shrunk file "
          f"{100 * lenet.files[1] / lenet.files[0]:.1f}% of the dense one (target <= 60%), "
          f"{speedup[(lenet.name, 256)]:.2f}x faster at batch 256 (target >= 1.6x)")
    worst = max((b for b in busy if b == b), default=0.0)  # nan: not measured
    if worst >= BUSY_CORE_THRESHOLD:
        print(f"warning: the machine was busy (other processes kept up to {worst:.1f} cores "
              "busy). The dense baseline's OpenMP threads spin by torch's default and suffer "
              "far more from other processes than the product's (prunetui's spin count), so "
              "these speedups overstate what shrinking buys; measure on an idle machine.")


def report_shapes(cases: list[Case], export_diff: float) -> None:
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
          f"{'yes' if worst <= 1e-5 else 'NO'} (largest difference {worst:.2e}); the export "
          f"files load back to the shrunk logits: {'yes' if export_diff <= 1e-5 else 'NO'} "
          f"(largest difference {export_diff:.2e})")
    for c in cases:
        print(f"  {c.name}: dense {c.params[0]:,} parameters, {c.flops[0]:,} FLOPs, "
              f"{c.files[0] / 1024:,.1f} KiB; shrunk {c.params[1]:,}, {c.flops[1]:,}, "
              f"{c.files[1] / 1024:,.1f} KiB")


if __name__ == "__main__":
    with recorded("unit_speed"):
        main()

"""Export file sizes and CPU inference latency of a pruned LeNet-300-100, measured in one run.

The network is pruned by magnitude without training (Glorot init, the default rates: 20% per
round of the first and hidden layers, 10% of the output layer), which gives the sparsity
pattern sizes and latency depend on; training would only change the values. Prints

- file sizes of the three export formats at 15 rounds (~3.6% of the weights left), and the
  sparse/dense ratio (target: at most 6%);
- latency of every backend (prunetui/footprint.py) at batch 1 and 256 for each sparsity, from
  interleaved trials (each trial times every backend at every sparsity, so drift hits all
  alike; the median over trials is shown);
- the crossover per sparse backend: the remaining fraction below which it beats the dense
  network at every measured sparsity (target: >= 5% for batch 1 or 256);
- the dense baseline timed again in its own clean process (plain torch, default settings).

    python benchmarks/export_size_speed.py [--quick] [--trials 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from results_file import recorded

from prunetui import config, pruning, store
from prunetui.export import Source, build_export
from prunetui.footprint import backends
from prunetui.nets import build_model, init_weights, prunable_layers

BATCHES = (1, 256)
CALLS = {1: 40, 256: 6}  # calls per timing in one trial

CLEAN_BASELINE = """
import statistics, sys, time, torch
from torch import nn
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                    nn.Linear(100, 10)).eval()
for batch in (1, 256):
    x = torch.randn(batch, 1, 28, 28)
    times = []
    with torch.inference_mode():
        for _ in range(10):
            net(x)
        for _ in range(int(sys.argv[1])):
            start = time.perf_counter()
            for _ in range({1: 40, 256: 6}[batch]):
                net(x)
            times.append((time.perf_counter() - start) / {1: 40, 256: 6}[batch])
    print(batch, statistics.median(times))
"""


def pruned_sources(rounds: list[int]) -> list[Source]:
    cfg = config.Config()
    model = build_model(cfg.model, (784,), 10)
    init_weights(model, cfg.model.init, torch.Generator().manual_seed(0))
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    layers = prunable_layers(model)
    rates = pruning.PruneRates.from_config(cfg.prune)
    masks = pruning.dense_masks(weights, layers)
    sources = []
    for round_ in range(max(rounds) + 1):
        if round_ > 0:
            masks = pruning.prune(pruning.magnitude_scores(weights, layers), masks, layers,
                                  rates, "layer")
        if round_ in rounds:
            masked = {k: v * masks[k] if k in masks else v.clone() for k, v in weights.items()}
            sources.append(Source(
                run=store.RunDir("benchmark"), cfg=cfg, replicate=0, round=round_,
                scheme="magnitude", weights=masked, masks={k: m.bool() for k, m in masks.items()},
                remaining=pruning.remaining(masks), test_acc=float("nan"),
                early_stop_test_acc=float("nan")))
    return sources


def time_calls(forward, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        forward(x)
    return (time.perf_counter() - start) / calls


def crossover(remaining: list[float], sparse: list[float], dense: list[float]) -> float | None:
    """Largest remaining fraction r such that sparse beats dense at r and every sparser point."""
    best = None
    for r, s, d in sorted(zip(remaining, sparse, dense, strict=True)):  # sparsest first
        if s >= d:
            break
        best = r
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sparsities and trials")
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    rounds = [0, 5, 10, 13, 15, 20] if args.quick else list(range(0, 23))
    trials = 3 if args.quick else args.trials
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'quick' if args.quick else 'full'} run: rounds {rounds[0]}..{rounds[-1]}, "
          f"{trials} interleaved trials")
    sources = pruned_sources(rounds)

    at15 = next(s for s in sources if s.round == 15)
    sizes = {fmt: len(build_export(at15, fmt).data) for fmt in ("sparse", "dense", "shrunk")}
    print(f"\nFile size at round 15 ({100 * at15.remaining:.2f}% of weights left): "
          + ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in sizes.items()))
    print(f"sparse / dense = {100 * sizes['sparse'] / sizes['dense']:.2f}% (target <= 6%)")

    forwards = [backends(s) for s in sources]
    names = list(forwards[0])
    inputs = {b: torch.randn(b, 1, 28, 28, generator=torch.Generator().manual_seed(1))
              for b in BATCHES}
    samples: dict[tuple[int, str, int], list[float]] = {}
    with torch.inference_mode():
        for fw in forwards:  # warm-up
            for f in fw.values():
                for b in BATCHES:
                    time_calls(f, inputs[b], 3)
        for _ in range(trials):
            for i, fw in enumerate(forwards):
                for name, f in fw.items():
                    for b in BATCHES:
                        t = time_calls(f, inputs[b], CALLS[b])
                        samples.setdefault((i, name, b), []).append(t)
    latency = {k: statistics.median(v) for k, v in samples.items()}

    for b in BATCHES:
        print(f"\nCPU latency, batch {b} (µs, median of {trials} trials):")
        print(f"{'left %':>8} " + " ".join(f"{n:>10}" for n in names))
        for i, s in enumerate(sources):
            print(f"{100 * s.remaining:8.2f} "
                  + " ".join(f"{1e6 * latency[(i, n, b)]:10.1f}" for n in names))
    remaining = [s.remaining for s in sources]
    print("\nCrossover (sparse beats dense at this fraction left and every sparser one):")
    for b in BATCHES:
        dense = [latency[(i, "dense", b)] for i in range(len(sources))]
        for name in names:
            if name == "dense":
                continue
            r = crossover(remaining, [latency[(i, name, b)] for i in range(len(sources))], dense)
            where = f"below {100 * r:.1f}% remaining" if r is not None else "never"
            print(f"  batch {b:>3} {name:>10}: {where}")

    clean = subprocess.run([sys.executable, "-c", CLEAN_BASELINE, str(trials)],
                           capture_output=True, text=True, check=True)
    print("\nDense baseline in a clean process (plain torch nn.Sequential, default settings):")
    for line in clean.stdout.split("\n"):
        if line.strip():
            batch, seconds = line.split()
            ours = latency[(0, "dense", int(batch))]
            print(f"  batch {batch:>3}: {1e6 * float(seconds):.1f} µs "
                  f"(this process, dense at 100%: {1e6 * ours:.1f} µs)")


if __name__ == "__main__":
    with recorded("export_size_speed"):
        main()

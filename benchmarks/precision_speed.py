"""Seconds per full-width LightCNN-9 face epoch in fp32 and bf16, interleaved, in one run.

    python benchmarks/precision_speed.py --root FACES [--pairs 3] [--epochs 2] [--threads 2]

FACES is a folder made by ``prunetui prepare`` (e.g. from shared/datasets/orl-faces). Each trial
is ``prunetui run faces-lightcnn`` in its own process (the user's command, nothing shared
between trials): the dense round only (``prune.rounds=0``), full width, 144 -> 128 crops,
batch 32, ``--epochs`` epochs with an evaluation at the end of each. Trials alternate fp32,
bf16, fp32, bf16, ... so a change in machine load hits both alike. Seconds per epoch come
from metrics.jsonl ``elapsed_s`` between the first and the last evaluation (one epoch of
training plus its evaluation; start-up, data loading and the first, warm-up epoch left out).

Prints each trial, the median s/epoch per precision, the median of the per-pair ratios
fp32/bf16 (target >= 1.3 on a CPU with AVX512-BF16) and the test accuracies (target: within
3 points; after 2 epochs from scratch both are near chance, so use ``--epochs`` or the docs'
faces-quick comparison for accuracy). The thread count is fixed (``--threads``) so the two
precisions use the same cores; run it on an otherwise idle machine (load average < 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import recorded

PRECISIONS = ("fp32", "bf16")


def iterations_per_epoch(root: str, batch_size: int = 32,
                         split: tuple[float, ...] = (0.7, 0.15, 0.15)) -> int:
    """Training batches per epoch of the faces-lightcnn preset on ``root`` (from the data)."""
    from prunetui import config, presets
    from prunetui.data import load_data
    from prunetui.training import iterations_per_epoch as per_epoch

    cfg = config.apply_overrides(config.load(presets.resolve("faces-lightcnn")),
                                 [("data.root", root), ("data.split", list(split))])
    return per_epoch(load_data(cfg).train_size, batch_size)


def trial(root: str, precision: str, epochs: int, per_epoch: int, threads: int,
          out: Path, name: str) -> dict:
    sets = {"data.root": root, "prune.rounds": 0, "train.epochs": epochs,
            "train.eval_every": per_epoch, "train.threads": threads,
            "train.precision": precision, "model.width": 1.0}
    cmd = [sys.executable, "-m", "prunetui", "run", "faces-lightcnn", "--plain",
           "--no-estimate", "--out", str(out), "--name", name]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    first_line = next((ln for ln in done.stdout.splitlines() if "precision" in ln), "")
    rows = [json.loads(ln) for ln in (out / name / "metrics.jsonl").read_text().splitlines()]
    from prunetui.store import RunDir

    used = RunDir(out / name).runtime().get("precision", "?")
    per = (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]) / max(1, len(rows) - 1)
    return {"precision": used, "s_per_epoch": per, "test_acc": rows[-1]["test_acc"],
            "wall_s": wall, "first_line": first_line.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="prepared faces folder")
    parser.add_argument("--pairs", type=int, default=3, help="fp32/bf16 pairs (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial (>= 2)")
    parser.add_argument("--threads", type=int, default=2, help="train.threads for every trial")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    import torch

    per_epoch = iterations_per_epoch(args.root)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f} at start; LightCNN-9 width 1.0, "
          f"128x128, batch 32, {per_epoch} iterations per epoch, {args.threads} threads")
    if load >= 1.0:
        print("warning: load average >= 1: other processes share the cores", file=sys.stderr)
    results: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for precision in PRECISIONS:
                r = trial(args.root, precision, max(2, args.epochs), per_epoch, args.threads,
                          Path(tmp), f"{precision}-{i}")
                results[precision].append(r)
                print(f"pair {i} {precision:>4}: {r['s_per_epoch']:6.2f} s/epoch, test "
                      f"{100 * r['test_acc']:5.1f}%, process {r['wall_s']:5.1f} s, used "
                      f"{r['precision']}  [{r['first_line']}]", flush=True)
    ratios = [a["s_per_epoch"] / b["s_per_epoch"]
              for a, b in zip(results["fp32"], results["bf16"], strict=True)]
    for precision in PRECISIONS:
        runs = results[precision]
        accs = ", ".join(f"{100 * r['test_acc']:.1f}%" for r in runs)
        print(f"{precision}: median {statistics.median(r['s_per_epoch'] for r in runs):.2f} "
              f"s/epoch, test accuracy {accs}")
    ratio = statistics.median(ratios)
    print(f"fp32/bf16 median ratio {ratio:.2f} (per pair: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}); target >= 1.3: "
          f"{'met' if ratio >= 1.3 else 'NOT met'}; load average {os.getloadavg()[0]:.2f} "
          "at end")


if __name__ == "__main__":
    with recorded("precision_speed"):
        main()

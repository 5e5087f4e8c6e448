"""Does bf16 change what a full-width LightCNN-9 learns? fp32 against bf16, paired by seed.

    python benchmarks/precision_accuracy.py --root FACES [--seeds 8] [--epochs 30]
        [--batch-size 8] [--crop 128] [--schedule constant] [--split 0.7,0.15,0.15]
        [--jobs 2] [--out DIR]

FACES is a folder made by ``prunetui prepare`` (e.g. from shared/datasets/orl-faces). Each
trial is ``prunetui run faces-lightcnn`` in its own process: the dense network only
(``prune.rounds=0``), full width, 144 -> 128 crops (``--crop 64``: 72 -> 64), Adam 1e-3,
``--epochs`` epochs with an evaluation after each, one thread. Batch 8 by default, not the
preset's 32: on the 280 ORL training faces batch 32 makes 8 steps an epoch, and after 6 epochs
(48 steps) the network was still at 10-24% test accuracy (seeds 1 and 2, 2026-12-03);
comparing precisions there would compare noise. At batch 8 an epoch makes 35 steps; at
128x128 the network was still at 38-64% after 11 such epochs (43 s each on one core), so
converging 8 seeds in both precisions takes about 3 hours of 2 cores. ``--crop 64`` runs the
same network on 64x64 crops (the faces-quick geometry), a quarter of the work per image.
``--schedule cosine`` decays the learning rate to zero over the run (the protocol of the
pre-registered measurement in docs/performance.md: batch 32, 30 epochs, where the dense network
ends converged instead of swinging late); ``--split`` sets ``data.split``, which a prepared
folder fixes in its split.json on first use, so another split needs its own prepared folder.
Results go to docs/results/precision_accuracy.md with the default schedule and split, to
precision_accuracy_<schedule>.md otherwise (its command line says the split), so the constant
schedule's measurement keeps its file.
Seeds 1..N run in both precisions, seed by seed; ``--jobs`` trials run at once (one per core).
``--out DIR`` keeps each trial's run there: a later call with the same DIR reads the trials
that finished and resumes the ones that were interrupted (``prunetui run --resume``), so a
measurement of many seeds can be spread over several sittings. Timing is not measured here (see
precision_speed.py), so a shared machine only slows it.

Per seed it prints the test accuracy at early stop (lowest validation loss, as every report
of this project) and at the last epoch, in both precisions, then the paired bf16 - fp32
difference over seeds with its 95% t-interval. The target of issue #20 is "test accuracy
within 3 points": met when the interval lies inside [-3, +3] points, ruled out when it lies
outside, undecided otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from precision_speed import PRECISIONS, iterations_per_epoch
from results_file import recorded

from prunetui import config
from prunetui.results import segment_result
from prunetui.stats import summarize
from prunetui.store import FINISHED, RunDir

TOLERANCE = 3.0  # points
DEFAULT_SPLIT = (0.7, 0.15, 0.15)


def split_fractions(text: str) -> tuple[float, ...]:
    try:
        fractions = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give fractions like 0.6,0.1,0.3") from None
    if len(fractions) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three fractions (train,val,test)")
    return fractions


@dataclass(frozen=True)
class Protocol:
    """What every trial of one measurement shares (a kept trial must match it to be reused)."""

    root: str
    epochs: int
    batch_size: int
    crop: int
    schedule: str
    split: tuple[float, ...]
    per_epoch: int

    def settings(self, precision: str, seed: int) -> dict:
        return {"data.root": self.root, "prune.rounds": 0, "train.epochs": self.epochs,
                "train.batch_size": self.batch_size, "train.eval_every": self.per_epoch,
                "train.threads": 1, "train.seed": seed, "train.precision": precision,
                "train.schedule": self.schedule, "model.width": 1.0,
                "data.image_size": self.crop * 9 // 8, "data.crop": self.crop,
                "data.split": list(self.split)}


def trial(protocol: Protocol, precision: str, seed: int, out: Path) -> dict:
    name = f"{precision}-seed{seed}"
    sets = protocol.settings(precision, seed)
    per_epoch = protocol.per_epoch
    run_dir = RunDir(out / name)
    if not run_dir.exists():
        cmd = [sys.executable, "-m", "prunetui", "run", "faces-lightcnn", "--out", str(out),
               "--name", name]
        for key, value in sets.items():
            cmd += ["--set", f"{key}={json.dumps(value)}"]
        execute([*cmd, "--plain", "--no-estimate"])
    else:
        refuse_other_settings(run_dir, sets)
        if run_dir.read_status().state != FINISHED:  # interrupted in an earlier sitting
            execute([sys.executable, "-m", "prunetui", "run", "--resume", str(run_dir.path),
                     "--plain", "--no-estimate"])
    rows = run_dir.metrics()
    used = run_dir.runtime().get("precision", "?")
    early = segment_result(rows)
    return {"precision": used, "seed": seed, "early": 100 * early.test_acc,
            "last": 100 * rows[-1]["test_acc"], "early_epoch": early.early_stop_iteration
            / per_epoch, "wall_s": rows[-1]["elapsed_s"]}


def execute(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def refuse_other_settings(run_dir: RunDir, sets: dict) -> None:
    """A kept trial is reused only if it ran with this call's settings."""
    recorded = config.to_dict(config.load(run_dir.config_path))
    for key, wanted in sets.items():
        section, field = key.split(".")
        have = recorded[section][field]
        if (list(have) if isinstance(have, tuple) else have) != wanted:
            sys.exit(f"{run_dir.path} ran with {key}={have!r}, not "
                     f"{wanted!r}: give another --out folder.")


def verdict(low: float, high: float) -> str:
    if low >= -TOLERANCE and high <= TOLERANCE:
        return f"within {TOLERANCE:g} points: shown"
    if low > TOLERANCE or high < -TOLERANCE:
        return f"within {TOLERANCE:g} points: ruled out"
    return f"within {TOLERANCE:g} points: neither shown nor ruled out"


def report(results: dict[tuple[str, int], dict], seeds: list[int]) -> None:
    for key in ("early", "last"):
        label = "at early stop" if key == "early" else "at the last epoch"
        fp32 = [results["fp32", s][key] for s in seeds]
        bf16 = [results["bf16", s][key] for s in seeds]
        diff = summarize([b - a for a, b in zip(fp32, bf16, strict=True)])
        a, b = summarize(fp32), summarize(bf16)
        print(f"test % {label}: fp32 {a.mean:.2f} (sd {a.std:.2f}), bf16 {b.mean:.2f} "
              f"(sd {b.std:.2f}); bf16 - fp32 {diff.mean:+.2f}, 95% interval "
              f"{diff.low:+.2f} to {diff.high:+.2f} over {diff.n} seeds: "
              f"{verdict(diff.low, diff.high)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="prepared faces folder")
    parser.add_argument("--seeds", type=int, default=8, help="seeds 1..N (default 8)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial (default 30)")
    parser.add_argument("--crop", type=int, default=128, choices=(64, 128),
                        help="crop size (images are 9/8 of it before cropping; default 128)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--schedule", default="constant", choices=("constant", "cosine"),
                        help="learning-rate schedule (default constant)")
    parser.add_argument("--split", type=split_fractions, default=DEFAULT_SPLIT,
                        help="data.split as train,val,test fractions (default 0.7,0.15,0.15)")
    parser.add_argument("--jobs", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--out", type=Path, help="keep the trial runs here; finished ones are "
                        "read, interrupted ones resumed (default: a temporary folder)")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 for an interval")
    return args


def main(args: argparse.Namespace) -> None:
    per_epoch = iterations_per_epoch(args.root, args.batch_size, args.split)
    protocol = Protocol(args.root, args.epochs, args.batch_size, args.crop, args.schedule,
                        args.split, per_epoch)
    seeds = list(range(1, args.seeds + 1))
    print(f"LightCNN-9 width 1.0, {args.crop}x{args.crop}, batch {args.batch_size}, Adam 1e-3 "
          f"({args.schedule}), split {','.join(f'{f:g}' for f in args.split)}, "
          f"{args.epochs} epochs of "
          f"{per_epoch} iterations, dense, 1 thread per trial, {args.jobs} at once, "
          f"seeds {seeds[0]}..{seeds[-1]}, {os.cpu_count()} CPUs")
    jobs = [(p, s) for s in seeds for p in PRECISIONS]  # seed by seed: what ends early pairs up
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        futures = {pool.submit(trial, protocol, p, s, out): (p, s) for p, s in jobs}
        for future, key in futures.items():
            try:
                r = future.result()
            except BaseException:  # a failed trial: stop now, not after every queued one
                pool.shutdown(cancel_futures=True)
                raise
            results[key] = r
            print(f"seed {r['seed']} {key[0]:>4} (used {r['precision']}): test "
                  f"{r['early']:5.1f}% at early stop (epoch {r['early_epoch']:.0f}), "
                  f"{r['last']:5.1f}% at the last epoch; {r['wall_s']:.0f} s", flush=True)
    report(results, seeds)


def variant(args: argparse.Namespace) -> str:
    """"" for the default protocol (precision_accuracy.md), else the schedule's name."""
    if args.schedule == "constant" and args.split == DEFAULT_SPLIT:
        return ""
    return args.schedule


if __name__ == "__main__":
    arguments = parse_args()
    with recorded("precision_accuracy", variant=variant(arguments)):
        main(arguments)

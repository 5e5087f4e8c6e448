"""Launch estimates against real runs: is ``prunetui run``'s "Estimated time" within 2x?

    python benchmarks/estimate_accuracy.py [--root data] [--faces-root DIR]
                                           [--presets quick faces-quick] [--threads N]
                                           [--set KEY=VALUE ...]

For each preset, in order:
  1. the estimate of a fresh process (``estimate()`` as the app's Setup makes it): a fresh
     calibration (an empty temporary calibration cache), measured in this process;
  2. the run itself: ``python -m prunetui run PRESET --plain`` in its own process (the user's
     command, with its own empty calibration cache), timed from the start of the process to
     its exit; its second line, the estimate measured inside the run (its threads, its
     data loaded), is read back (``about 1 min 20 s``: to 10 s);
  3. the ratio real / estimate, for both estimates, for the process wall time and for the
     run's own ``elapsed_s`` (last metrics row: without Python start-up, torch import and
     the first data loading).
Each estimate says the cores other processes used while it was timed (``crowded_by``: more
than the cores its threads left free; such a calibration is not cached). Exit 1 when a
wall-time ratio is outside [0.5, 2]. ``--set`` shrinks a preset for a quick check (e.g.
``--set prune.rounds=1``). faces-quick needs a prepared faces folder (``prunetui prepare
/work/shared/datasets/orl-faces DIR``); without ``--faces-root`` it is skipped. The load average
is printed before and after each run: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results_file import recorded  # noqa: E402  (benchmarks/ is on sys.path)

import prunetui  # noqa: E402,F401  (OpenMP wait policy before torch)
from prunetui import config, presets, store  # noqa: E402
from prunetui.estimate import estimate, format_duration  # noqa: E402


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def preset_config(name: str, root: str, overrides: list[str]) -> config.Config:
    cfg = config.load(presets.resolve(name, presets.RUN))
    return config.apply_overrides(cfg, [("data.root", root)]
                                  + [config.parse_override(o) for o in overrides])


UNITS = {"s": 1, "min": 60, "h": 3600, "days": 86400}


def parse_duration(text: str) -> float:
    """``about 1 min 20 s`` -> 80.0 (format_duration's words back to seconds)."""
    parts = re.findall(r"([\d.]+) (days|min|h|s)\b", text)
    return float(sum(float(n) * UNITS[unit] for n, unit in parts))


def one(name: str, root: str, threads: int, out: Path, overrides: list[str]) -> dict:
    overrides = overrides + ([f"train.threads={threads}"] if threads else [])
    cfg = preset_config(name, root, overrides)
    with tempfile.TemporaryDirectory(prefix="calibration-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        start = time.perf_counter()
        found = estimate(cfg)
        estimate_s = time.perf_counter() - start
    load_before = loadavg()
    cmd = [sys.executable, "-m", "prunetui", "run", name, "--plain", "--out", str(out),
           "--name", name, "--set", f"data.root={root}"]
    for override in overrides:
        cmd += ["--set", override]
    with tempfile.TemporaryDirectory(prefix="calibration-") as cache:
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "XDG_CACHE_HOME": cache})
        wall = time.perf_counter() - start
    line = next((li for li in done.stdout.splitlines() if "Estimated time: " in li), "")
    in_run = line.partition("Estimated time: ")[2]
    in_run_s = parse_duration(in_run.partition(" on ")[0]) or float("nan")
    run = store.RunDir(out / name)
    elapsed = run.metrics()[-1]["elapsed_s"]
    runtime = run.runtime()
    return {"preset": name, "estimate_s": round(found.seconds, 1),
            "estimate_text": found.describe(), "estimate_took_s": round(estimate_s, 2),
            "estimate_threads": found.threads, "per_step_ms": round(1e3 * found.per_step_s, 2),
            "eval_s": round(found.eval_s, 3), "crowded_by": found.crowded_by,
            "in_run_estimate_s": in_run_s, "in_run_text": in_run,
            "run_threads": runtime.get("threads"),
            "wall_s": round(wall, 1), "elapsed_s": round(elapsed, 1),
            "ratio_wall": round(wall / found.seconds, 2),
            "ratio_elapsed": round(elapsed / found.seconds, 2),
            "in_run_ratio_wall": round(wall / in_run_s, 2),
            "load_before": load_before, "load_after": loadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "data"), help="MNIST dataset root")
    parser.add_argument("--faces-root", help="a prepared faces folder (prunetui prepare)")
    parser.add_argument("--presets", nargs="+", default=["quick", "faces-quick"])
    parser.add_argument("--threads", type=int, default=0,
                        help="train.threads for estimate and run (default 0: auto, as users)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a config override for estimates and runs")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {loadavg()}")
    worst = 1.0
    with tempfile.TemporaryDirectory(prefix="estimate-accuracy-") as out:
        for name in args.presets:
            root = args.root
            if name.startswith("faces"):
                if not args.faces_root:
                    print(f"{name}: skipped (no --faces-root)")
                    continue
                root = args.faces_root
            result = one(name, root, args.threads, Path(out), args.overrides)
            print(json.dumps(result))
            print(f"{name}: estimated {format_duration(result['estimate_s'])} "
                  f"({result['estimate_s']} s), in the run {result['in_run_text']!r}; took "
                  f"{result['wall_s']} s wall (x{result['ratio_wall']}, in the run "
                  f"x{result['in_run_ratio_wall']}), {result['elapsed_s']} s run elapsed "
                  f"(x{result['ratio_elapsed']})", flush=True)
            for ratio in (result["ratio_wall"], result["in_run_ratio_wall"]):
                worst = max(worst, ratio, 1 / ratio) if ratio == ratio else float("inf")
    print(f"worst factor: {worst:.2f} (target: 2)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    with recorded("estimate_accuracy"):
        code = main()
    sys.exit(code)

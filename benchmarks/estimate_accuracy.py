"""Launch estimates against real runs: is ``prunetui run``'s "Estimated time" within 2x?

    python benchmarks/estimate_accuracy.py [--root data] [--faces-root DIR]
                                           [--presets quick faces-quick] [--threads N]

For each preset, in order:
  1. the estimate, as ``prunetui run`` makes it: a fresh calibration (an empty temporary
     calibration cache), measured in this process with the run's thread count;
  2. the run itself: ``python -m prunetui run PRESET --plain --no-estimate`` in its own
     process (the user's command), timed from the start of the process to its exit;
  3. the ratio real / estimate, for the process wall time and for the run's own ``elapsed_s``
     (last metrics row: from the first evaluation's clock start, without Python start-up and
     torch import).
Exit 1 when a wall-time ratio is outside [0.5, 2]. faces-quick needs a prepared faces folder
(``prunetui prepare /work/shared/datasets/orl-faces DIR``); without ``--faces-root`` it is
skipped. The load average is printed before and after each run: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def preset_config(name: str, root: str) -> config.Config:
    return config.apply_overrides(config.load(presets.resolve(name, presets.RUN)),
                                  [("data.root", root)])


def one(name: str, root: str, threads: int, out: Path) -> dict:
    cfg = preset_config(name, root)
    if threads:
        cfg = config.apply_overrides(cfg, [("train.threads", threads)])
    with tempfile.TemporaryDirectory(prefix="calibration-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        start = time.perf_counter()
        found = estimate(cfg)
        estimate_s = time.perf_counter() - start
    load_before = loadavg()
    cmd = [sys.executable, "-m", "prunetui", "run", name, "--plain", "--no-estimate",
           "--out", str(out), "--name", name, "--set", f"data.root={root}"]
    if threads:
        cmd += ["--set", f"train.threads={threads}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    run = store.RunDir(out / name)
    elapsed = run.metrics()[-1]["elapsed_s"]
    runtime = json.loads((run.path / "runtime.json").read_text())
    return {"preset": name, "estimate_s": round(found.seconds, 1),
            "estimate_text": found.describe(), "estimate_took_s": round(estimate_s, 2),
            "estimate_threads": found.threads, "run_threads": runtime.get("threads"),
            "wall_s": round(wall, 1), "elapsed_s": round(elapsed, 1),
            "ratio_wall": round(wall / found.seconds, 2),
            "ratio_elapsed": round(elapsed / found.seconds, 2),
            "load_before": load_before, "load_after": loadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "data"), help="MNIST dataset root")
    parser.add_argument("--faces-root", help="a prepared faces folder (prunetui prepare)")
    parser.add_argument("--presets", nargs="+", default=["quick", "faces-quick"])
    parser.add_argument("--threads", type=int, default=0,
                        help="train.threads for estimate and run (default 0: auto, as users)")
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
            result = one(name, root, args.threads, Path(out))
            print(json.dumps(result))
            print(f"{name}: estimated {format_duration(result['estimate_s'])} "
                  f"({result['estimate_s']} s), took {result['wall_s']} s wall "
                  f"(x{result['ratio_wall']}), {result['elapsed_s']} s run elapsed "
                  f"(x{result['ratio_elapsed']})", flush=True)
            ratio = result["ratio_wall"]
            worst = max(worst, ratio, 1 / ratio)
    print(f"worst factor: {worst:.2f} (target: 2)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    with recorded("estimate_accuracy"):
        code = main()
    sys.exit(code)

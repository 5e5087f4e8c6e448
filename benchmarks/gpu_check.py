"""The GPU check: what this project cannot measure without a CUDA machine, in one script.

From a fresh clone, after the README's install (``make install`` or ``pip install -e '.[dev]'``):

    .venv/bin/python benchmarks/gpu_check.py [--data-root data] [--faces-src DIR] [--out DIR]

Without CUDA it says so and exits 0 having measured nothing. With CUDA it takes a few minutes
(well under 10 on any recent GPU) and prints absolute figures and one PASS / FAIL line for each
check:

1. first-epoch time of ``quick`` (LeNet-300-100, MNIST), ``faces-quick`` (LightCNN-9 on the
   ORL faces, prepared first) and ``lth-conv2-folder-cpu`` (the paper's Conv-2, on the same
   faces as an image folder), in each precision the installed prunetui offers;
2. a run killed with SIGKILL and resumed on CUDA (fp32) ends with the metrics of an
   uninterrupted one;
3. ``prunetui sweep --ray --gpus-per-run 0.5``: two runs share the GPU and both finish on it;
4. ``prunetui report --size`` adds GPU latency rows;
5. the app's Monitor follows a CUDA run trained by another process.

Every check runs the real ``prunetui`` command in its own process, as a user would. Exit code:
0 when every check passed (or without CUDA), 1 otherwise. ``--on-cpu`` runs every check on a
machine without CUDA anyway, to test this script itself: the checks then run on the CPU and
every condition that asks for the GPU fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
PRUNETUI = [sys.executable, "-m", "prunetui"]
# One epoch of round 0 and one pruned round, one scheme: the first epoch is what is timed.
EPOCH = ["--set", "train.epochs=1", "--set", "prune.rounds=1", "--set", 'prune.schemes=["keep"]']


@dataclass
class Result:
    name: str
    passed: bool
    figures: str


def cuda_device() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def prunetui(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*PRUNETUI, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"prunetui {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def comparable(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows(run)]


def run_device(run: Path) -> str:
    from prunetui.store import RunDir

    return RunDir(run).runtime().get("device", "?")


def precisions() -> list[str]:
    """The precisions this prunetui offers (``train.precision`` is newer than some installs)."""
    import dataclasses

    from prunetui import config

    fields = {f.name for f in dataclasses.fields(config.TrainConfig)}
    return ["fp32", "bf16"] if "precision" in fields else ["fp32"]


def first_epoch(preset: str, out: Path, extra: list[str]) -> list[Result]:
    results = []
    for precision in precisions():
        options = ["--set", f"train.precision={precision}"] if precision != "fp32" else []
        try:
            results.append(epoch_result(preset, precision, out / f"{preset}-{precision}",
                                        [*extra, *options]))
        except Exception as err:  # the other precisions and checks still run
            results.append(Result(f"first epoch {preset} {precision}", False, f"error: {err}"))
    return results


def epoch_result(preset: str, precision: str, run: Path, options: list[str]) -> Result:
    prunetui("run", preset, *EPOCH, *options, "--out", str(run.parent), "--name", run.name,
             "--plain")
    dense = [r for r in rows(run) if r["round"] == 0]
    seconds, acc = dense[-1]["elapsed_s"], dense[-1]["test_acc"]
    return Result(f"first epoch {preset} {precision}", run_device(run).startswith("cuda"),
                  f"{seconds:.2f} s, test {100 * acc:.2f}%, device {run_device(run)}")


def prepare_faces(src: Path, out: Path) -> Path:
    dst = out / "faces"
    if not dst.exists():
        prunetui("prepare", str(src), str(dst), timeout=900)
    return dst


def kill_and_resume(out: Path, data_root: str) -> Result:
    settings = ["--set", "prune.rounds=2", "--set", "train.iterations=2000",
                "--set", f"data.root={data_root}"]
    prunetui("run", "quick", *settings, "--out", str(out), "--name", "whole", "--plain")
    child = subprocess.Popen([*PRUNETUI, "run", "quick", *settings, "--out", str(out),
                              "--name", "killed", "--plain"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume_pt = out / "killed" / "checkpoints" / "resume.pt"
    deadline = time.monotonic() + 300
    while not resume_pt.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    killed = child.wait() == -signal.SIGKILL  # not finished before the kill
    prunetui("run", "--resume", str(out / "killed"), "--plain")
    same = comparable(out / "killed") == comparable(out / "whole")
    device = run_device(out / "killed")
    return Result("kill -9 and resume on CUDA, fp32: identical metrics",
                  killed and same and device.startswith("cuda"),
                  f"killed mid-run: {killed}, {len(rows(out / 'whole'))} rows compared, "
                  f"identical: {same}, device {device}")


def shared_gpu_sweep(out: Path, data_root: str) -> Result:
    sweep = out / "gpu-share.toml"
    sweep.write_text(f'name = "gpu-share"\nbase = "quick"\n[set]\ndata.root = "{data_root}"\n'
                     "prune.rounds = 1\ntrain.iterations = 1000\n[grid]\ntrain.seed = [0, 1]\n")
    done = prunetui("sweep", str(sweep), "--ray", "--gpus-per-run", "0.5", "--out", str(out),
                    "--plain", check=False, timeout=900)
    runs = [p for p in (out / "gpu-share").iterdir() if (p / "runtime.json").exists()] \
        if (out / "gpu-share").is_dir() else []
    on_gpu = [run_device(p).startswith("cuda") for p in runs]
    passed = done.returncode == 0 and len(runs) == 2 and all(on_gpu)
    return Result("sweep --gpus-per-run 0.5: two runs share the GPU", passed,
                  f"exit {done.returncode}, {len(runs)} runs, on cuda: {on_gpu}")


def size_report(run: Path) -> Result:
    done = prunetui("report", str(run), "--size", "--no-plot", check=False)
    titles = [line.strip() for line in done.stdout.splitlines() if "CUDA latency" in line]
    return Result("report --size has GPU latency rows", done.returncode == 0 and bool(titles),
                  f"exit {done.returncode}, tables: {titles or 'no CUDA latency table'}")


def monitor_follows(out: Path, data_root: str) -> Result:
    from prunetui.app.app import PruneApp
    from prunetui.app.screens.monitor import MonitorScreen

    child = subprocess.Popen([*PRUNETUI, "run", "quick", "--set", f"data.root={data_root}",
                              "--set", "train.iterations=20000", "--out", str(out), "--name",
                              "followed", "--plain"], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    metrics = out / "followed" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while (not metrics.exists() or not metrics.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.2)
        seen = asyncio.run(_follow(PruneApp(models_dir=out, data_root=data_root), MonitorScreen))
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(60)
    device = run_device(out / "followed")
    return Result("the app's Monitor follows a CUDA run", seen > 0 and device.startswith("cuda"),
                  f"{seen} new evaluations seen, device {device}")


async def _follow(app, monitor_type) -> int:
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.1)
            if isinstance(app.screen, monitor_type) and app.screen.data is not None:
                break
        else:
            return 0
        before = app.screen.data.evaluations
        for _ in range(300):
            await pilot.pause(0.1)
            if app.screen.data.evaluations > before:
                return app.screen.data.evaluations - before
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data", help="MNIST under DIR/MNIST/raw")
    parser.add_argument("--faces-src", default=str(SHARED / "orl-faces"),
                        help="photo folders for faces-quick (default: the shipped ORL faces)")
    parser.add_argument("--out", help="work folder (default: a temporary one)")
    parser.add_argument("--on-cpu", action="store_true",
                        help="without CUDA, run the checks on the CPU anyway (tests this "
                             "script; every on-GPU condition fails)")
    args = parser.parse_args()
    device = cuda_device()
    if device is None and not args.on_cpu:
        print("No CUDA device here: nothing measured. Run this on a machine with an NVIDIA GPU.")
        return 0
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    data_root = str(Path(args.data_root).resolve())
    print(f"GPU: {device or 'none (--on-cpu: the checks run on the CPU)'}; work folder {out}")
    results = first_epoch("quick", out, ["--set", f"data.root={data_root}"])
    if Path(args.faces_src).is_dir():
        faces = prepare_faces(Path(args.faces_src), out)
        results += first_epoch("faces-quick", out, ["--set", f"data.root={faces}"])
        # the paper's Conv-2 on the prepared faces as an image folder (one class per person)
        results += first_epoch("lth-conv2-folder-cpu", out, ["--set", f"data.root={faces}",
                                                             "--set", "train.replicates=1"])
    else:
        print(f"skipped faces-quick and conv-2: no photos in {args.faces_src}")
    checks = [("kill and resume", lambda: kill_and_resume(out, data_root)),
              ("shared-GPU sweep", lambda: shared_gpu_sweep(out, data_root)),
              ("report --size", lambda: size_report(out / "quick-fp32")),
              ("Monitor", lambda: monitor_follows(out, data_root))]
    for name, check in checks:
        try:
            results.append(check())
        except Exception as err:  # one failed check must not hide the others' figures
            results.append(Result(name, False, f"error: {err}"))
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.name}: {r.figures}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

"""Photos/s of ``prunetui prepare`` against a plain one-photo-at-a-time MTCNN loop.

    .venv/bin/python benchmarks/prepare_speed.py [SRC] [--limit N] [--trials 3] [--quick]

SRC defaults to ../shared/datasets/lfw-subset (relative to the repository root). Both sides do
the same work per photo: decode, EXIF transpose, detect, pick the largest face with probability
>= 0.9, crop it with margin 0.2, save a 144x144 gray PNG.

Each side runs in its own fresh process with the OpenMP/MKL thread variables removed from its
environment, so neither inherits the other's (or this script's) settings:
  * plain: this file with ``--plain-child``; it imports torch, facenet-pytorch and Pillow and
    nothing from prunetui, and runs the textbook loop with facenet-pytorch's defaults
    (``MTCNN()``: minimum face 20 px). Timed from building the MTCNN to the last PNG; imports
    are left out, in its favour.
  * prepare: ``python -m prunetui prepare SRC DST --plain`` with its defaults, timed as the
    whole process: interpreter start, imports and writing the report included.
Trials interleave (plain, prepare, plain, prepare, ...), so load from other processes falls on
both sides alike; the ratio reported is the median of the per-trial ratios. One untimed round of
each side on a few photos first fills the disk cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import recorded

REPO = Path(__file__).resolve().parents[1]
WARMUP_PHOTOS = 16
CLEAN_ENV_DROP = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OMP_PROC_BIND",
                  "KMP_BLOCKTIME", "GOMP_SPINCOUNT")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp", ".tif", ".tiff")


def plain_loop(photos: list[Path], dst: Path) -> float:
    """Seconds for the textbook loop: one MTCNN call per photo (run in the clean child)."""
    from facenet_pytorch import MTCNN
    from PIL import Image, ImageOps

    start = time.perf_counter()
    mtcnn = MTCNN()
    for i, path in enumerate(photos):
        with Image.open(path) as img:
            photo = ImageOps.exif_transpose(img).convert("RGB")
        boxes, probs = mtcnn.detect(photo)
        if boxes is None:
            continue
        confident = [b for b, p in zip(boxes, probs, strict=True) if p >= 0.9]
        if not confident:
            continue
        x1, y1, x2, y2 = max(confident, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        half = max(x2 - x1, y2 - y1) * (1 + 2 * 0.2) / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        square = photo.crop((round(cx - half), round(cy - half), round(cx + half),
                             round(cy + half)))
        square.convert("L").resize((144, 144), Image.Resampling.LANCZOS).save(dst / f"{i}.png")
    return time.perf_counter() - start


def list_photos(src: Path) -> list[Path]:
    return sorted(p for person in sorted(src.iterdir()) if person.is_dir()
                  and not person.name.startswith(".") for p in sorted(person.iterdir())
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def subset(photos: list[Path], root: Path) -> Path:
    """A SRC of symlinks to ``photos``."""
    for p in photos:
        person = root / p.parent.name
        person.mkdir(parents=True, exist_ok=True)
        (person / p.name).symlink_to(p.resolve())
    return root


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_DROP}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run(command: list[str]) -> str:
    """Run ``command`` in a clean environment; its stdout, or exit with its error output."""
    done = subprocess.run(command, env=clean_env(), capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def run_plain(src: Path, dst: Path) -> float:
    dst.mkdir(parents=True)
    return float(run([sys.executable, __file__, "--plain-child", str(src), str(dst)]).split()[-1])


def run_prepare(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    run([sys.executable, "-m", "prunetui", "prepare", str(src), str(dst), "--plain"])
    return time.perf_counter() - start


def count_pngs(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.png"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", default=str(REPO.parent / "shared/datasets/lfw-subset"))
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--trials", type=int, default=3, help="interleaved trials (default: 3)")
    parser.add_argument("--quick", action="store_true",
                        help="100 photos, 3 trials: a rough figure in about a minute")
    parser.add_argument("--plain-child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_child:  # the clean baseline process: print its seconds, nothing else
        src, dst = (Path(p) for p in args.plain_child)
        print(f"{plain_loop(list_photos(src), dst):.4f}")
        return 0
    src = Path(args.src)
    if not src.is_dir():
        print(f"{src} is not a folder; pass SRC (a folder of person folders).", file=sys.stderr)
        return 2
    limit, trials = (args.limit or 100, 3) if args.quick else (args.limit, args.trials)
    photos = list_photos(src)[: limit or None]
    if not photos or trials < 1:
        print(f"no photos in {src} (or --trials < 1).", file=sys.stderr)
        return 2

    plain_s: list[float] = []
    prepare_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = subset(photos, work / "src")
        warm = subset(photos[:WARMUP_PHOTOS], work / "warm-src")
        run_plain(warm, work / "warm-plain")
        run_prepare(warm, work / "warm-prepare")
        for i in range(trials):
            plain_s.append(run_plain(data, work / f"plain{i}"))
            prepare_s.append(run_prepare(data, work / f"prepare{i}"))
            print(f"trial {i + 1}: plain {plain_s[-1]:.1f} s, prepare {prepare_s[-1]:.1f} s, "
                  f"ratio {plain_s[-1] / prepare_s[-1]:.2f}x", flush=True)
        faces = (count_pngs(work / "plain0"), count_pngs(work / "prepare0"))

    n = len(photos)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ratio = statistics.median(p / q for p, q in zip(plain_s, prepare_s, strict=True))
    print(f"{n} photos from {src}; {os.cpu_count()} CPUs, load average {load:.1f} "
          "(other processes slow both sides)")
    t_plain, t_prep = statistics.median(plain_s), statistics.median(prepare_s)
    print(f"plain MTCNN loop, facenet defaults: {n / t_plain:6.1f} photos/s  "
          f"(median {t_plain:.1f} s, {faces[0]} faces; imports not timed)")
    print(f"prunetui prepare, defaults:         {n / t_prep:6.1f} photos/s  "
          f"(median {t_prep:.1f} s, {faces[1]} faces; process start included)")
    print(f"prepare / plain loop: {ratio:.2f}x (median of {trials} interleaved trials)")
    if load > (os.cpu_count() or 1) / 2:
        print("warning: the machine was busy. The plain loop's OpenMP threads spin by default and "
              "suffer far more from that than prepare's single-threaded workers, so this ratio "
              "overstates the gain; measure on a quiet machine.")
    return 0


if __name__ == "__main__":
    if any(a.startswith("--plain-child") for a in sys.argv):
        sys.exit(main())  # a child trial: nothing to record
    with recorded("prepare_speed"):
        code = main()
    sys.exit(code)

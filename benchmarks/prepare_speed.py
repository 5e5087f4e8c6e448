"""Photos/s of ``prepare_faces`` against a plain one-photo-at-a-time MTCNN loop.

    .venv/bin/python benchmarks/prepare_speed.py [SRC] [--limit N]

SRC defaults to ../shared/datasets/lfw-subset (relative to the repository root). Both sides do
the same work per photo: decode, EXIF transpose, detect, pick the largest face with probability
>= 0.9, crop it with margin 0.2 from the full photo, save a 144x144 gray PNG. The plain loop is
timed with the same minimum face size as the pipeline (48 px) and, for reference, with
facenet-pytorch's default (20 px). Each side runs once on a few photos first, so neither pays
torch's one-off warm-up inside its timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageOps  # noqa: E402

from prunetui.data.prepare import (  # noqa: E402
    crop_face,
    default_min_face_size,
    prepare_faces,
    scan_source,
)

WARMUP_PHOTOS = 16


def plain_loop(photos: list[Path], dst: Path, min_face_size: int) -> float:
    """Seconds for the textbook loop: one MTCNN call per photo."""
    from facenet_pytorch import MTCNN

    start = time.perf_counter()
    mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size)
    for i, path in enumerate(photos):
        with Image.open(path) as img:
            photo = ImageOps.exif_transpose(img).convert("RGB")
        boxes, probs = mtcnn.detect(photo)
        if boxes is None:
            continue
        confident = [b for b, p in zip(boxes, probs, strict=True) if p >= 0.9]
        if confident:
            box = max(confident, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            crop_face(photo, box, 0.2).save(dst / f"{i}.png")
    return time.perf_counter() - start


def pipeline(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    prepare_faces(src, dst)
    return time.perf_counter() - start


def subset(src: Path, photos: list[Path], root: Path) -> Path:
    """A SRC of symlinks to ``photos`` (for the warm-up and --limit)."""
    for p in photos:
        person = root / p.parent.name
        person.mkdir(parents=True, exist_ok=True)
        (person / p.name).symlink_to(p)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", default=str(REPO.parent / "shared/datasets/lfw-subset"))
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    args = parser.parse_args()
    src = Path(args.src)
    if not src.is_dir():
        print(f"{src} is not a folder; pass SRC (a folder of person folders).", file=sys.stderr)
        return 2
    photos = [p.path for p in scan_source(src).photos]
    if args.limit:
        photos = photos[: args.limit]
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = subset(src, photos, work / "src") if args.limit else src
        warm = subset(src, photos[:WARMUP_PHOTOS], work / "warm-src")
        plain_loop(photos[:WARMUP_PHOTOS], Path(tmp), default_min_face_size())
        pipeline(warm, work / "warm-dst")
        for name in ("plain48", "plain20", "pipeline"):
            (work / name).mkdir()
        t_plain = plain_loop(photos, work / "plain48", default_min_face_size())
        t_pipe = pipeline(data, work / "pipeline")
        t_default = plain_loop(photos, work / "plain20", 20)
        saved = sum(1 for _ in (work / "pipeline").glob("*/*.png"))

    n = len(photos)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n} photos from {src}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} (other processes skew both sides)")
    print(f"plain loop, min_face_size 48:   {n / t_plain:6.1f} photos/s  ({t_plain:.1f} s)")
    print(f"prepare_faces (batches of 8):   {n / t_pipe:6.1f} photos/s  ({t_pipe:.1f} s, "
          f"{saved} faces)")
    print(f"ratio pipeline / plain loop:    {t_plain / t_pipe:6.2f}x")
    print(f"plain loop, min_face_size 20:   {n / t_default:6.1f} photos/s  (facenet default; "
          f"pipeline is {t_default / t_pipe:.2f}x this)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

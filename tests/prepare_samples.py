"""A photo folder for ``prepare`` tests: a few real faces plus one file of every awkward kind.

Real photos come from ``../shared/datasets`` beside the repository (or
``$PRUNETUI_SHARED_DATASETS``); without them the tests skip, unless ``PRUNETUI_REQUIRE_DATA=1``
turns the skip into a failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LFW = "lfw-subset"
CELEB = "five-celebrity-faces"
ORL = "orl-faces"


def shared_datasets() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    return Path(os.environ.get("PRUNETUI_SHARED_DATASETS", default))


def need_faces() -> Path:
    root = shared_datasets()
    needed = [root / LFW / "Tony_Blair", root / CELEB / "madonna", root / ORL / "s1"]
    missing = [str(p) for p in needed if not p.is_dir()]
    if missing:
        message = f"face datasets not found: {', '.join(missing)} (set PRUNETUI_SHARED_DATASETS)"
        if os.environ.get("PRUNETUI_REQUIRE_DATA") == "1":
            pytest.fail(message + " (PRUNETUI_REQUIRE_DATA=1)")
        pytest.skip(message)
    return root


def lfw(root: Path, person: str, index: int) -> Path:
    return root / LFW / person / f"{person}_{index:04d}.jpg"


# What the default run (--faces largest) must make of each entry: None = one face saved.
EXPECTED: dict[str, str | None] = {
    ".hidden_root": "hidden",
    "notes.txt": "outside_person_folder",
    "celeb/photo.jpg": None,
    "colin/Colin_Powell_0001.jpg": None,
    "colin/duo.jpg": None,
    "colin/orl.pgm": None,
    "tony/.DS_Store": "hidden",
    "tony/Tony_Blair_0001.jpg": None,
    "tony/a.jpg": None,
    "tony/a.png": None,
    "tony/bmp.bmp": None,
    "tony/bomb.png": "too_large",
    "tony/broken_link.jpg": "not_a_file",
    "tony/cmyk.jpg": None,
    "tony/empty.jpg": "empty_file",
    "tony/first_frame.gif": None,
    "tony/gradient.png": "no_face",
    "tony/gray16.png": None,
    "tony/gray16_8bit.png": None,
    "tony/gray8.png": None,
    "tony/huge.jpg": None,
    "tony/nested": "subfolder",
    "tony/rgba.png": None,
    "tony/rotated.jpg": None,
    "tony/rotated_untagged.jpg": "no_face",
    "tony/text.jpg": "not_an_image",
    "tony/tiny.png": "too_small",
    "tony/truncated.jpg": "corrupt",
    "tony/webp.webp": None,
}
PEOPLE = ["celeb", "colin", "empty_person", "tony"]


def side_by_side(left: Path, right: Path) -> Image.Image:
    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    duo = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    duo.paste(a, (0, 0))
    duo.paste(b, (a.width, 0))
    return duo


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` gray pixels (and holds none)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def build_source(root: Path, src: Path) -> Path:
    """Write the EXPECTED layout into ``src`` (which must not exist)."""
    tony, colin, celeb = src / "tony", src / "colin", src / "celeb"
    for folder in (tony / "nested", colin, celeb, src / "empty_person"):
        folder.mkdir(parents=True)
    (src / "notes.txt").write_text("not a person folder\n")
    (src / ".hidden_root").write_text("x")

    blair = Image.open(lfw(root, "Tony_Blair", 1)).convert("RGB")
    shutil.copyfile(lfw(root, "Tony_Blair", 1), tony / "Tony_Blair_0001.jpg")
    shutil.copyfile(lfw(root, "Tony_Blair", 2), tony / "a.jpg")
    Image.open(lfw(root, "Tony_Blair", 3)).save(tony / "a.png")  # same stem, other photo
    shutil.copyfile(lfw(root, "Tony_Blair", 1), tony / "nested" / "inside.jpg")
    (tony / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    rgba = blair.convert("RGBA")
    alpha = np.full((blair.height, blair.width), 255, np.uint8)
    alpha[:, :20] = 0  # a transparent strip
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tony / "rgba.png")
    blair.convert("CMYK").save(tony / "cmyk.jpg")
    gray16 = np.asarray(blair.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray16).save(tony / "gray16.png")  # mode I;16, values up to 65535
    blair.convert("L").save(tony / "gray8.png")
    blair.convert("L").convert("I;16").save(tony / "gray16_8bit.png")  # I;16, values 0..255
    blair.save(tony / "bmp.bmp")
    blair.save(tony / "webp.webp", quality=90)
    blair.save(tony / "first_frame.gif", save_all=True,
               append_images=[Image.new("RGB", blair.size)], duration=100)
    sideways = blair.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": undoes ROTATE_90
    sideways.save(tony / "rotated.jpg", exif=exif, quality=95)
    sideways.save(tony / "rotated_untagged.jpg", quality=95)
    wide = Image.new("RGB", (300, 250), "gray")
    wide.paste(blair, (25, 0))  # 3000x2500 upright, stored sideways: draft, swap and scale back
    exif[0x0112] = 8  # "rotate 90 counter-clockwise to display": undoes ROTATE_270
    wide.resize((3000, 2500), Image.Resampling.BICUBIC).transpose(
        Image.Transpose.ROTATE_270).save(tony / "huge.jpg", exif=exif, quality=85)
    Image.new("RGB", (8, 8), "gray").save(tony / "tiny.png")
    (tony / "bomb.png").write_bytes(png_header_only(20000, 20000))  # 400 Mpx claimed
    (tony / "empty.jpg").write_bytes(b"")
    data = lfw(root, "Tony_Blair", 4).read_bytes()
    (tony / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tony / "text.jpg").write_text("this is not a JPEG\n")
    ramp = np.tile(np.linspace(0, 255, 250, dtype=np.uint8), (250, 1))
    Image.fromarray(ramp).save(tony / "gradient.png")
    (tony / "broken_link.jpg").symlink_to(src / "does-not-exist.jpg")

    shutil.copyfile(lfw(root, "Colin_Powell", 1), colin / "Colin_Powell_0001.jpg")
    side_by_side(lfw(root, "Colin_Powell", 2), lfw(root, "Tony_Blair", 5)).save(
        colin / "duo.jpg", quality=95)
    shutil.copyfile(root / ORL / "s1" / "1.pgm", colin / "orl.pgm")
    shutil.copyfile(root / CELEB / "madonna" / "train_1.jpg", celeb / "photo.jpg")
    return src


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every entry's content hash (or link target) and mtime, to prove nothing was touched."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            state[rel] = (f"link:{os.readlink(path)}", path.lstat().st_mtime_ns)
        elif path.is_file():
            state[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        else:
            state[rel] = ("dir", path.stat().st_mtime_ns)
    return state


def outputs(dst: Path) -> dict[str, bytes]:
    """The prepared images (bookkeeping files left out)."""
    return {p.relative_to(dst).as_posix(): p.read_bytes() for p in sorted(dst.glob("*/*"))}

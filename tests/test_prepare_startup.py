"""``prunetui prepare`` starts without torch._dynamo, and detects and crops exactly as before.

facenet-pytorch is imported through :mod:`prunetui.data.prepare.mtcnn`, which keeps
torchvision's ``roi_align`` from loading torch._dynamo (1.3-1.8 s of start-up on 2 cores).
Each side runs in a fresh process, since what is imported is per process: "lean" is prepare as
it ships; "stock" imports torchvision first, the usual way, so the detector gets the
facenet-pytorch import of before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prepare_samples import LFW, need_faces, outputs

REPO = Path(__file__).resolve().parents[1]
PEOPLE = {"Colin_Powell": 9, "George_W_Bush": 9, "Tony_Blair": 6}  # 24 photos, several with
# more than one face; 9 of a person makes a batch of 8 and a batch of 1 in prepare

CHILD = r"""
import builtins, json, sys
from pathlib import Path

mode, src, dst, out = sys.argv[1:]
import_before = builtins.__import__
if mode == "stock":
    import torchvision  # noqa: F401  (its __init__ loads torch._dynamo, as facenet-pytorch did)

import numpy as np
from PIL import Image

from prunetui.cli import main
from prunetui.data.prepare.detect import FaceDetector

code = main(["prepare", src, dst, "--plain", "--device", "cpu"])
result = {"code": code, "dynamo_after_prepare": "torch._dynamo" in sys.modules,
          "import_restored": builtins.__import__ is import_before}
photos = sorted(Path(src).glob("*/*.jpg"))
images = [Image.open(p).convert("RGB") for p in photos]
detector = FaceDetector("cpu")
found = [r for i in range(0, len(images), 8) for r in detector.detect(images[i:i + 8], 20)]
found += [r for im in images[:3] for r in detector.detect([im], 20)]
result["detections"] = [[np.asarray(b).tolist(), np.asarray(p).tolist()] for b, p in found]
result["dynamo_after_detect"] = "torch._dynamo" in sys.modules

roi_align = sys.modules["torchvision.ops.roi_align"]
asked = roi_align.is_compile_supported
result["deferred"] = asked.__module__ == "prunetui.data.prepare.mtcnn"
supported = asked("cpu")  # the deferred import loads torch._dynamo now, and steps aside
from torch._dynamo.utils import is_compile_supported
result["same_answer"] = supported == is_compile_supported("cpu")
result["real_in_place"] = roi_align.is_compile_supported is is_compile_supported
Path(out).write_text(json.dumps(result))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Per mode: what the child reported, and its DST."""
    root = need_faces()
    tmp = tmp_path_factory.mktemp("startup")
    src = tmp / "src"
    for person, count in PEOPLE.items():
        (src / person).mkdir(parents=True)
        for i in range(1, count + 1):
            name = f"{person}_{i:04d}.jpg"
            (src / person / name).symlink_to(root / LFW / person / name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    found = {}
    for mode in ("stock", "lean"):
        dst, out = tmp / f"dst-{mode}", tmp / f"{mode}.json"
        done = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(dst), str(out)],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        found[mode] = (json.loads(out.read_text()), dst)
    return found


def test_prepare_does_not_load_torch_dynamo(runs):
    lean, _ = runs["lean"]
    assert lean["code"] == 0
    assert not lean["dynamo_after_prepare"] and not lean["dynamo_after_detect"], (
        "torch._dynamo was imported: see prunetui/data/prepare/mtcnn.py (did torchvision's "
        "import of it move?)")
    assert lean["import_restored"]  # the import hook is gone once torchvision is in


def test_stock_side_really_imported_dynamo(runs):
    """Else the comparisons below would compare the lean import with itself."""
    stock, _ = runs["stock"]
    assert stock["code"] == 0 and stock["dynamo_after_prepare"] and not stock["deferred"]


def test_detections_are_identical(runs):
    lean, stock = runs["lean"][0]["detections"], runs["stock"][0]["detections"]
    assert len(lean) == sum(PEOPLE.values()) + 3
    assert any(len(boxes) > 1 for boxes, _ in lean)  # bystanders too, not only one face each
    assert lean == stock  # every box coordinate and probability, bit for bit (JSON floats)


def test_prepared_faces_are_identical(runs):
    (_, lean), (_, stock) = runs["lean"], runs["stock"]
    assert len(outputs(lean)) == sum(PEOPLE.values())
    assert outputs(lean) == outputs(stock)
    journal = ".prepare_journal.jsonl"
    assert (lean / journal).read_text() == (stock / journal).read_text()


def test_deferred_dynamo_import_answers_like_the_real_one_then_steps_aside(runs):
    lean, _ = runs["lean"]
    assert lean["deferred"] and lean["same_answer"] and lean["real_in_place"]


def test_cli_and_engine_import_no_torch_until_a_photo_needs_detecting():
    """A re-run with nothing left to do never pays for torch (nor facenet-pytorch)."""
    code = ("import sys\n"
            "from prunetui.cli import build_parser\n"
            "build_parser()\n"
            "import prunetui.data.prepare, prunetui.cli.prepare\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'facenet_pytorch') "
            "if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"

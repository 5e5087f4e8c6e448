"""Your own images, other networks: a folder of mixed-size colour images (PNG and JPEG, several
modes) through ``prunetui run`` with ``torchvision:resnet18`` and ``conv-4``, then ``prunetui
export``, ``load_pruned`` and ``prunetui predict`` on the folder, whose test accuracy must be
the one the run recorded for the exported round."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunetui.cli import main
from prunetui.export import PrunedModel, load_pruned
from tests.test_predict_inputs import run_and_export

CLASSES = ("circle", "square", "stripes")
SPLITS = {"train": 8, "val": 3, "test": 4}  # images per class in each given split


def drawing(label: int, index: int, size: tuple[int, int]) -> Image.Image:
    """A noisy coloured picture whose shape and hue tell the class."""
    rng = np.random.default_rng(100 * label + index)
    w, h = size
    a = rng.integers(0, 70, (h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    if label == 0:
        inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    elif label == 1:
        inside = (abs(xx - w / 2) < w / 4) & (abs(yy - h / 2) < h / 4)
    else:
        inside = (xx // max(2, w // 8)) % 2 == 0
    a[inside, label] = 230
    return Image.fromarray(a)


def write_folder(root: Path) -> Path:
    """root/{train,val,test}/<class>/: sizes from 24x30 to 90x60; RGB, RGBA, gray and palette
    images; PNG and JPEG."""
    sizes = [(40, 40), (64, 48), (24, 30), (90, 60), (33, 57)]
    modes = ["RGB", "RGBA", "L", "P", "RGB"]
    n = 0
    for split, count in SPLITS.items():
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                n += 1
                image = drawing(label, n, sizes[n % len(sizes)]).convert(modes[n % len(modes)])
                if n % 3 == 0 and image.mode in ("RGB", "L"):
                    image.save(folder / f"{i}.jpg", quality=95)
                else:
                    image.save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("own") / "pictures")


@pytest.mark.parametrize("arch", ["torchvision:resnet18", "conv-4"])
def test_run_export_load_and_predict_on_a_mixed_colour_folder(arch: str, images: Path,
                                                              tmp_path: Path, capsys) -> None:
    out, recorded = run_and_export(tmp_path, {
        "data.root": images, "data.channels": 3, "data.image_size": 40, "data.crop": 32,
        "model.arch": arch, "model.init": "default", "train.iterations": 4,
        "train.eval_every": 2}, capsys)
    model = load_pruned(out)
    assert isinstance(model, PrunedModel) and not model.training
    assert model.class_names == list(CLASSES)
    x = model.prepare(sorted((images / "test").rglob("*.*")))
    assert x.shape == (len(CLASSES) * SPLITS["test"], 3, 32, 32)
    with torch.inference_mode():
        assert model(x).shape == (len(x), len(CLASSES))
    capsys.readouterr()

    assert main(["predict", str(out), str(images), "--quiet"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    total = len(CLASSES) * sum(SPLITS.values())
    assert f"of {total} labelled images" in text, text
    test = re.search(r"test \S+% \((\d+)/(\d+)\)", text)
    assert test and int(test[2]) == len(CLASSES) * SPLITS["test"], text
    assert int(test[1]) / int(test[2]) == pytest.approx(recorded, abs=1e-6), (text, recorded)

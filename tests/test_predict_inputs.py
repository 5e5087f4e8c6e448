"""``PrunedModel.prepare`` and ``prunetui predict`` for image-folder and CIFAR runs: a user's
images become exactly the tensors the run's evaluation fed the model.

The first tests check the transform itself against the data modules, with the metadata an
export records; the last ones go through a real run, ``prunetui export`` and ``prunetui
predict``, whose accuracy must be the run's recorded test accuracy.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from prunetui import config, store
from prunetui.cli import main
from prunetui.config import Config, DataConfig
from prunetui.data import load_data
from prunetui.data.cifar import FOLDERS
from prunetui.data.folder import list_folder
from prunetui.export import ExportError, load_pruned, prepare_images
from tests.test_cifar_data import NAMES, md5, write_cifar10
from tests.test_folder_data import make_folder, odd_files, pattern

SPLIT = (0.5, 0.25, 0.25)


def folder_cfg(root: Path, **data: Any) -> Config:
    values = {"dataset": "folder", "root": str(root), "image_size": 36, "crop": 32,
              "split": SPLIT, **data}
    return config.validate(Config(data=DataConfig(**values)))


def photo_meta(cfg: Config, data: Any) -> dict[str, Any]:
    """The metadata ``prepare`` reads, as an export of this run records it."""
    return {"config": config.to_dict(cfg), "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
            "input_normalization": {"mean": list(data.mean), "std": list(data.std)}}


def mixed_folder(root: Path) -> Path:
    """Three classes of 40x40 RGB PNGs, plus files of every size, mode and format in one."""
    make_folder(root, 3, 8, size=40, mode="RGB")
    for name, content in odd_files(root / "class1").items():
        (root / "class1" / name).write_bytes(content)
    return root


@contextmanager
def generated_cifar(root: Path) -> Iterator[None]:
    """torchvision's expected MD5s pointed at generated CIFAR-10 files, downloads refused
    (test-only: the user's path still needs the official checksums)."""
    folder = root / FOLDERS["cifar10"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")]
                                           for i in range(1, 6)])
        mp.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
        mp.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})

        def offline(self: Any) -> None:
            raise OSError("offline (test)")

        mp.setattr(CIFAR10, "download", offline)
        yield


def write_pngs(data: Any, out: Path, names: tuple[str, ...]) -> list[Path]:
    """The test images as PNG files in one folder per class name, in test-set order."""
    paths = []
    for i, (image, label) in enumerate(zip(data.test_x, data.test_y.tolist(), strict=True)):
        path = out / names[label] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    return paths


# --- the transform, against the data modules ---
@pytest.mark.parametrize("channels", [3, 1])
def test_folder_files_prepare_to_the_evaluation_tensors(tmp_path: Path, channels: int) -> None:
    root = mixed_folder(tmp_path / "imgs")
    cfg = folder_cfg(root, channels=channels)
    data = load_data(cfg)
    meta = photo_meta(cfg, data)
    listing = list_folder(root, SPLIT)
    assert not listing.skipped
    paths = [p for part in ("train", "validation", "test") for p, _ in listing.sets[part]]
    assert {p.suffix for p in paths} >= {".png", ".jpg", ".gif", ".pgm"}  # every odd file
    stored = torch.cat([data.train_x, data.val_x, data.test_x])
    expected = data.eval_input(stored)
    assert expected.shape[1:] == (channels, 32, 32)
    assert torch.equal(prepare_images(meta, paths), expected)
    assert torch.equal(prepare_images(meta, [str(p) for p in paths]), expected)
    assert torch.equal(prepare_images(meta, [Image.open(p) for p in paths]), expected)
    assert torch.equal(prepare_images(meta, stored), expected)  # as stored: N x C x S x S
    assert torch.equal(prepare_images(meta, stored.float()), expected)
    assert torch.equal(data.eval_input(data.test_x), prepare_images(
        meta, [p for p, _ in listing.sets["test"]]))


def test_folder_tensors_of_any_size_and_mode_are_decoded_as_files(tmp_path: Path) -> None:
    root = mixed_folder(tmp_path / "imgs")
    cfg = folder_cfg(root, channels=3)
    data = load_data(cfg)
    meta = photo_meta(cfg, data)
    rgb = Image.fromarray(np.stack([pattern(2, 1, 50)] * 3, axis=-1)).resize((60, 50))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(100)
    gray = rgb.convert("L")
    for name, im in (("rgb.png", rgb), ("rgba.png", rgba), ("gray.png", gray)):
        im.save(tmp_path / name)
    files = prepare_images(meta, [tmp_path / n for n in ("rgb.png", "rgba.png", "gray.png")])
    assert files.shape == (3, 3, 32, 32)

    def chw(im: Image.Image) -> torch.Tensor:
        a = torch.from_numpy(np.array(im))
        return a.permute(2, 0, 1) if a.dim() == 3 else a

    assert torch.equal(prepare_images(meta, chw(rgb)), files[:1])  # C x H x W, 60x50
    assert torch.equal(prepare_images(meta, chw(rgba)), files[1:2])  # alpha onto white
    assert torch.equal(prepare_images(meta, chw(gray)), files[2:])  # H x W gray
    assert torch.equal(prepare_images(meta, chw(rgb).float()[None]), files[:1])  # N x C x H x W


def test_cifar_images_prepare_to_the_evaluation_tensors(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=4, test=12)
    cfg = config.validate(Config(data=DataConfig(dataset="cifar10", root=str(tmp_path),
                                                 validation=4)))
    with generated_cifar(tmp_path):
        data = load_data(cfg)
    meta = {"config": config.to_dict(cfg)}  # CIFAR's normalization is the dataset's constant
    paths = write_pngs(data, tmp_path / "pngs", NAMES)
    expected = data.eval_input(data.test_x)
    assert expected.shape == (12, 3, 32, 32)
    assert torch.equal(prepare_images(meta, paths), expected)
    assert torch.equal(prepare_images(meta, data.test_x), expected)
    assert torch.equal(prepare_images(meta, [Image.open(p) for p in paths]), expected)
    big = Image.open(paths[0]).resize((64, 64), Image.Resampling.NEAREST)  # 2x2 blocks
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=95)
    assert prepare_images(meta, Image.open(buf)).shape == (1, 3, 32, 32)
    assert torch.equal(prepare_images(meta, big.convert("RGBA")), prepare_images(meta, big))


def test_unusable_inputs_and_exports_say_what_is_wrong(tmp_path: Path) -> None:
    root = mixed_folder(tmp_path / "imgs")
    cfg = folder_cfg(root, channels=3)
    data = load_data(cfg)
    meta = photo_meta(cfg, data)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ExportError, match=r"Cannot read the image .*notes.png"):
        prepare_images(meta, tmp_path / "notes.png")
    with pytest.raises(ExportError, match="No images given"):
        prepare_images(meta, [])
    with pytest.raises(ExportError, match="does not know its input normalization"):
        prepare_images({**meta, "input_normalization": None}, data.test_x)
    gray_stats = {"mean": 0.5, "std": 0.25}
    with pytest.raises(ExportError, match="for 1 channels, but its images have 3"):
        prepare_images({**meta, "input_normalization": gray_stats}, data.test_x)


# --- through a run, prunetui export and prunetui predict ---
def run_and_export(tmp_path: Path, overrides: dict[str, Any], capsys) -> tuple[Path, float]:
    """Run a tiny LeNet with ``overrides`` by the CLI, export round 1; the export and the
    round's recorded test accuracy."""
    values = {"model.arch": "lenet-300-100", "train.iterations": 6, "train.eval_every": 3,
              "train.batch_size": 8, "train.threads": 2, "prune.rounds": 1,
              "prune.schemes": ["rewind"], **overrides}
    args = ["run", "quick-folder", "--plain", "--no-estimate", "--out", str(tmp_path / "models"),
            "--name", "run"]
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0, capsys.readouterr().err
    run = store.RunDir(tmp_path / "models" / "run")
    out = tmp_path / "model.pt"
    assert main(["export", str(run.path), str(out), "--round", "1", "--scheme", "rewind"]) == 0
    rows = [r for r in run.metrics() if (r["round"], r["scheme"]) == (1, "rewind")]
    capsys.readouterr()
    return out, max(rows, key=lambda r: r["iteration"])["test_acc"]


def predicted(capsys, model: Path, *inputs: Path) -> str:
    assert main(["predict", str(model), *map(str, inputs), "--quiet"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_folder_run_exports_and_predicts_its_own_test_accuracy(tmp_path: Path, capsys) -> None:
    root = mixed_folder(tmp_path / "imgs")
    out, test_acc = run_and_export(tmp_path, {
        "data.root": root, "data.channels": 3, "data.image_size": 36, "data.crop": 32,
        "data.split": list(SPLIT)}, capsys)
    model = load_pruned(out)
    cfg = config.from_dict(model.meta["config"])
    data = load_data(cfg)
    listing = list_folder(root, SPLIT)
    assert torch.equal(model.prepare([p for p, _ in listing.sets["test"]]),
                       data.eval_input(data.test_x))
    text = predicted(capsys, out, root)
    test = re.search(r"test (\S+)% \((\d+)/(\d+)\)", text)
    assert test, text
    assert int(test[3]) == len(data.test_y), text
    assert int(test[2]) / int(test[3]) == pytest.approx(test_acc, abs=1e-6), text
    assert f"scored {100 * test_acc:.2f}% on the run's test set" in text


def test_cifar_run_exports_and_predicts_its_own_test_accuracy(tmp_path: Path, capsys) -> None:
    write_cifar10(tmp_path / "data", per_batch=12, test=40)
    with generated_cifar(tmp_path / "data"):
        out, test_acc = run_and_export(tmp_path, {
            "data.dataset": "cifar10", "data.root": tmp_path / "data",
            "data.validation": 10}, capsys)
        data = load_data(config.from_dict(load_pruned(out).meta["config"]))
    model = load_pruned(out)
    paths = write_pngs(data, tmp_path / "pngs", tuple(model.class_names))
    assert model.class_names == NAMES
    assert torch.equal(model.prepare(paths), data.eval_input(data.test_x))
    text = predicted(capsys, out, tmp_path / "pngs")
    accuracy = re.search(r"Accuracy: \S+% \((\d+) of (\d+) labelled images\)", text)
    assert accuracy and int(accuracy[2]) == 40, text
    assert int(accuracy[1]) / 40 == pytest.approx(test_acc, abs=1e-6), text

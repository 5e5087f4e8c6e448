"""Image folders (``data.dataset = "folder"``): splits, decoding of odd files, bad input, the
memory budget's streaming path, and a tiny end-to-end run."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunetui import config, store
from prunetui.cli import main
from prunetui.config import Config, DataConfig
from prunetui.data import DataError, load_data
from prunetui.data.facesplit import allocate
from prunetui.data.images import ImageData
from prunetui.data.stream import StreamedImageData
from prunetui.experiment import Experiment
from prunetui.nets.lenet import LeNet300100
from prunetui.store import new_run
from prunetui.training import evaluate
from tests.conftest import tiny_overrides


def pattern(label: int, index: int, size: int = 28) -> np.ndarray:
    """A noisy bright bar whose place tells the class: easy to learn, never two alike."""
    rng = np.random.default_rng(1000 * label + index)
    a = rng.integers(0, 60, (size, size)).astype(np.uint8)
    row = 2 + (label * (size - 6)) // 10
    a[row:row + 3, 2:size - 2] = 230
    return a


def make_folder(root: Path, classes: int, per_class: int, size: int = 28,
                mode: str = "L") -> Path:
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern(c, i, size)).convert(mode).save(folder / f"{i}.png")
    return root


def cfg(root: Path, **data) -> Config:
    values = {"dataset": "folder", "root": str(root), "image_size": 32, "crop": 28, **data}
    return config.validate(Config(data=DataConfig(**values)))


def test_split_by_data_split_is_per_class_and_deterministic(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 3, 10)
    (root / "class2" / "10.png").write_bytes((root / "class2" / "0.png").read_bytes())  # 11
    a = load_data(cfg(root))
    b = load_data(cfg(root))
    assert isinstance(a, ImageData) and a.storage == "resident"
    assert a.class_names == ("class0", "class1", "class2") and a.num_classes == 3
    expected = [allocate(n, (0.7, 0.15, 0.15), random.Random(f"0/class{c}"))
                for c, n in enumerate((10, 10, 11))]  # faces' per-person rule, per class
    for k, y in enumerate((a.train_y, a.val_y, a.test_y)):
        assert torch.bincount(y, minlength=3).tolist() == [e[k] for e in expected]
    assert [e[0] for e in expected] == [7, 7, 8]
    for part in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, part), getattr(b, part)), part
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape[1:] == (1, 32, 32)
    assert a.input_shape == (1, 28, 28)
    assert not (root / "split.json").exists()  # the user's folder is only read


def test_given_train_val_test_folders_are_used_as_given(tmp_path: Path) -> None:
    root = tmp_path / "given"
    make_folder(root / "train", 2, 5)
    make_folder(root / "val", 2, 2)
    make_folder(root / "test", 2, 3)
    data = load_data(cfg(root, split=[0.5, 0.25, 0.25]))
    assert data.class_names == ("class0", "class1")
    assert torch.bincount(data.train_y).tolist() == [5, 5]
    assert torch.bincount(data.val_y).tolist() == [2, 2]
    assert torch.bincount(data.test_y).tolist() == [3, 3]
    first = torch.from_numpy(np.array(Image.open(root / "test" / "class0" / "0.png")
                                        .resize((32, 32), Image.Resampling.BILINEAR)))
    assert torch.equal(data.test_x[0, 0], first)


def test_split_folders_must_all_be_there(tmp_path: Path) -> None:
    root = tmp_path / "given"
    make_folder(root / "train", 2, 5)
    make_folder(root / "test", 2, 3)
    with pytest.raises(DataError, match=r"data.root = .*val/"):
        load_data(cfg(root))


def odd_files(folder: Path) -> dict[str, bytes]:
    """Images of every size, mode and format, plus files that are not images."""
    def encoded(image: Image.Image, fmt: str) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt)
        return buf.getvalue()

    gray = Image.fromarray(pattern(1, 1, 40))
    rgb = Image.merge("RGB", (gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray))
    wide16 = Image.fromarray((pattern(1, 2, 30).astype(np.uint16) * 257)[:, :20])
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    return {
        "gray.png": encoded(gray, "PNG"), "photo.jpg": encoded(rgb.resize((50, 30)), "JPEG"),
        "plain.pgm": encoded(gray.resize((17, 23)), "PPM"), "deep16.png": encoded(wide16, "PNG"),
        "alpha.png": encoded(rgba, "PNG"), "palette.gif": encoded(rgb.convert("P"), "GIF"),
    }


def test_any_size_mode_and_format_becomes_the_stored_square(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 2, 4)
    for name, content in odd_files(root / "class1").items():
        (root / "class1" / name).write_bytes(content)
    for channels in (1, 3):
        data = load_data(cfg(root, channels=channels, image_size=24, crop=20,
                             split=[0.6, 0.2, 0.2]))
        assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 14
        assert not [n for n in data.notes if "skipped" in n]
        for x in (data.train_x, data.val_x, data.test_x):
            assert x.dtype == torch.uint8 and x.shape[1:] == (channels, 24, 24)
        assert data.input_shape == (channels, 20, 20)
        x, _ = data.train_batch(torch.arange(4), torch.Generator().manual_seed(0))
        assert x.shape == (4, channels, 20, 20) and x.dtype == torch.float32
        assert data.eval_input(data.val_x).shape[1:] == (channels, 20, 20)
        assert len(data.mean) == len(data.std) == channels


def test_corrupt_empty_and_non_image_files_are_skipped_and_reported(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 2, 6)
    (root / "class0" / "empty.png").write_bytes(b"")
    (root / "class0" / "notes.txt").write_text("not an image")
    good = (root / "class1" / "0.png").read_bytes()
    (root / "class1" / "cut.png").write_bytes(good[:len(good) // 2])
    (root / "class1" / ".hidden.png").write_bytes(good)
    (root / "class1" / "nested").mkdir()
    data = load_data(cfg(root))
    assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 12
    note = next(n for n in data.notes if "skipped" in n)
    for text in ("class0/empty.png", "class0/notes.txt", "class1/cut.png", "empty_file",
                 "not_an_image", "corrupt", "hidden", "subfolder"):
        assert text in note, text
    assert "resident" in data.notes[0]


@pytest.mark.parametrize("layout, message", [
    ({"a": 3, "b": 0}, r"data.root = .*class folder .*b holds no images"),
    ({"a": 5}, r"data.root = .*one class folder only \(a\)"),
    ({}, r"data.root = .*no class folders"),
])
def test_bad_folders_name_the_key_and_what_is_wrong(tmp_path: Path, layout, message) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for name, n in layout.items():
        (root / name).mkdir()
        for i in range(n):
            Image.fromarray(pattern(0, i)).save(root / name / f"{i}.png")
    with pytest.raises(DataError, match=message):
        load_data(cfg(root))


def test_too_few_images_for_the_split_names_data_split(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 2, 2)
    with pytest.raises(DataError, match=r"data.split = \[0.7, 0.15, 0.15\].*class0 \(2\)"):
        load_data(cfg(root))


def test_cli_run_on_an_empty_class_exits_2_before_any_work(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "imgs", 2, 3)
    (root / "empty").mkdir()
    out = tmp_path / "models"
    code = main(["run", "quick-folder", "--plain", "--out", str(out), "--name", "x",
                 "--set", f"data.root={root}"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "data.root" in err and "holds no images" in err, err
    assert "Traceback" not in err and not (out / "x").exists()


def test_streaming_gives_the_same_batches_as_resident(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", 4, 30, size=40, mode="RGB")  # 120 x 3 x 64 x 64: 1.4 MB
    settings = {"channels": 3, "image_size": 64, "crop": 56}
    resident = load_data(cfg(root, **settings))
    streamed = load_data(cfg(root, memory_budget_mb=1, **settings))
    assert isinstance(streamed, StreamedImageData) and streamed.storage == "streamed"
    assert "DataLoader" in streamed.notes[0] and "over the memory budget" in streamed.notes[0]
    assert (resident.mean, resident.std) == (streamed.mean, streamed.std)
    assert streamed.train_size == resident.train_size
    assert torch.equal(resident.train_y, streamed.train_y)
    batch = 16
    for epoch in range(2):  # consecutive slices of one permutation, as the training loop takes
        order = torch.randperm(resident.train_size, generator=torch.Generator().manual_seed(epoch))
        for b in range(resident.train_size // batch):
            idx = order[b * batch:(b + 1) * batch]
            seed = 1000 * epoch + b
            xr, yr = resident.train_batch(idx, torch.Generator().manual_seed(seed))
            xs, ys = streamed.train_batch(idx, torch.Generator().manual_seed(seed))
            assert torch.equal(xr, xs) and torch.equal(yr, ys), (epoch, b)
    assert streamed.reader is not None and streamed.reader.plan is not None  # read ahead
    xr, _ = resident.train_batch(torch.tensor([5, 0, 5]), torch.Generator().manual_seed(1))
    xs, _ = streamed.train_batch(torch.tensor([5, 0, 5]), torch.Generator().manual_seed(1))
    assert torch.equal(xr, xs)  # any index tensor, read directly
    for a, b in ((resident.val_x, streamed.val_x), (resident.test_x, streamed.test_x)):
        assert torch.equal(resident.eval_input(a[3:9]), streamed.eval_input(b[3:9]))
    model = LeNet300100(in_features=3 * 56 * 56, num_classes=4)
    assert evaluate(model, resident) == evaluate(model, streamed.to("cpu"))


def test_tiny_run_on_a_generated_folder_learns(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "digits", 10, 40)
    overrides = tiny_overrides(root, **{"data.dataset": "folder", "data.image_size": 28,
                                        "data.crop": 28, "prune.rounds": 1,
                                        "prune.schemes": ["rewind"]})
    cfg_ = config.apply_overrides(config.Config(), overrides)
    run = new_run(cfg_, tmp_path / "models", "folder")
    events = []
    assert Experiment(run, events.append).execute() == store.FINISHED
    rows = run.metrics()
    assert rows[-1]["test_acc"] > 0.6, rows[-1]  # chance: 0.1

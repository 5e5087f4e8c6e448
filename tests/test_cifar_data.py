"""CIFAR-10/100 through the real torchvision loading code, on small files in the real format
(pickled batches) that the tests write themselves.

torchvision checks each file's MD5 against the official release; the tests patch the class's
``train_list`` / ``test_list`` / ``meta`` checksums to those of the generated files (the user's
path is unchanged: real files must match the real checksums).
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from prunetui import config
from prunetui.cli import main
from prunetui.config import Config, DataConfig
from prunetui.data import DataError, load_data
from prunetui.data.cifar import FOLDERS, import_archive
from prunetui.data.images import ImageData
from prunetui.data.stream import StreamedImageData

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(root: Path, per_batch: int = 20, test: int = 30) -> dict[str, np.ndarray]:
    """data_batch_1..5, test_batch and batches.meta as the official archive pickles them."""
    folder = root / FOLDERS["cifar10"]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        entry = {"batch_label": name, "labels": labels, "data": data,
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        rows[name] = data
    meta = {"num_cases_per_batch": per_batch, "label_names": NAMES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return rows


@pytest.fixture
def generated_checksums(monkeypatch):
    """Point torchvision's expected MD5s at the generated files (test-only)."""
    def patch(root: Path) -> None:
        folder = root / FOLDERS["cifar10"]
        monkeypatch.setattr(CIFAR10, "train_list",
                            [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")]
                             for i in range(1, 6)])
        monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
        monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta,
                                              "md5": md5(folder / "batches.meta")})
    return patch


@pytest.fixture
def offline(monkeypatch):
    def no_network(self):
        raise URLError("offline (test)")
    monkeypatch.setattr(CIFAR10, "download", no_network)


def cfg(root: Path, **data) -> Config:
    values = {"dataset": "cifar10", "root": str(root), "validation": 10, **data}
    return config.validate(Config(data=DataConfig(**values)))


def test_cifar10_loads_through_torchvision(tmp_path, generated_checksums, offline) -> None:
    rows = write_cifar10(tmp_path)
    generated_checksums(tmp_path)
    data = load_data(cfg(tmp_path))
    assert isinstance(data, ImageData) and data.storage == "resident"
    assert data.name == "cifar10" and data.num_classes == 10 and data.class_names[0] == "airplane"
    assert (data.train_size, len(data.val_y), len(data.test_y)) == (90, 10, 30)
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape[1:] == (3, 32, 32)
    assert data.input_shape == (3, 32, 32)
    # CHW rows of the official layout (1024 red, 1024 green, 1024 blue values per image)
    assert torch.equal(data.test_x[3], torch.from_numpy(rows["test_batch"][3].reshape(3, 32, 32)))
    everything = torch.cat([data.train_x, data.val_x]).flatten(1)
    official = torch.from_numpy(np.concatenate([rows[f"data_batch_{i}"] for i in range(1, 6)]))
    assert sorted(map(tuple, everything.tolist())) == sorted(map(tuple, official.tolist()))
    assert "resident" in data.notes[0]


def test_augmentation_is_seeded_and_shape_preserving(tmp_path, generated_checksums,
                                                     offline) -> None:
    write_cifar10(tmp_path)
    generated_checksums(tmp_path)
    data = load_data(cfg(tmp_path))
    assert data.augmented and data.pad == 4 and data.crop == 32
    idx = torch.arange(16)
    a, ya = data.train_batch(idx, torch.Generator().manual_seed(7))
    b, _ = data.train_batch(idx, torch.Generator().manual_seed(7))
    c, _ = data.train_batch(idx, torch.Generator().manual_seed(8))
    assert a.shape == (16, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(ya, data.train_y[:16])
    plain = data.eval_input(data.train_x[:16])  # evaluation: no crop, no flip
    assert plain.shape == a.shape and not torch.equal(a, plain)
    # every augmented image is a shifted (and maybe flipped) window of the zero-padded image
    mean, std = data.channel_stats(torch.device("cpu"))
    zero = (0 - mean * 255) / (std * 255)
    padded = torch.nn.functional.pad(plain - zero, (4, 4, 4, 4)) + zero
    for i in range(16):
        windows = [padded[i, :, r:r + 32, s:s + 32] for r in range(9) for s in range(9)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.allclose(a[i], w, atol=1e-5) for w in windows), i


def test_missing_or_unverified_files_say_how_to_import(tmp_path, offline) -> None:
    with pytest.raises(DataError, match=r"prunetui data import cifar-10-python.tar.gz"):
        load_data(cfg(tmp_path))
    write_cifar10(tmp_path)  # right names, but not the official checksums
    with pytest.raises(DataError, match=r"data_batch_1.*test_batch.*batches.meta"):
        load_data(cfg(tmp_path))


def test_streaming_cifar_gives_the_resident_batches(tmp_path, generated_checksums,
                                                    offline) -> None:
    write_cifar10(tmp_path, per_batch=70, test=50)  # 400 x 3 KB: over a 1 MB budget
    generated_checksums(tmp_path)
    resident = load_data(cfg(tmp_path))
    streamed = load_data(cfg(tmp_path, memory_budget_mb=1))
    assert isinstance(streamed, StreamedImageData) and "streamed" in streamed.notes[0]
    order = torch.randperm(resident.train_size, generator=torch.Generator().manual_seed(3))
    for b in range(resident.train_size // 32):
        idx = order[b * 32:(b + 1) * 32]
        xr, yr = resident.train_batch(idx, torch.Generator().manual_seed(b))
        xs, ys = streamed.train_batch(idx, torch.Generator().manual_seed(b))
        assert torch.equal(xr, xs) and torch.equal(yr, ys)
    assert torch.equal(resident.eval_input(resident.test_x), streamed.eval_input(streamed.test_x))


def test_data_import_extracts_an_archive_offline(tmp_path, generated_checksums, capsys) -> None:
    write_cifar10(tmp_path / "src")
    generated_checksums(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / FOLDERS["cifar10"], arcname=FOLDERS["cifar10"])
    root = tmp_path / "data"
    assert main(["data", "import", str(archive), "--root", str(root)]) == 0
    assert "cifar10" in capsys.readouterr().out
    assert md5(root / FOLDERS["cifar10"] / "test_batch") == CIFAR10.test_list[0][1]
    assert load_data(cfg(root)).num_classes == 10
    assert import_archive(archive, root) == ("cifar10", root / FOLDERS["cifar10"])  # again


def test_data_import_refuses_other_archives(tmp_path, capsys) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("a")
    archive = tmp_path / "other.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="x")
    assert main(["data", "import", str(archive), "--root", str(tmp_path / "data")]) == 2
    assert "not a CIFAR archive" in " ".join(capsys.readouterr().err.split())
    (tmp_path / "bad.tar.gz").write_bytes(b"not gzip")
    assert main(["data", "import", str(tmp_path / "bad.tar.gz"), "--root", str(tmp_path)]) == 2

"""MNIST and Fashion-MNIST through torchvision's dataset classes and on-disk layout.

torchvision decodes the IDX files once; we keep only its ``data``/``targets`` tensors, normalize
them into one float tensor and never touch per-item transforms or a DataLoader (measured ~4x
slower per epoch on 2 cores). A seeded validation split is held out from the training set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.data.tensors import DataError, TensorData

if TYPE_CHECKING:  # torch is imported lazily: the app's Data screen uses the file checks
    import torch

    from prunetui.config import DataConfig

RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# Training-set pixel mean and std (of x/255), the usual constants for each dataset.
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
SPLIT_SEED = 0  # the validation split must not change with train.seed: same images every run


def raw_dir(root: str | Path, dataset: str) -> Path:
    return Path(root) / FOLDERS[dataset] / "raw"


def missing_files(root: str | Path, dataset: str) -> list[str]:
    """Raw files absent, or [] when present (extracted or compressed)."""
    raw = raw_dir(root, dataset)
    return [f for f in RAW_FILES if not (raw / f).exists() and not (raw / f[:-3]).exists()]


def missing_message(root: str | Path, dataset: str, reason: str) -> str:
    raw = raw_dir(root, dataset)
    files = ", ".join(RAW_FILES)
    flag = "" if dataset == "mnist" else f" --dataset {dataset}"
    return (f"{dataset} is not in {raw} and could not be downloaded ({reason}). Put the four IDX "
            f"files {files} into {raw}/ , or copy them from a folder that holds them with: "
            f"prunetui data import DIR --root {root}{flag}")


def _torchvision_class(dataset: str):
    from torchvision import datasets

    return datasets.MNIST if dataset == "mnist" else datasets.FashionMNIST


def extract_archives(root: str | Path, dataset: str) -> None:
    """Extract raw ``.gz`` files that are present but not yet extracted.

    torchvision only extracts archives whose MD5 matches the official release; copies that were
    recompressed (e.g. Debian's dataset-fashion-mnist) would otherwise send it to the network.
    Their content is still checked when torchvision parses the IDX headers.
    """
    from torchvision.datasets.utils import extract_archive

    raw = raw_dir(root, dataset)
    for name in RAW_FILES:
        target = raw / name[:-3]
        if (raw / name).is_file() and not target.is_file():
            # Extract beside the target, then rename: two runs starting together (a sweep, two
            # terminals) must never read each other's half-written file.
            with tempfile.TemporaryDirectory(dir=raw, prefix=".extract-") as tmp:
                extract_archive(str(raw / name), tmp)
                os.replace(Path(tmp) / target.name, target)


def _load_split(root: str | Path, dataset: str, train: bool):
    cls = _torchvision_class(dataset)
    try:
        extract_archives(root, dataset)
        # download=True is the real path for users online; with the files on disk it only
        # extracts them and never touches the network.
        return cls(str(root), train=train, download=True)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
        raise DataError(missing_message(root, dataset, type(err).__name__ + ": "
                                        + str(err).splitlines()[0][:200])) from err


def normalize(images: torch.Tensor, dataset: str) -> torch.Tensor:
    """Model input ``[N, 784]`` from 0-255 images ``[N, 28, 28]``, as training and evaluation
    see them."""
    mean, std = NORMALIZATION[dataset]
    return ((images.float() / 255.0 - mean) / std).flatten(1).contiguous()


def class_names(dataset: str) -> tuple[str, ...]:
    """Class names in label order: the digits "0".."9", or Fashion-MNIST's torchvision names."""
    return tuple(str(c).split(" - ")[0] for c in _torchvision_class(dataset).classes)


def load_mnist(cfg: DataConfig) -> TensorData:
    import torch

    train = _load_split(cfg.root, cfg.dataset, train=True)
    test = _load_split(cfg.root, cfg.dataset, train=False)
    x, y = normalize(train.data, cfg.dataset), train.targets.long()
    if cfg.validation >= len(x):
        raise DataError(f"data.validation = {cfg.validation} leaves no training images "
                        f"({len(x)} in the training set).")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:cfg.validation], order[cfg.validation:]
    if cfg.train_subset:
        train_idx = train_idx[:cfg.train_subset]
    return TensorData(
        name=cfg.dataset,
        num_classes=10,
        input_shape=(784,),
        train_x=x[train_idx].contiguous(),
        train_y=y[train_idx].contiguous(),
        val_x=x[val_idx].contiguous(),
        val_y=y[val_idx].contiguous(),
        test_x=normalize(test.data, cfg.dataset),
        test_y=test.targets.long(),
        class_names=class_names(cfg.dataset),
    )


def import_raw_files(src: str | Path, root: str | Path, dataset: str) -> list[Path]:
    """Copy the four IDX ``.gz`` files from ``src`` into ``root``'s torchvision layout."""
    src = Path(src)
    absent = [f for f in RAW_FILES if not (src / f).is_file()]
    if absent:
        raise DataError(f"{src} lacks {', '.join(absent)}; it must hold the four files "
                        f"{', '.join(RAW_FILES)}.")
    dst = raw_dir(root, dataset)
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in RAW_FILES:
        tmp = dst / f".{name}.tmp"
        shutil.copyfile(src / name, tmp)
        tmp.replace(dst / name)
        # A stale extracted file from another dataset would shadow the new archive.
        (dst / name[:-3]).unlink(missing_ok=True)
        copied.append(dst / name)
    return copied

"""Shared fixtures: real MNIST / Fashion-MNIST roots built from the offline copies.

Data sources: ``../shared/datasets/mnist-real`` beside the repository (or
``$PRUNETUI_SHARED_DATASETS/mnist-real``) and the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist`` or ``$PRUNETUI_FASHION_DIR``). Tests that need them are
skipped when they are absent, unless ``PRUNETUI_REQUIRE_DATA=1`` (set by CI), which turns the
skip into a failure so a CI machine without data cannot pass silently.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

import prunetui  # noqa: F401  (sets the OpenMP wait policy before any test imports torch)

REPO = Path(__file__).resolve().parents[1]
# Calibrations (launch estimates) and streamed datasets go under the cache folder: tests use
# their own, for this process and every run process they start, never the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="prunetui-test-cache-")
RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def shared_datasets() -> Path:
    return Path(os.environ.get("PRUNETUI_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


def fashion_source() -> Path:
    return Path(os.environ.get("PRUNETUI_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))


def need_data(path: Path, what: str) -> Path:
    if all((path / f).is_file() for f in RAW_FILES):
        return path
    message = f"{what} not found in {path}"
    if os.environ.get("PRUNETUI_REQUIRE_DATA") == "1":
        pytest.fail(message + " (PRUNETUI_REQUIRE_DATA=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A dataset root with MNIST and Fashion-MNIST laid out as torchvision expects."""
    root = tmp_path_factory.mktemp("data")
    for folder, src in (("MNIST", shared_datasets() / "mnist-real"),
                        ("FashionMNIST", fashion_source())):
        if all((src / f).is_file() for f in RAW_FILES):
            raw = root / folder / "raw"
            raw.mkdir(parents=True)
            for f in RAW_FILES:
                shutil.copyfile(src / f, raw / f)
    return root


@pytest.fixture(scope="session")
def mnist_full_root(data_root) -> Path:
    """MNIST as published: 60,000 training and 10,000 test images."""
    need_data(shared_datasets() / "mnist-real", "MNIST")
    return data_root


@pytest.fixture(scope="session")
def mnist_root(mnist_full_root, tmp_path_factory) -> Path:
    """Real MNIST, all 60,000 training images but only the first 500 of the test set (and
    Fashion-MNIST whole, when present). A test run evaluates often and an evaluation of 10,000
    images costs more than the short training it checks; 500 keep test accuracy meaningful."""
    root = tmp_path_factory.mktemp("mnist-short-test")
    for folder in ("MNIST", "FashionMNIST"):
        full, raw = mnist_full_root / folder / "raw", root / folder / "raw"
        if not full.is_dir():
            continue
        raw.mkdir(parents=True)
        for name in RAW_FILES:  # the .gz files only: torchvision reads an extracted copy first
            if folder == "MNIST" and name.startswith("t10k"):
                write_idx_head(full / name, raw / name, SHORT_TEST_IMAGES)
            else:
                shutil.copyfile(full / name, raw / name)
    return root


SHORT_TEST_IMAGES = 500


def write_idx_head(src: Path, dst: Path, count: int) -> None:
    """The first ``count`` items of a gzipped IDX file (header: magic, then one big-endian
    uint32 per dimension, the first being the item count)."""
    data = gzip.decompress(src.read_bytes())
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    item = math.prod(shape[1:])  # uint8 items: bytes per image or label
    header = data[:4] + struct.pack(f">{dims}I", count, *shape[1:])
    dst.write_bytes(gzip.compress(header + data[4 + 4 * dims:4 + 4 * dims + count * item]))


@pytest.fixture(scope="session")
def fashion_root(data_root) -> Path:
    need_data(fashion_source(), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    return data_root


def tiny_overrides(root: Path, **extra) -> list[tuple[str, object]]:
    """A LeNet run that takes about a second per segment."""
    values = {
        "data.root": str(root), "data.train_subset": 600, "data.validation": 500,
        "train.iterations": 30, "train.eval_every": 10, "train.batch_size": 60,
        "prune.rounds": 2, "prune.schemes": ["keep", "reinit", "rewind"],
        # Fixed: "auto" fits the count to the load when a run starts, and a reference run and
        # the run compared with it must sum floats the same way however busy the machine is.
        "train.threads": 2,
    }
    values.update(extra)
    return list(values.items())

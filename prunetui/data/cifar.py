"""CIFAR-10 and CIFAR-100 through torchvision's dataset classes and on-disk layout.

torchvision reads ``<root>/cifar-10-batches-py`` (``<root>/cifar-100-python``) after checking
every file's MD5 against the official release; online, the first run downloads and extracts the
archive, offline ``prunetui data import FILE.tar.gz`` extracts it. The images are kept as uint8
``[N, 3, 32, 32]`` (HWC -> CHW), a seeded validation set is held out of the training set as for
MNIST, and training uses the standard augmentation, a random 32x32 crop of the image padded by
4 pixels and a horizontal flip, done on the device
(:class:`~prunetui.data.images.ImageData`).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.data.images import ImageData
from prunetui.data.stream import budget_bytes, resident_note, stream_arrays, streamed_note
from prunetui.data.tensors import DataError

if TYPE_CHECKING:
    import torch

    from prunetui.config import Config

FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
# Training-set channel means and stds (of x/255), the usual constants.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
SIZE = 32  # stored and fed to the network whole: 3 x 32 x 32
PAD = 4
SPLIT_SEED = 0  # the validation split must not change with train.seed


def torchvision_class(dataset: str):
    from torchvision import datasets

    return datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100


def file_names(dataset: str) -> list[str]:
    cls = torchvision_class(dataset)
    return [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def folder(root: str | Path, dataset: str) -> Path:
    return Path(root) / FOLDERS[dataset]


def missing_files(root: str | Path, dataset: str) -> list[str]:
    """Files absent from the dataset folder ([] says nothing about their checksums)."""
    return [f for f in file_names(dataset) if not (folder(root, dataset) / f).is_file()]


def missing_message(root: str | Path, dataset: str, reason: str) -> str:
    where = folder(root, dataset)
    return (f"{dataset} is not usable in {where} and could not be downloaded ({reason}). "
            f"It needs {', '.join(file_names(dataset))} there, as the official archive "
            f"{ARCHIVES[dataset]} holds them; with that archive, run: prunetui data import "
            f"{ARCHIVES[dataset]} --root {root}")


def load_split(root: str | Path, dataset: str, train: bool):
    """torchvision's dataset: the files on disk when their checksums match, else a download."""
    cls = torchvision_class(dataset)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:  # not found or corrupted: torchvision downloads when online
        pass
    try:
        return cls(str(root), train=train, download=True)
    except Exception as err:  # URLError, RuntimeError (checksum), OSError...
        raise DataError(missing_message(root, dataset, type(err).__name__ + ": "
                                        + str(err).splitlines()[0][:200])) from err


def chw(images) -> torch.Tensor:
    """uint8 ``[N, 3, 32, 32]`` from torchvision's HWC numpy array."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def class_names(root: str | Path, dataset: str) -> tuple[str, ...] | None:
    """The class names in label order, from the dataset's meta file as torchvision reads it
    (``batches.meta`` / ``meta``); None when it cannot be read."""
    import pickle

    cls = torchvision_class(dataset)
    try:
        with (folder(root, dataset) / cls.meta["filename"]).open("rb") as fh:
            names = pickle.load(fh, encoding="latin1")[cls.meta["key"]]
        return tuple(str(n) for n in names)
    except Exception:  # why: missing, truncated or foreign file: the names are only a label
        return None


def load_cifar(cfg: Config) -> ImageData:
    import torch

    d = cfg.data
    train = load_split(d.root, d.dataset, train=True)
    test = load_split(d.root, d.dataset, train=False)
    x, y = chw(train.data), torch.tensor(train.targets, dtype=torch.long)
    if d.validation >= len(x):
        raise DataError(str(_validation_error(d.validation, len(x))))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:d.validation], order[d.validation:]
    if d.train_subset:
        train_idx = train_idx[:d.train_subset]
    mean, std = NORMALIZATION[d.dataset]
    data = ImageData(
        name=d.dataset, num_classes=len(train.classes), input_shape=(3, SIZE, SIZE),
        train_x=x[train_idx].contiguous(), train_y=y[train_idx].contiguous(),
        val_x=x[val_idx].contiguous(), val_y=y[val_idx].contiguous(),
        test_x=chw(test.data), test_y=torch.tensor(test.targets, dtype=torch.long),
        class_names=tuple(str(c) for c in train.classes), crop=SIZE, pad=PAD, mean=mean, std=std)
    nbytes = sum(t.numel() for t in (data.train_x, data.val_x, data.test_x))
    budget, how = budget_bytes(cfg)
    source = f"{d.dataset} {folder(d.root, d.dataset)}"
    if nbytes <= budget:
        return ImageData(**{**_fields(data), "notes": (resident_note(source, nbytes, budget,
                                                                      how),)})
    streamed = stream_arrays(data, "")
    note = streamed_note(source, nbytes, budget, how, streamed.reader)
    streamed.notes = (note,)
    return streamed


def _fields(data: ImageData) -> dict:
    import dataclasses

    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.init
            and f.name != "_stats"}


def _validation_error(validation: int, n: int):
    from prunetui.config import ConfigError

    return ConfigError("data.validation", validation,
                       f"leaves no training images ({n} in the training set)")


def import_archive(archive: str | Path, root: str | Path) -> tuple[str, Path]:
    """Extract an official CIFAR ``.tar.gz`` into ``root`` and check it as a run would.

    The dataset is told by the archive's top folder. Members are extracted with tarfile's
    ``data`` filter (no links out, no absolute paths) into a temporary folder beside the target,
    then renamed into place, so a failed import never leaves half a dataset.
    """
    archive, root = Path(archive), Path(root)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tops = {m.name.split("/")[0] for m in tar.getmembers() if m.name.strip("/")}
            dataset = next((k for k, v in FOLDERS.items() if v in tops), None)
            if dataset is None:
                raise DataError(f"{archive} is not a CIFAR archive: it holds {sorted(tops)[:5]}, "
                                f"not {' or '.join(FOLDERS.values())}/ (the python versions, "
                                f"{' or '.join(ARCHIVES.values())}).")
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=root, prefix=".import-") as tmp:
                tar.extractall(tmp, members=[m for m in tar.getmembers()
                                             if m.name.split("/")[0] == FOLDERS[dataset]],
                               filter="data")
                target = folder(root, dataset)
                if target.exists():
                    os.replace(target, Path(tmp) / "previous")  # removed with tmp
                os.replace(Path(tmp) / FOLDERS[dataset], target)
    except (tarfile.TarError, EOFError) as err:
        raise DataError(f"{archive} is not a readable .tar.gz archive ({err}).") from err
    cls = torchvision_class(dataset)
    try:
        cls(str(root), train=False, download=False)
    except RuntimeError as err:
        raise DataError(f"{archive} was extracted to {target}, but its files do not match "
                        f"the official {dataset} checksums ({err}); get "
                        f"{ARCHIVES[dataset]} from https://www.cs.toronto.edu/~kriz/cifar.html"
                        ) from err
    return dataset, target

"""The memory budget, and image sets too large for it, read from disk batch by batch.

``data.memory_budget_mb`` bounds the uint8 images kept on the training device; 0 sizes it from
what is free there (half of the free GPU memory, or half of the available RAM on CPU). A set
over the budget is written once, as uint8 rows, to files under the cache folder and read back
through a :class:`torch.utils.data.DataLoader` with workers.

:class:`StreamedImageData` keeps only row numbers in ``train_x`` / ``val_x`` / ``test_x`` (so
the training loop's slicing, lengths and device work unchanged) and the labels on the device.
The loop takes consecutive slices of one seeded permutation per epoch; when a batch is such a
slice, the reader sees the whole permutation (the slice's base) and has the DataLoader read
the epoch's next batches ahead in worker processes. Any other index tensor is read directly.
Either way a batch holds exactly the rows asked for, in order, and is cropped, flipped and
normalised by :class:`~prunetui.data.images.ImageData`'s code: for the same seed the batches
equal the resident path's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunetui.data.images import ImageData

if TYPE_CHECKING:
    import numpy as np
    import torch

    from prunetui.config import Config

AUTO_FRACTION = 0.5  # of the free device memory (or available RAM) that "auto" allows
MAX_WORKERS = 4
PREFETCH = 4  # batches each worker reads ahead


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prunetui" / "stream"


def available_ram() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def budget_bytes(cfg: Config) -> tuple[int, str]:
    """The budget in bytes, and how it was set (for the log)."""
    if cfg.data.memory_budget_mb:
        return cfg.data.memory_budget_mb << 20, "data.memory_budget_mb"
    import torch

    from prunetui.device import DeviceError, resolve_device

    try:
        device = resolve_device(cfg.train.device)
    except DeviceError:  # the run reports this itself; size the budget for the CPU meanwhile
        device = torch.device("cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * AUTO_FRACTION), f"auto: half of the {free >> 20} MB free on {device}"
    ram = available_ram()
    return int(ram * AUTO_FRACTION), f"auto: half of the {ram >> 20} MB of available RAM"


def resident_note(name: str, nbytes: int, budget: int, how: str) -> str:
    return (f"data: {name} resident on the training device, {nbytes / 2**20:.1f} MB as uint8 "
            f"(memory budget {budget >> 20} MB, {how})")


def workers() -> int:
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) - 1))


class RowFile:
    """A uint8 array ``[n, *shape]`` in a file, written once, then read by row numbers."""

    def __init__(self, path: Path, n: int, shape: tuple[int, ...]) -> None:
        import numpy as np

        self.path, self.n, self.shape = path, n, shape
        self.array: np.ndarray | None = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.uint8, shape=(max(n, 1), *shape))

    def finish(self, n: int) -> None:
        """Keep the first ``n`` rows (files skipped while decoding leave the rest unused)."""
        assert self.array is not None
        self.array.flush()
        self.array, self.n = None, n

    def open(self) -> np.ndarray:
        import numpy as np

        return np.load(self.path, mmap_mode="r")[:self.n]

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the file themselves
        return {"path": self.path, "n": self.n, "shape": self.shape, "array": None}


def new_folder() -> Path:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


class _Batches:
    """DataLoader items: batch ``i`` is the rows ``batches[i]`` of a :class:`RowFile`."""

    def __init__(self, rows: RowFile, batches: list[torch.Tensor]) -> None:
        self.rows, self.batches, self.array = rows, batches, None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        import numpy as np
        import torch

        if self.array is None:
            self.array = self.rows.open()
        return torch.from_numpy(np.ascontiguousarray(self.array[self.batches[i].numpy()]))


class Reader:
    """Reads training batches ahead along the epoch's permutation; owns the files."""

    def __init__(self, folder: Path, train: RowFile, evals: RowFile) -> None:
        self.folder, self.train, self.evals = folder, train, evals
        self.workers = workers()
        self.plan: tuple[Any, int, int, Any] | None = None  # (base, next offset, batch, iter)
        self.eval_array: np.ndarray | None = None
        weakref.finalize(self, shutil.rmtree, str(folder), True)

    def train_rows(self, idx: torch.Tensor) -> torch.Tensor:
        import torch

        base, offset = idx._base, idx.storage_offset()
        plan = self.plan
        if (base is None or idx.dim() != 1 or plan is None or plan[0] is not base
                or plan[1] != offset or plan[2] != len(idx)):
            plan = self._start(idx, base, offset)
        rows = next(plan[3], None) if plan is not None else None
        if rows is None:  # not a slice of a permutation, or the plan ran out: read directly
            self.plan = None
            return _Batches(self.train, [idx.cpu()])[0]
        self.plan = (plan[0], offset + len(idx), plan[2], plan[3])
        assert isinstance(rows, torch.Tensor)
        return rows

    def _start(self, idx: torch.Tensor, base: Any, offset: int) -> Any:
        if base is None or idx.dim() != 1 or base.dim() != 1 or len(idx) == 0:
            return None
        from torch.utils.data import DataLoader

        order, size = base.cpu(), len(idx)
        first = offset - base.storage_offset()
        batches = [order[o:o + size] for o in range(first, len(order) - size + 1, size)]
        loader = DataLoader(_Batches(self.train, batches), batch_size=None, shuffle=False,
                            num_workers=self.workers, prefetch_factor=PREFETCH)
        return (base, offset, size, iter(loader))

    def eval_rows(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np
        import torch

        if self.eval_array is None:
            self.eval_array = self.evals.open()
        rows = x.cpu().numpy()
        return torch.from_numpy(np.ascontiguousarray(self.eval_array[rows]))


@dataclass
class StreamedImageData(ImageData):
    """An :class:`ImageData` whose ``*_x`` are row numbers into files read by ``reader``."""

    reader: Reader | None = None

    @property
    def storage(self) -> str:
        return "streamed"

    def train_rows(self, idx: torch.Tensor) -> torch.Tensor:
        from prunetui.device import to_device

        assert self.reader is not None
        return to_device(self.reader.train_rows(idx), self.train_y.device)

    def eval_rows(self, x: torch.Tensor) -> torch.Tensor:
        from prunetui.device import to_device

        assert self.reader is not None
        return to_device(self.reader.eval_rows(x), x.device)


def streamed(data: ImageData, reader: Reader, note: str) -> StreamedImageData:
    """``data``'s labels and settings over the files of ``reader`` (val rows, then test rows,
    in its eval file)."""
    import dataclasses

    import torch

    n_val = len(data.val_y)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)
              if f.name != "_stats"}
    fields.update(train_x=torch.arange(reader.train.n), val_x=torch.arange(n_val),
                  test_x=torch.arange(n_val, n_val + len(data.test_y)),
                  notes=(note, *data.notes))
    return StreamedImageData(**fields, reader=reader)


def stream_arrays(data: ImageData, note: str) -> StreamedImageData:
    """Write a resident set's uint8 images to files and read them from there (CIFAR over the
    budget; tests compare the two paths on the same images)."""
    import torch

    folder = new_folder()
    shape = tuple(data.train_x.shape[1:])
    train = RowFile(folder / "train.npy", len(data.train_x), shape)
    evals = RowFile(folder / "eval.npy", len(data.val_x) + len(data.test_x), shape)
    assert train.array is not None and evals.array is not None
    train.array[:len(data.train_x)] = data.train_x.cpu().numpy()
    evals.array[:evals.n] = torch.cat([data.val_x, data.test_x]).cpu().numpy()
    train.finish(train.n)
    evals.finish(evals.n)
    return streamed(data, Reader(folder, train, evals), note)


def streamed_note(name: str, nbytes: int, budget: int, how: str, reader: Reader) -> str:
    return (f"data: {name} is {nbytes / 2**20:.1f} MB as uint8, over the memory budget of "
            f"{budget >> 20} MB ({how}): streamed from {reader.folder} through a DataLoader "
            f"with {reader.workers} workers")

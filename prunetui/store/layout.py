"""The run directory: one folder per experiment, and where each of its files lives.

```
models/<name>/
  config.toml       the validated config the run uses
  status.json       {"state": running|finished|interrupted|failed, "pid", "host", ...}
  metrics.jsonl     append-only, one JSON object per evaluation
  sparsity.jsonl    append-only, one object per (replicate, round, scheme): fraction left per layer
  runtime.json      threads and device the run chose (a resume reuses them)
  datafacts.json    its data as training saw them: input normalization, class names, shape
                    (written on the first start; export reads it, see store/datafacts.py)
  checkpoints/      resume.pt (the segment in progress), and per replicate
    r<replicate>/   init.pt (θ0), rewind-<K>.pt, round-<NN>-<scheme>.pt (finished segments)
```
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunetui.fileio import StoreError, atomic_write_text, disk_error
from prunetui.store import datafacts, jsonl, runtime, status
from prunetui.store.jsonl import LineProblem, Schema
from prunetui.store.rows import MetricRow, SparsityRecord

if TYPE_CHECKING:
    from prunetui.config import Config

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.jsonl"
SPARSITY_FILE = "sparsity.jsonl"
CHECKPOINT_DIR = "checkpoints"
FINAL_CHECKPOINTS = "r*/round-*.pt"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_run_name(name: str) -> str:
    if not _NAME_OK.match(name) or len(name) > 120:
        raise StoreError(f"Run name {name!r} is not usable: use letters, digits, '.', '_', '-', "
                         "'+' (at most 120 characters).")
    return name


def generated_name(dataset: str, arch: str, when: float | None = None) -> str:
    """``mnist-lenet-300-100-<time>``; ``torchvision:resnet18`` or ``mynets:small_cnn`` become
    usable folder names (``torchvision-resnet18``)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{dataset}-{re.sub(r'[^A-Za-z0-9._+-]+', '-', arch)}-{stamp}"


class RunDir:
    """Paths and file operations of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / CONFIG_FILE)
    status_path = property(lambda self: self.path / status.STATUS_FILE)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    sparsity_path = property(lambda self: self.path / SPARSITY_FILE)
    checkpoints = property(lambda self: self.path / CHECKPOINT_DIR)
    datafacts_path = property(lambda self: datafacts.facts_path(self.path))
    runtime_path = property(lambda self: self.path / runtime.RUNTIME_FILE)

    def exists(self) -> bool:
        try:
            return self.config_path.is_file()
        except OSError:  # a folder that cannot be searched (EACCES) is no usable run
            return False

    def relative(self, path: Path) -> str:
        """``path`` as shown to users: relative to the run directory where it is inside it."""
        try:
            return str(path.relative_to(self.path))
        except ValueError:
            return str(path)

    # --- checkpoints ---
    def replicate_dir(self, replicate: int) -> Path:
        return self.checkpoints / f"r{replicate}"

    def segment_checkpoint(self, replicate: int, round_: int, scheme: str) -> Path:
        safe = scheme.replace(":", "-")
        return self.replicate_dir(replicate) / f"round-{round_:02d}-{safe}.pt"

    def init_checkpoint(self, replicate: int) -> Path:
        return self.replicate_dir(replicate) / "init.pt"

    def rewind_checkpoint(self, replicate: int, iteration: int) -> Path:
        return self.replicate_dir(replicate) / f"rewind-{iteration}.pt"

    def resume_checkpoint(self) -> Path:
        return self.checkpoints / "resume.pt"

    def final_checkpoints(self) -> list[Path]:
        """Every finished segment's checkpoint on disk."""
        return sorted(self.checkpoints.glob(FINAL_CHECKPOINTS))

    def all_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.rglob("*.pt")) if self.checkpoints.is_dir() else []

    def set_aside(self) -> list[Path]:
        """Damaged copies an earlier resume moved aside (``<name>.damaged-<time>``)."""
        return sorted(p for p in self.path.rglob("*.damaged-*")
                      if not p.name.endswith(".sha256"))

    # --- status ---
    def write_status(self, state: str, message: str = "", pid: int | None = None) -> None:
        status.write_status(self.status_path, state, message, pid)

    def read_status(self) -> status.Status:
        return status.read_status(self.status_path, self.exists())

    # --- records ---
    def metrics(self) -> list[MetricRow]:
        return self.metrics_checked()[0]

    def sparsity(self) -> list[SparsityRecord]:
        return self.sparsity_checked()[0]

    def metrics_checked(self) -> tuple[list[MetricRow], list[LineProblem]]:
        """Usable metric rows and the damaged lines (see :func:`jsonl.read_jsonl_checked`)."""
        return self._checked(self.metrics_path, MetricRow)

    def sparsity_checked(self) -> tuple[list[SparsityRecord], list[LineProblem]]:
        return self._checked(self.sparsity_path, SparsityRecord)

    def _checked(self, path: Path, schema: Schema) -> tuple[list[Any], list[LineProblem]]:
        records, problems = jsonl.read_jsonl_checked(path, schema)
        # A torn last line is a kill mid-write while running; in a finished run it is damage.
        if jsonl.torn_tail(path) and self.read_status().state == status.FINISHED:
            line = jsonl.last_line_number(path)
            problems.append(LineProblem(path, line, "cut off (the run had finished)"))
        return records, problems

    def runtime(self) -> runtime.RuntimeRecord:
        """How the run trained: threads, device, precision ({} before its first start)."""
        return runtime.read_runtime(self.path)

    def config_text(self) -> str:
        return self.config_path.read_text(encoding="utf-8")

    def config(self) -> Config:
        from prunetui import config  # local: readers of run lists stay light

        return config.load(self.config_path)


def create_run(out_dir: str | Path, name: str, config_text: str) -> RunDir:
    """Make ``out_dir/name`` with its config; refuses to reuse an existing run directory."""
    check_run_name(name)
    run = RunDir(Path(out_dir) / name)
    if run.path.exists() and any(run.path.iterdir()):
        raise StoreError(f"{run.path} already exists. Choose another --name, or continue it "
                         f"with: prunetui run --resume {run.path}")
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise disk_error(run.path, err) from err
    atomic_write_text(run.config_path, config_text, checksum=True)
    return run


def unique_name(out_dir: str | Path, base: str) -> str:
    name, n = base, 1
    while (Path(out_dir) / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def list_runs(models_dir: str | Path) -> list[RunDir]:
    """Run directories under ``models_dir``, newest first."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime, reverse=True)


def new_run(cfg: Config, out_dir: str | Path = "models", name: str | None = None) -> RunDir:
    """Create a run directory for ``cfg`` (config written) without starting it."""
    from prunetui.config import dumps

    if name is None:
        name = unique_name(out_dir, generated_name(cfg.data.dataset, cfg.model.arch))
    return create_run(out_dir, name, dumps(cfg))

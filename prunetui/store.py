"""The run store: one directory per experiment, the single source of truth for results.

```
models/<name>/
  config.toml       the validated config the run uses
  status.json       {"state": running|finished|interrupted|failed, "pid", "host", ...}
  metrics.jsonl     append-only, one JSON object per evaluation
  sparsity.jsonl    append-only, one object per (replicate, round, scheme): fraction left per layer
  checkpoints/      r<replicate>/init.pt (theta0), rewind-<K>.pt, round-<NN>-<scheme>.pt, resume.pt
```

Readers (CLI ``runs``/``report``, the app) import no torch: only checkpoint I/O needs it, and
imports it lazily. Every file that is replaced is written atomically (temp file, fsync, rename),
so a kill or a full disk at any moment leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunetui.config import Config

CONFIG_FILE = "config.toml"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
SPARSITY_FILE = "sparsity.jsonl"
CHECKPOINT_DIR = "checkpoints"

RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"


class StoreError(RuntimeError):
    """A run directory cannot be read or written; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _disk_error(path: Path, err: OSError) -> StoreError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StoreError(f"Disk full while writing {path}; the previous version of this file is "
                          "intact. Free some space, then resume the run.")
    return StoreError(f"Cannot write {path}: {err.strerror or err}.")


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _disk_error(path, err) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    import io

    import torch

    # Serialize in memory first: torch.save straight into a file turns ENOSPC into an opaque
    # RuntimeError from its zip writer, and we want the plain OSError to report a full disk.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda fh: fh.write(buffer.getbuffer()))


def load_checkpoint(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise StoreError(f"Checkpoint {path} cannot be read ({err}).") from err


# ---------------------------------------------------------------------------------------------
# Append-only JSON lines


def append_jsonl(path: Path, record: dict[str, Any]) -> int:
    """Append one record, flushed; returns the file size after the write (a resume offset)."""
    line = json.dumps(record, separators=(",", ":")) + "\n"
    try:
        with path.open("ab") as fh:
            fh.write(line.encode("utf-8"))
            fh.flush()
            return fh.tell()
    except OSError as err:
        raise _disk_error(path, err) from err


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (killed mid-write) is ignored."""
    records, _ = read_jsonl_from(path, 0)
    return records


def read_jsonl_from(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Records from byte ``offset`` on, and the offset after the last complete line."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    records = []
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return records, offset + end


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (records written after the last checkpoint)."""
    if path.exists() and path.stat().st_size > size:
        with path.open("r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())


class JsonlTail:
    """Incremental reader of a growing JSON-lines file (for live views of a run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        if self.path.exists() and self.path.stat().st_size < self.offset:
            self.offset = 0  # truncated by a resume: read again from the start
        records, self.offset = read_jsonl_from(self.path, self.offset)
        return records


# ---------------------------------------------------------------------------------------------
# Status


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); look at its state where /proc exists.
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(") ")[-1][:1] != "Z"
    return True


@dataclass
class Status:
    state: str
    pid: int | None = None
    host: str = ""
    updated: float = 0.0
    message: str = ""

    @property
    def effective_state(self) -> str:
        """``running`` only while the recorded process is alive (on this host)."""
        if self.state != RUNNING or self.pid is None:
            return self.state
        if self.host and self.host != socket.gethostname():
            return RUNNING  # cannot check another machine's processes
        return RUNNING if pid_alive(self.pid) else INTERRUPTED


# ---------------------------------------------------------------------------------------------
# Run directories


_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_run_name(name: str) -> str:
    if not _NAME_OK.match(name) or len(name) > 120:
        raise StoreError(f"Run name {name!r} is not usable: use letters, digits, '.', '_', '-', "
                         "'+' (at most 120 characters).")
    return name


def generated_name(dataset: str, arch: str, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{dataset}-{arch}-{stamp}"


class RunDir:
    """Paths and file operations of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / CONFIG_FILE)
    status_path = property(lambda self: self.path / STATUS_FILE)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    sparsity_path = property(lambda self: self.path / SPARSITY_FILE)
    checkpoints = property(lambda self: self.path / CHECKPOINT_DIR)

    def exists(self) -> bool:
        return self.config_path.is_file()

    def replicate_dir(self, replicate: int) -> Path:
        return self.checkpoints / f"r{replicate}"

    def segment_checkpoint(self, replicate: int, round_: int, scheme: str) -> Path:
        safe = scheme.replace(":", "-")
        return self.replicate_dir(replicate) / f"round-{round_:02d}-{safe}.pt"

    def resume_checkpoint(self) -> Path:
        return self.checkpoints / "resume.pt"

    # --- status ---
    def write_status(self, state: str, message: str = "", pid: int | None = None) -> None:
        status = {
            "state": state,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname(),
            "updated": time.time(),
            "message": message,
        }
        atomic_write_text(self.status_path, json.dumps(status, indent=1) + "\n")

    def read_status(self) -> Status:
        try:
            raw = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return Status(state=INTERRUPTED if self.exists() else "missing")
        return Status(state=raw.get("state", "unknown"), pid=raw.get("pid"),
                      host=raw.get("host", ""), updated=raw.get("updated", 0.0),
                      message=raw.get("message", ""))

    # --- records ---
    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def sparsity(self) -> list[dict[str, Any]]:
        return read_jsonl(self.sparsity_path)

    def config_text(self) -> str:
        return self.config_path.read_text(encoding="utf-8")

    def config(self):  # -> Config (import kept local so readers stay light)
        from prunetui import config

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
        raise _disk_error(run.path, err) from err
    atomic_write_text(run.config_path, config_text)
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

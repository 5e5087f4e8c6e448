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
import functools
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

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


class CannotResume(StoreError):
    """Damage a resume cannot repair; the message says what is lost and what still works (it
    must not suggest the same resume again)."""


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


def atomic_write_text(path: Path, text: str, checksum: bool = False) -> None:
    data = text.encode("utf-8")
    if checksum:
        write_checked(path, data)
    else:
        atomic_write(path, lambda fh: fh.write(data))


# ---------------------------------------------------------------------------------------------
# Checksums: a sidecar ``<file>.sha256`` beside each checkpoint and run file.
#
# The sidecar is written before the file (listing the new digest and the old ones) and again
# after it (the new one only), so a kill at any moment leaves a file that matches. A file with
# no sidecar (older runs) is "unverified": readers try to load it.

INTACT, DAMAGED, MISSING, UNVERIFIED = "intact", "damaged", "missing", "unverified"
SIDECAR = ".sha256"


class DamagedFile(StoreError):
    """A file fails its checksum or cannot be parsed."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged ({reason}).")
        self.path = path
        self.reason = reason


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def recorded_digests(path: Path) -> list[str] | None:
    """Digests the sidecar accepts for ``path``; None without a usable sidecar."""
    try:
        words = sidecar(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    digests = [w for w in words if _HEX64.match(w)]
    return digests or None


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def write_checked(path: Path, data: bytes | memoryview) -> None:
    """Atomically write ``data`` to ``path`` and its sidecar.

    The sidecar first lists the new digest beside those it already accepts, so whichever
    version a kill leaves in ``path`` still verifies; once the file is in place it lists only
    the new digest (however many kills came in between).
    """
    digest = sha256(data)
    _write_sidecar(path, [digest, *(recorded_digests(path) or [])])
    atomic_write(path, lambda fh: fh.write(data))
    _write_sidecar(path, [digest])


def _write_sidecar(path: Path, digests: list[str]) -> None:
    unique = list(dict.fromkeys(digests))
    lines = "".join(f"{d}  {path.name}\n" for d in unique)
    atomic_write(sidecar(path), lambda fh: fh.write(lines.encode("ascii")))


def verify(path: Path, data: bytes | None = None) -> str:
    """INTACT, DAMAGED (digest mismatch), MISSING or UNVERIFIED (no sidecar) for ``path``."""
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return MISSING
        except OSError:
            return DAMAGED
    digests = recorded_digests(path)
    if digests is None:
        return UNVERIFIED
    return INTACT if sha256(data) in digests else DAMAGED


def move_aside(path: Path) -> Path | None:
    """Rename a damaged file (and its sidecar) to ``<name>.damaged-<time>``; never deletes."""
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    os.replace(path, target)
    if sidecar(path).exists():
        os.replace(sidecar(path), sidecar(target))
    return target


def remove_checked(path: Path) -> None:
    """Delete a file that is no longer needed (resume.pt at the end) with its sidecar."""
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    write_checked(path, checkpoint_bytes(state))


def checkpoint_bytes(state: dict[str, Any]) -> memoryview:
    """``torch.save`` in memory: straight into a file it turns ENOSPC into an opaque
    RuntimeError from its zip writer, and we want the plain OSError to report a full disk."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint after checking its digest; DamagedFile when it is not intact."""
    import io

    import torch

    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise StoreError(f"Checkpoint {path} is missing.") from err
    except OSError as err:
        raise DamagedFile(path, err.strerror or str(err)) from err
    if verify(path, data) == DAMAGED:
        raise DamagedFile(path, "checksum mismatch")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad archive; all mean damage
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DamagedFile(path, f"cannot be read: {reason}") from err
    if not isinstance(state, dict):
        raise DamagedFile(path, "not a checkpoint")
    return state


# ---------------------------------------------------------------------------------------------
# Append-only JSON lines


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One record as the bytes of its line (the one encoding writers and digests share)."""
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def append_line(path: Path, line: bytes) -> int:
    """Append one encoded line, flushed; returns the file size after the write (an offset)."""
    try:
        with path.open("ab") as fh:
            fh.write(line)
            fh.flush()
            return fh.tell()
    except OSError as err:
        raise _disk_error(path, err) from err


def append_jsonl(path: Path, record: dict[str, Any]) -> int:
    """Append one record; returns the file size after the write (a resume offset)."""
    return append_line(path, jsonl_line(record))


# Keys (and their JSON types) a row needs before readers can use it; a row without them is
# reported as damaged, like a line that is not JSON.
_NUMBER = (int, float)
METRICS_KEYS: dict[str, type | tuple[type, ...]] = {
    "replicate": int, "round": int, "scheme": str, "iteration": int, "remaining": _NUMBER,
    "val_loss": _NUMBER, "val_acc": _NUMBER, "test_acc": _NUMBER,
}
SPARSITY_KEYS: dict[str, type | tuple[type, ...]] = {
    "replicate": int, "round": int, "scheme": str, "remaining": _NUMBER, "layers": dict,
    "counts": dict,
}
Required = dict[str, type | tuple[type, ...]]


@dataclass(frozen=True)
class LineProblem:
    """A damaged line of a JSON-lines file; readers warn about it and use the other lines."""

    path: Path
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name} line {self.line}: {self.reason}"


def _row_problem(record: Any, required: Required | None) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    if required:
        for key, kind in required.items():
            value = record.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                return f"{key!r} missing" if value is None else f"{key!r} is not a {_kind(kind)}"
    return None


def _kind(kind: type | tuple[type, ...]) -> str:
    return "number" if kind == _NUMBER else getattr(kind, "__name__", str(kind))


def _parse(path: Path, data: bytes, first_line: int, required: Required | None
           ) -> tuple[list[dict[str, Any]], list[LineProblem]]:
    """Records and damaged lines of ``data`` (complete lines only), numbered from first_line.

    msgspec decodes a line about 6x faster than json (a 200,000-row report stays well under
    2 s); json.loads still reads what msgspec refuses but Python writes (NaN, Infinity).
    """
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[LineProblem] = []
    decode, slow = _DECODER.decode, json.loads
    for number, line in enumerate(data.split(b"\n"), first_line):
        try:
            record = decode(line)
        except msgspec.DecodeError:
            if not line.strip():
                continue
            try:
                record = slow(line)
            except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
                problems.append(LineProblem(path, number, "not valid JSON"))
                continue
        records.append(record)
        numbers.append(number)
    valid = _all_valid(records, required) if required else all(type(r) is dict for r in records)
    if not valid:
        good = []
        for number, record in zip(numbers, records, strict=True):
            reason = _row_problem(record, required)
            if reason is None:
                good.append(record)
            else:
                problems.append(LineProblem(path, number, reason))
        problems.sort(key=lambda p: p.line)
        records = good
    return records, problems


_DECODER = msgspec.json.Decoder()


@functools.cache
def _row_type(required: tuple[tuple[str, Any], ...]) -> Any:
    fields = [(key, float if kind == _NUMBER else kind) for key, kind in required]
    return list[msgspec.defstruct("Row", fields)]  # type: ignore[misc]


def _all_valid(records: list[Any], required: Required) -> bool:
    """One C-level pass over every row (the per-row check below runs only when this fails)."""
    try:
        msgspec.convert(records, _row_type(tuple(required.items())))
    except msgspec.ValidationError:
        return False
    return True


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (killed mid-write) is ignored, so are bad lines."""
    records, _ = read_jsonl_from(path, 0)
    return records


def read_jsonl_checked(path: Path, required: Required | None = None
                       ) -> tuple[list[dict[str, Any]], list[LineProblem]]:
    """Good records and the damaged lines (not JSON, or missing a ``required`` key).

    A torn last line without its newline is not reported: that is a kill mid-write, and the
    next resume cuts it off.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as err:  # a directory in its place, no permission...
        return [], [LineProblem(path, 1, f"cannot be read ({err.strerror or err})")]
    end = data.rfind(b"\n")
    return _parse(path, data[:end], 1, required) if end >= 0 else ([], [])


def torn_tail(path: Path) -> bool:
    """Whether ``path`` ends in a line without its newline."""
    try:
        with path.open("rb") as fh:
            if fh.seek(0, os.SEEK_END) == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def read_jsonl_from(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Records from byte ``offset`` on, and the offset after the last complete line."""
    records, end, _, _ = _read_from(path, offset, 1, None)
    return records, end


def _read_from(path: Path, offset: int, first_line: int, required: Required | None
               ) -> tuple[list[dict[str, Any]], int, int, list[LineProblem]]:
    """Records, new offset, number of complete lines read, and damaged lines from ``offset``."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset, 0, []
    except OSError as err:
        return [], offset, 0, [LineProblem(path, first_line,
                                           f"cannot be read ({err.strerror or err})")]
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset, 0, []
    chunk = data[:end]
    records, problems = _parse(path, chunk, first_line, required)
    return records, offset + end + 1, chunk.count(b"\n") + 1, problems


def prefix_digest(path: Path, size: int) -> str | None:
    """SHA-256 of the first ``size`` bytes of ``path``; None when the file is shorter."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            left = size
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    return None
                digest.update(chunk)
                left -= len(chunk)
    except FileNotFoundError:
        return None if size else digest.hexdigest()
    return digest.hexdigest()


class JsonlLog:
    """Appends to a JSON-lines file and keeps a running SHA-256 of its content, which
    checkpoints record so a resume can tell whether the file up to their offset is intact."""

    def __init__(self, path: Path, size: int) -> None:
        """Continue ``path``, already cut back to ``size`` bytes (and checked)."""
        self.path = path
        self.offset = size
        self._hash = hashlib.sha256()
        if size:
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    self._hash.update(chunk)

    def append(self, record: dict[str, Any]) -> int:
        line = jsonl_line(record)
        self.offset = append_line(self.path, line)
        self._hash.update(line)
        return self.offset

    def digest(self) -> str:
        return self._hash.hexdigest()


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    """The bytes :class:`JsonlLog` writes for ``records`` (to rebuild a damaged file)."""
    return b"".join(jsonl_line(r) for r in records)


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (records written after the last checkpoint)."""
    if path.exists() and path.stat().st_size > size:
        with path.open("r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())


class JsonlTail:
    """Incremental reader of a growing JSON-lines file (for live views of a run).

    Damaged lines are skipped; :meth:`read_new_checked` returns them, and ``problems`` keeps
    all those seen since the file was last read from its start.
    """

    def __init__(self, path: Path, required: Required | None = None) -> None:
        self.path = path
        self.required = required
        self.offset = 0
        self.lines = 0  # complete lines read so far (line numbers of problems)
        self.problems: list[LineProblem] = []

    def read_new(self) -> list[dict[str, Any]]:
        records, _ = self.read_new_checked()
        return records

    def read_new_checked(self) -> tuple[list[dict[str, Any]], list[LineProblem]]:
        if self.path.exists() and self.path.stat().st_size < self.offset:
            # truncated by a resume: read again from the start
            self.offset, self.lines, self.problems = 0, 0, []
        if self.offset == 0:
            self.lines = 0
        records, self.offset, count, problems = _read_from(self.path, self.offset,
                                                           self.lines + 1, self.required)
        self.lines += count
        if problems and not count and problems[0] in self.problems:
            problems = []  # still unreadable: said once
        self.problems.extend(problems)
        return records, problems


# ---------------------------------------------------------------------------------------------
# Status


def files_signature(paths: Iterable[Path]) -> tuple:
    """(size, mtime) of each path, None where missing: tells a cached summary it is stale."""
    sig = []
    for path in paths:
        try:
            st = path.stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except OSError:
            sig.append(None)
    return tuple(sig)


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
        atomic_write_text(self.status_path, json.dumps(status, indent=1) + "\n", checksum=True)

    def read_status(self) -> Status:
        """The recorded status; a damaged status.json reads as interrupted (resume repairs it)."""
        for _ in range(2):  # a writer may replace file and sidecar between our two reads
            try:
                data = self.status_path.read_bytes()
            except OSError:
                return Status(state=INTERRUPTED if self.exists() else "missing")
            if verify(self.status_path, data) != DAMAGED:
                break
        else:
            return Status(state=INTERRUPTED, message=f"{STATUS_FILE} is damaged")
        try:
            raw = json.loads(data)
            status = Status(state=raw.get("state", "unknown"), pid=raw.get("pid"),
                            host=raw.get("host", ""), updated=raw.get("updated", 0.0),
                            message=raw.get("message", ""))
        except (ValueError, AttributeError):  # not JSON, or not an object
            return Status(state=INTERRUPTED, message=f"{STATUS_FILE} is damaged")
        typed = (isinstance(status.state, str) and isinstance(status.host, str)
                 and isinstance(status.message, str) and isinstance(status.updated, int | float)
                 and (status.pid is None or type(status.pid) is int))
        return status if typed else Status(state=INTERRUPTED,
                                           message=f"{STATUS_FILE} is damaged")

    # --- records ---
    def metrics(self) -> list[dict[str, Any]]:
        return self.metrics_checked()[0]

    def sparsity(self) -> list[dict[str, Any]]:
        return self.sparsity_checked()[0]

    def metrics_checked(self) -> tuple[list[dict[str, Any]], list[LineProblem]]:
        """Usable metric rows and the damaged lines (see :func:`read_jsonl_checked`)."""
        return self._checked(self.metrics_path, METRICS_KEYS)

    def sparsity_checked(self) -> tuple[list[dict[str, Any]], list[LineProblem]]:
        return self._checked(self.sparsity_path, SPARSITY_KEYS)

    def metrics_tail(self) -> JsonlTail:
        return JsonlTail(self.metrics_path, METRICS_KEYS)

    def sparsity_tail(self) -> JsonlTail:
        return JsonlTail(self.sparsity_path, SPARSITY_KEYS)

    def _checked(self, path: Path, required: Required
                 ) -> tuple[list[dict[str, Any]], list[LineProblem]]:
        records, problems = read_jsonl_checked(path, required)
        # A torn last line is a kill mid-write while running; in a finished run it is damage.
        if torn_tail(path) and self.read_status().state == FINISHED:
            line = _last_line_number(path)
            problems.append(LineProblem(path, line, "cut off (the run had finished)"))
        return records, problems

    def config_text(self) -> str:
        return self.config_path.read_text(encoding="utf-8")

    def config(self):  # -> Config (import kept local so readers stay light)
        from prunetui import config

        return config.load(self.config_path)


def _last_line_number(path: Path) -> int:
    """Line number of the last line of ``path`` (1-based)."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + 1


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

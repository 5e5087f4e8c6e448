"""Files that survive a kill or a full disk: atomic writes, SHA-256 sidecars, verification.

Every file that is replaced is written atomically (temp file, fsync, rename), so a kill or a
full disk at any moment leaves the previous version intact. Checksummed files get a sidecar
``<file>.sha256``, written before the file (listing the new digest and the old ones) and again
after it (the new one only), so a kill at any moment leaves a file that matches. A file with no
sidecar (older runs) is "unverified": readers try to load it.

No prunetui imports: everything else builds on this module.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

INTACT, DAMAGED, MISSING, UNVERIFIED = "intact", "damaged", "missing", "unverified"
SIDECAR = ".sha256"


class StoreError(RuntimeError):
    """A run directory cannot be read or written; the message says what to do."""


class DamagedFile(StoreError):
    """A file fails its checksum or cannot be parsed."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged ({reason}).")
        self.path = path
        self.reason = reason


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


def disk_error(path: Path, err: OSError) -> StoreError:
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
        raise disk_error(path, err) from err
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
# Checksums

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



# ---------------------------------------------------------------------------------------------
# Append-only files

def append_line(path: Path, line: bytes) -> int:
    """Append one encoded line, flushed; returns the file size after the write (an offset)."""
    try:
        with path.open("ab") as fh:
            fh.write(line)
            fh.flush()
            return fh.tell()
    except OSError as err:
        raise disk_error(path, err) from err


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



def truncate(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (records written after the last checkpoint)."""
    if path.exists() and path.stat().st_size > size:
        with path.open("r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())



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

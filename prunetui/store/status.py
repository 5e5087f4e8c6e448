"""A run's state in ``status.json``: running, finished, interrupted or failed, and by whom.

:func:`read_status` is the one reader: whatever the file holds (damaged, not JSON, the wrong
types), it returns a usable :class:`Status`, reading as interrupted when in doubt (a resume
repairs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from prunetui.fileio import DAMAGED, atomic_write_text, verify

STATUS_FILE = "status.json"
RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"
DAMAGED_MESSAGE = f"{STATUS_FILE} is damaged"


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



def write_status(path: Path, state: str, message: str = "", pid: int | None = None) -> None:
    status = {
        "state": state,
        "pid": os.getpid() if pid is None else pid,
        "host": socket.gethostname(),
        "updated": time.time(),
        "message": message,
    }
    atomic_write_text(path, json.dumps(status, indent=1) + "\n", checksum=True)


def read_status(path: Path, run_exists: bool) -> Status:
    """The recorded status; a damaged status.json reads as interrupted (resume repairs it)."""
    for _ in range(2):  # a writer may replace file and sidecar between our two reads
        try:
            data = path.read_bytes()
        except OSError:
            return Status(state=INTERRUPTED if run_exists else "missing")
        if verify(path, data) != DAMAGED:
            break
    else:
        return Status(state=INTERRUPTED, message=DAMAGED_MESSAGE)
    try:
        raw = json.loads(data)
        status = Status(state=raw.get("state", "unknown"), pid=raw.get("pid"),
                        host=raw.get("host", ""), updated=raw.get("updated", 0.0),
                        message=raw.get("message", ""))
    except (ValueError, AttributeError):  # not JSON, or not an object
        return Status(state=INTERRUPTED, message=DAMAGED_MESSAGE)
    return status if _well_typed(status) else Status(state=INTERRUPTED, message=DAMAGED_MESSAGE)


def _well_typed(status: Status) -> bool:
    """Types prunetui writes; ``updated`` is always set (a bare ``{}`` is not a status), and a
    pid must be one ``os.kill`` can check (0 or negative would signal a process group)."""
    pid = status.pid
    return (isinstance(status.state, str) and isinstance(status.host, str)
            and isinstance(status.message, str) and isinstance(status.updated, int | float)
            and not isinstance(status.updated, bool) and status.updated > 0
            and (pid is None or (type(pid) is int and 0 < pid < 1 << 31)))

"""Run an experiment in its own process, detached from the terminal (survives an SSH drop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prunetui.store import RUNNING, RunDir

LOG_FILE = "run.log"


def spawn_detached(run_dir: str | Path) -> int:
    """Start ``prunetui run --resume RUN_DIR`` in a new session; returns its pid.

    The child has its own session (no controlling terminal, so no SIGHUP when the terminal
    goes), stdin from /dev/null and output appended to ``RUN_DIR/run.log``. Its progress is
    read back from the run store like any other run.
    """
    return start_run_process(Path(run_dir)).pid


def start_run_process(run_dir: Path, **popen_kw) -> subprocess.Popen:
    """``prunetui run --resume RUN_DIR --plain`` in its own session, output appended to
    ``RUN_DIR/run.log``; ``popen_kw`` adds e.g. env, cwd, preexec_fn (sweep workers)."""
    with (run_dir / LOG_FILE).open("ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            [sys.executable, "-m", "prunetui", "run", "--resume", str(run_dir), "--plain"],
            stdin=devnull, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True, **popen_kw,
        )
    # Mark it running at once (the child takes seconds to import torch) so a reader never
    # sees a fresh run as interrupted; the child rewrites the same pid when it starts.
    RunDir(run_dir).write_status(RUNNING, pid=child.pid)
    return child

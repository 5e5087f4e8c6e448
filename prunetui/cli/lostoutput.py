"""A foreground run whose output goes away keeps its work: it stops as on Ctrl-C.

``prunetui run ... | head`` closes the pipe after a few lines; the terminal of a dropped SSH
session fails every write. Rich answers a closed pipe with ``SystemExit(1)``, which ended the
run as "failed" in the middle of a segment. Now the view stops printing and asks the run to
stop: it checkpoints, is marked interrupted, and ``prunetui run --resume`` continues it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from rich.console import Console

from prunetui.control import RunControl


class OutputLost(OSError):
    """The stream a run printed to is gone (a closed pipe)."""


class RunConsole(Console):
    """Rich's console, raising :class:`OutputLost` on a closed pipe instead of exiting."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):  # Python's own flush at exit goes nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())
        raise OutputLost("the pipe it wrote to was closed")


class StopWhenOutputLost:
    """Wraps a run's view: the first write that fails silences it and stops the run."""

    def __init__(self, view: Any, out: Console, err: Console, control: RunControl,
                 resume_command: str) -> None:
        self.view, self.out, self.err, self.control = view, out, err, control
        self.resume_command = resume_command
        self.lost = False

    def __enter__(self) -> StopWhenOutputLost:
        self._guarded(self.view.__enter__)
        return self

    def __exit__(self, *exc: object) -> None:
        self._guarded(self.view.__exit__, *exc)

    def __call__(self, event: Any) -> None:
        if not self.lost:
            self._guarded(self.view, event)

    def _guarded(self, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except OSError as err:  # OutputLost, or EIO from a terminal that hung up
            if self.lost:
                return
            self.lost, self.out.quiet = True, True
            self.control.request_stop()
            with contextlib.suppress(Exception):  # stderr may be gone too (2>&1): OutputLost
                self.err.print(f"Output closed ({err.strerror or err}): checkpointing and "
                               f"stopping. Resume with: {self.resume_command}", highlight=False,
                               soft_wrap=True)

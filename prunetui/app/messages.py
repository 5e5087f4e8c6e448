"""Messages that carry work done off the event loop back to the widgets.

Worker threads never touch the DOM: they post one of these (``post_message`` is thread-safe)
and the handler runs on the event loop. Each carries plain, immutable values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # annotations only: the first screen posts RunsScanned, never an Event
    from prunetui.events import Event


class EngineEvent(Message):
    """One engine event of the run trained in this app (progress, log lines, lifecycle)."""

    def __init__(self, run_dir: str, event: Event) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.event = event


class RunEnded(Message):
    """The in-app training worker returned (``state``) or raised (``error``)."""

    def __init__(self, run_dir: str, state: str, error: str = "") -> None:
        super().__init__()
        self.run_dir, self.state, self.error = run_dir, state, error


class PrepareEvent(Message):
    """One event of the face preparation worker."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class PrepareEnded(Message):
    """The face preparation worker ended: its report as a dict, or an error message."""

    def __init__(self, report: dict[str, Any] | None, error: str = "") -> None:
        super().__init__()
        self.report, self.error = report, error


class RunsScanned(Message):
    """Summaries of the runs folder, computed in a worker: (path, summary) newest first."""

    def __init__(self, rows: list[tuple[str, dict[str, str]]]) -> None:
        super().__init__()
        self.rows = rows


class RunningFound(Message):
    """A run still running, found in the models folder after the first paint (app start)."""

    def __init__(self, run_dir: str) -> None:
        super().__init__()
        self.run_dir = run_dir

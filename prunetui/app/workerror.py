"""What a thread worker raised that its own ``except`` did not foresee.

Screens start their workers with ``exit_on_error=False`` (a failed read must not end the app),
so an unforeseen exception would otherwise vanish and leave a progress bar turning. A screen's
``on_worker_state_changed`` asks :func:`unforeseen_error` and shows the message where it shows
its foreseen errors.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState


def unforeseen_error(event: Worker.StateChanged, group: str) -> str | None:
    """``"Type: message"`` when a worker of ``group`` has just failed, else None."""
    if event.state is not WorkerState.ERROR or event.worker.group != group:
        return None
    err = event.worker.error
    return f"{type(err).__name__}: {err}"

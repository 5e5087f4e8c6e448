"""Reading run stores for the views without stalling the event loop.

A few new lines (a run being followed, twice a second) are read right away; a long file (a
first look at a 200,000-row run, or a catch-up after a pause) is read and folded in a thread
worker, which posts :class:`RunRead` when done. The view applies it on the event loop, where
merging costs per segment, not per row.
"""

from __future__ import annotations

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import get_current_worker

from prunetui.app.rundata import READ_ON_LOOP_BYTES, RunData, Update

READ_GROUP = "run-read"


class RunRead(Message):
    """A worker finished reading ``data``'s store; ``update`` is for ``data.apply``."""

    def __init__(self, data: RunData, update: Update | None, error: str = "") -> None:
        super().__init__()
        self.data, self.update, self.error = data, update, error

    def apply(self) -> bool:
        """Merge the read into its RunData (on the event loop); True when anything changed."""
        self.data.reading = False
        if self.error:
            self.data.note(f"warning: reading the run store failed: {self.error}")
            return True
        return self.data.apply(self.update)


def poll(node: DOMNode, data: RunData) -> bool | None:
    """Read what ``data``'s run store has new, for ``node`` (a screen).

    Returns whether anything changed when it read right here, or None when a worker reads (or
    was already reading): ``node`` then gets a :class:`RunRead`.
    """
    if data.reading:
        return None
    if data.pending_bytes() <= READ_ON_LOOP_BYTES:
        return data.apply(data.read())
    data.reading = True

    def read() -> None:
        worker = get_current_worker()
        try:
            update = data.read(lambda: worker.is_cancelled)
        except Exception as err:  # a view must hear of it: it waits for this message
            node.post_message(RunRead(data, None, f"{type(err).__name__}: {err}"))
            return
        if not worker.is_cancelled:
            node.post_message(RunRead(data, update))

    node.run_worker(read, thread=True, group=READ_GROUP, exit_on_error=False,
                    name=f"read {data.name}")
    return None


def cancel_reads(node: DOMNode) -> None:
    """Stop the reads ``node`` started (their RunData is being dropped)."""
    node.app.workers.cancel_group(node, READ_GROUP)

"""Run / round / epoch progress: three labelled Textual ProgressBars with ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

ROWS = ("run", "segment", "epoch")


class RunProgress(Vertical):
    def compose(self) -> ComposeResult:
        for name in ROWS:
            with Horizontal(classes="progress-row"):
                yield Label("", id=f"{name}-label", classes="progress-label")
                yield ProgressBar(total=1, show_eta=True, id=f"{name}-bar")

    def set_row(self, name: str, label: str, progress: float, total: float | None) -> None:
        """``total`` None means unknown yet: an empty bar (never the animated one)."""
        self.query_one(f"#{name}-label", Label).update(label)
        bar = self.query_one(f"#{name}-bar", ProgressBar)
        if total is None or total <= 0:
            bar.update(total=1, progress=0)
        else:
            bar.update(total=total, progress=min(progress, total))

    def clear(self) -> None:
        for name in ROWS:
            self.set_row(name, "", 0, None)

"""The top line: the app's screens with their keys, the current one highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS = (("data", "Data"), ("setup", "Setup"), ("monitor", "Monitor"), ("runs", "Runs"))


class ScreenBar(Static):
    def __init__(self, current: str, extra: str = "") -> None:
        super().__init__(id="screen-bar")
        self.current, self.extra = current, extra

    def on_mount(self) -> None:
        text = Text(" prunetui ", style="bold")
        for number, (name, title) in enumerate(SCREENS, start=1):
            style = "reverse bold" if name == self.current else ""
            text.append(" ")
            text.append(f" {number} {title} ", style=style)
        if self.extra:
            text.append(f"  {self.extra}", style="italic")
        text.append("  ? help  ^q quit", style="dim")
        self.update(text)

"""What every top-level screen shares: Header, Footer, its help text, Escape to leave a field."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input


class AppScreen(Screen):
    """A top-level screen (one per mode). ``HELP`` is Markdown shown by ``?``."""

    HELP: ClassVar[str] = ""
    BINDINGS: ClassVar = [
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def action_leave_field(self) -> None:
        """Escape in a text field gives focus back to the screen, so letter keys act again."""
        if isinstance(self.focused, Input):
            self.set_focus(None)

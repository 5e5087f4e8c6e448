"""What every top-level screen shares: Header, Footer, its help text, Escape to leave a field."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input


def toggle_zoom(screen: Screen, zoomable: tuple[type[Widget], ...], default: Widget) -> None:
    """Maximize the focused zoomable widget (else ``default``); a second press restores."""
    if screen.maximized is not None:
        screen.minimize()
        return
    focused = screen.focused
    screen.maximize(focused if isinstance(focused, zoomable) else default)


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

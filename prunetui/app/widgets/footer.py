"""A Footer that rebuilds only when the keys it shows change.

Textual's Footer recomposes on every focus change; on the Setup form that was most of the
200 ms a tab took on a slow machine. The keys shown are the same for nearly every field.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class StableFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)
        self._shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple((key, b.description, b.group, enabled)
                      for key, (_, b, enabled, _) in screen.active_bindings.items() if b.show)
        if shown == self._shown and self._bindings_ready:
            return
        self._shown = shown
        super().bindings_changed(screen)

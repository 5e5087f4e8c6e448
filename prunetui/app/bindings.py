"""The key bindings a screen offers, as plain data (screenshots record them, docs check them)."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding


def screen_bindings(cls: type) -> list[tuple[str, str, str]]:
    """(key, action, description) of every binding ``cls`` declares or inherits, in order."""
    found: list[tuple[str, str, str]] = []
    for klass in reversed(cls.__mro__):
        for entry in klass.__dict__.get("BINDINGS", ()):
            found.append(_as_tuple(entry))
    return found


def _as_tuple(entry: Any) -> tuple[str, str, str]:
    if isinstance(entry, Binding):
        return (entry.key, entry.action, entry.description)
    key, action, *rest = entry
    return (key, action, rest[0] if rest else "")

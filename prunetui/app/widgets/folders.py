"""A DirectoryTree of folders only, with a key to climb to the parent folder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DirectoryTree


class FolderTree(DirectoryTree):
    """``enter`` picks the folder under the cursor as the source (DirectorySelected);
    ``d`` picks it as the destination (DestinationChosen); ``backspace`` climbs up."""

    BINDINGS: ClassVar = [
        Binding("enter", "select_cursor", "Use as source", show=True),
        Binding("d", "destination", "Use as destination"),
        Binding("backspace", "parent", "Up a folder"),
    ]

    class DestinationChosen(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def action_destination(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None:
            self.post_message(self.DestinationChosen(Path(node.data.path)))

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and p.is_dir()]

    def action_parent(self) -> None:
        current = Path(self.path).resolve()
        if current.parent != current:
            self.path = current.parent

    def show(self, folder: str | Path) -> None:
        """Root the tree at ``folder`` when it is an existing directory."""
        path = Path(folder).expanduser()
        if path.is_dir() and path.resolve() != Path(self.path).resolve():
            self.path = path.resolve()

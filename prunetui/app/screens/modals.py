"""Small modal screens: a yes/no question, the long-launch question and the help page."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask before something that cannot be undone; returns True for yes."""

    BINDINGS: ClassVar = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="modal")
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error", compact=True)
                yield Button(f"{self.no} (n)", id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class LongLaunchScreen(ModalScreen[str | None]):
    """Before a launch estimated at hours: "here", "detached" or None (cancel)."""

    BINDINGS: ClassVar = [
        Binding("h", "answer('here')", "Launch here"),
        Binding("d", "answer('detached')", "Launch detached"),
        Binding("n,escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(classes="modal")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="long-launch"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Launch here (h)", id="here", variant="warning", compact=True)
                yield Button("Launch detached (d)", id="detached", variant="success",
                             compact=True)
                yield Button("Cancel (n)", id="cancel", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#detached", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, choice: str | None) -> None:
        self.dismiss(choice)


GLOBAL_HELP = """\
## Everywhere
| key | does |
| --- | --- |
| `1` `2` `3` `4` | Data, Setup, Monitor, Runs |
| `?` | this help |
| `ctrl+p` | command palette: every action, searchable |
| `tab` / `shift+tab` | next / previous field or panel |
| `escape` | leave a text field (then letter keys act), close a dialog |
| `ctrl+q` | quit (asks first while a run trains in this app) |

A run launched in the app trains in a thread of the app: it checkpoints every epoch and when
stopped, but ends with the app or the SSH session; resume it from Runs with `r`. A *detached*
launch (`ctrl+t` in Setup, `R` in Runs) trains in its own process and survives logout; the
Monitor follows it from its run folder. If the terminal is left in a strange state after a
crash, type `reset`.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screen_help: str) -> None:
        super().__init__(classes="modal")
        self.screen_help = screen_help

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it: only when help is asked for

        with VerticalScroll(classes="dialog help"):
            yield Markdown(self.screen_help + "\n\n" + GLOBAL_HELP)

"""One row of the Setup form: a label, Textual's own input widget for the value, its error."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.suggester import SuggestFromList
from textual.validation import Function, Validator
from textual.widget import Widget
from textual.widgets import Input, Label, Select, SelectionList, Static

from prunetui.app.formspec import KIND_HINT, Field, parse


def type_validator(kind: str) -> Validator | None:
    """Input-level check that the text parses (ranges and rules come from the engine)."""
    if kind not in KIND_HINT:
        return None

    def parses(text: str) -> bool:
        try:
            parse(kind, text)
        except ValueError:
            return False
        return True

    return Function(parses, KIND_HINT[kind])


class FieldRow(Vertical):
    """Label + widget on one line, the engine's reason below it when the value is invalid."""

    def __init__(self, field: Field, value: Any) -> None:
        super().__init__(classes="field-row", id=f"row-{field.widget_id}")
        self.field = field
        self._initial = value
        self._error: str | None = ""

    def compose(self) -> ComposeResult:
        yield Label(self.field.label, classes="field-label")
        yield self._make_widget()
        yield Static("", classes="field-error")

    def _make_widget(self) -> Widget:
        f, wid = self.field, self.field.widget_id
        if f.kind == "select":
            value = self._initial if self._initial in {v for _, v in f.choices} else f.choices[0][1]
            return Select(f.choices, value=value, allow_blank=False, compact=True, id=wid)
        if f.kind == "schemes":
            chosen = set(self._initial or [])
            return SelectionList[str](*((label, v, v in chosen) for label, v in f.choices),
                                      id=wid, compact=True)
        validator = type_validator(f.kind)
        suggester = SuggestFromList(f.suggestions, case_sensitive=False) if f.suggestions \
            else None
        return Input(str(self._initial or ""), placeholder=f.placeholder, compact=True, id=wid,
                     validators=[validator] if validator else None, suggester=suggester,
                     select_on_focus=False)

    @property
    def widget(self) -> Widget:
        return self.query_one(f"#{self.field.widget_id}")

    @property
    def value(self) -> Any:
        w = self.widget
        if isinstance(w, SelectionList):
            order = [v for _, v in self.field.choices]
            return sorted(w.selected, key=order.index)
        if isinstance(w, Select):
            return w.value
        assert isinstance(w, Input)
        return w.value

    def set_value(self, value: Any) -> None:
        w = self.widget
        if isinstance(w, SelectionList):
            w.deselect_all()
            for v in value or []:
                w.select(v)
        elif isinstance(w, Select):
            if value in {v for _, v in self.field.choices}:
                w.value = value
        elif isinstance(w, Input):
            w.value = str(value if value is not None else "")

    def on_descendant_focus(self) -> None:
        self.add_class("-focused")  # a class (unlike :focus-within) restyles the label too

    def on_descendant_blur(self) -> None:
        self.remove_class("-focused")

    def set_error(self, message: str | None) -> None:
        if message == self._error:
            return
        self._error = message
        self.set_class(bool(message), "-error")
        error = self.query_one(".field-error", Static)
        error.update(f"↳ {message}" if message else "")
        error.display = bool(message)

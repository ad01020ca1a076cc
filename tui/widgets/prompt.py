"""A question in a modal: one line of text (expected run time, a file name, ...), or one of
a few answers (stop the workflow or leave it running)."""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text entered (enter) or ``None`` (esc)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 70; height: auto; border: thick $accent;
                              background: $panel; padding: 1 2; }
    """

    def __init__(self, question: str | Text, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            # Never markup: a question may quote names from the pool.
            yield Static(Text(self.question) if isinstance(self.question, str)
                         else self.question)
            yield Input(value=self.value, id="prompt-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers, each a key and a button; dismisses with the chosen
    answer's name, or ``None`` (esc)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]
    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical { width: 76; height: auto; border: thick $warning;
                              background: $panel; padding: 1 2; }
    ChoiceScreen Horizontal { height: auto; margin-top: 1; }
    ChoiceScreen Button { margin-right: 2; }
    """

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        """``choices``: (key, name, label) for each answer, e.g. ("s", "stop", "s stop it")."""
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question))  # quotes paths and names: never markup
            with Horizontal():
                for _key, name, label in self.choices:
                    yield Button(label, id=f"choice-{name}")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event: events.Key) -> None:
        for key, name, _label in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(name)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(str(event.button.id).removeprefix("choice-"))

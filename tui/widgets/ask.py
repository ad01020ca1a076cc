"""Ask: questions about the run, answered with cited evidence, as they stream in.

A pane for the run screen (or any container): an input, the conversation so far (kept in
memory per run, so it survives the pane being rebuilt), the answer streaming in, and the
latest answer's citations as a list. Picking a citation posts
:class:`AskPane.CitationSelected` with the event rows behind it and a filter selecting
them: the screen jumps there. Answers come from :func:`steering.ask.ask` in a worker
thread; the UI thread only paints. Everything shown is rendered as plain
:class:`~rich.text.Text`: citations in brackets and log text quoted in answers are never
markup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from features.safe import clean, clean_block

if TYPE_CHECKING:  # steering.ask is imported at the first question: the app's first
    # screen does not wait for it (~50 ms of a 0.5 s start)
    from features.run import Run
    from steering.ask import Answer, Citation, Conversation
    from steering.llm_config import LLMConfig

__all__ = ["AskPane", "Citations", "conversation_for"]

STREAM_EVERY_S = 0.05
"""Streamed text is posted to the UI in batches at most this often (not per token)."""

_CONVERSATIONS: dict[str, Conversation] = {}


def conversation_for(run: Run) -> Conversation:
    """The conversation about ``run`` kept in memory for this process (one per pool)."""
    from steering.ask import Conversation

    key = str(run.path)
    if key not in _CONVERSATIONS:
        _CONVERSATIONS[key] = Conversation(key)
    return _CONVERSATIONS[key]


class Citations(OptionList):
    """The latest answer's citations."""

    BINDINGS = [Binding("enter", "select", "the cited events")]


class AskPane(Vertical):
    """Ask questions about one run; citations of the latest answer are selectable."""

    BINDINGS = [
        # Priority: the box's own enter binding (hidden) would hide this one in the footer.
        Binding("enter", "ask", "ask", priority=True),
    ]

    DEFAULT_CSS = """
    AskPane { padding: 0 1; }
    AskPane #ask-log { height: 1fr; min-height: 5; border: round $panel-lighten-2; }
    AskPane #ask-stream { height: auto; max-height: 12; color: $text-muted; }
    AskPane #ask-status { height: 1; color: $text-muted; }
    AskPane #ask-citations { height: auto; max-height: 10; }
    AskPane #ask-input.-busy { border: tall $warning; }
    """

    @dataclass
    class CitationSelected(Message):
        """A citation was picked: show ``rows`` (store rows, time order) or filter the
        event view by ``expr``."""

        citation: Citation
        rows: tuple[int, ...]
        expr: str

    @dataclass
    class QuestionAnswered(Message):
        """``answer`` (verified) arrived for the pane's run."""

        answer: Answer

    @dataclass
    class AnswerStreamed(Message):
        """A batch of progress from the worker: ``delta`` text, a ``status`` line, or
        ``restart`` (drop the text streamed so far)."""

        kind: str
        text: str

    def __init__(self, run: Run, *, config: LLMConfig | None = None,
                 expected_s: float | None = None, others: Sequence[Run] = (),
                 builtin: bool = False, lock: AbstractContextManager[Any] | None = None,
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        """``config``: the LLM (default: loaded from the config file and environment at
        each question); ``builtin``: always use the built-in analyst; ``expected_s``: the
        run time the user expects; ``others``: runs a question may compare with."""
        super().__init__(name=name, id=id, classes=classes)
        self.run = run
        self.config = config
        self.expected_s = expected_s
        self.others = list(others)
        self.builtin = builtin
        self.run_lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        """Held while the answer reads the run (the app shares the run with its other
        workers, and the run's caches are not safe for two threads at once)."""
        self._conversation: Conversation | None = _CONVERSATIONS.get(str(run.path))
        self.citations: list[Citation] = []
        """The latest answer's valid citations, in the list's order."""
        self._streamed: list[str] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        yield RichLog(id="ask-log", wrap=True, markup=False, highlight=False, min_width=20)
        yield Static("", id="ask-stream")
        yield Static("", id="ask-status")
        yield Citations(id="ask-citations", markup=False)
        yield Input(placeholder="Ask about this run, e.g. I expected 16 s: where did the "
                                "time go?  (enter asks, esc leaves the box)", id="ask-input")

    @property
    def conversation(self) -> Conversation:
        """The conversation about this run (made at the first question)."""
        if self._conversation is None:
            self._conversation = conversation_for(self.run)
        return self._conversation

    def on_mount(self) -> None:
        if self._conversation is None:  # nothing asked about this run yet
            return
        for answer in self._conversation.turns:
            self._write_question(answer.question)
            self._write(answer)
        if self._conversation.turns:
            self._show_citations(self._conversation.turns[-1])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "ask":  # enter asks in the box; elsewhere it is the list's
            return self.app.focused is self.query_one("#ask-input", Input)
        return True

    async def action_ask(self) -> None:
        await self.query_one("#ask-input", Input).action_submit()

    def focus_input(self) -> None:
        self.query_one("#ask-input", Input).focus()

    def resting_widget(self) -> Widget:
        """What takes the keys when the box is left (``esc``): the citations when there
        are some (``enter`` shows the highlighted one's events), else the conversation."""
        ol = self.query_one("#ask-citations", OptionList)
        return ol if ol.option_count else self.query_one("#ask-log", RichLog)

    # -- asking ------------------------------------------------------------------------

    @on(Input.Submitted, "#ask-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        question = " ".join(event.value.split())
        if not question:
            return
        if self.busy:
            self.notify("still answering the last question", severity="warning")
            return
        event.input.value = ""
        self.ask(question)

    def ask(self, question: str) -> None:
        """Ask ``question`` (in a worker); the answer arrives as :class:`QuestionAnswered`."""
        self.busy = True
        self.query_one("#ask-input", Input).add_class("-busy")
        self._write_question(question)
        self._streamed.clear()
        self.query_one("#ask-stream", Static).update("")
        self.query_one("#ask-status", Static).update(Text("thinking…"))
        self._answer(question)

    @work(thread=True, exclusive=True, group="ask")
    def _answer(self, question: str) -> None:
        pending: list[str] = []
        last = time.monotonic()

        def flush() -> None:
            nonlocal last
            if pending:
                self.post_message(self.AnswerStreamed("delta", "".join(pending)))
                pending.clear()
            last = time.monotonic()

        def progress(kind: str, text: str) -> None:
            if kind == "delta":
                pending.append(text)
                if time.monotonic() - last >= STREAM_EVERY_S:
                    flush()
            else:
                flush()
                self.post_message(self.AnswerStreamed(kind, text))

        from steering.ask import Answer, ask

        try:
            with self.run_lock:
                answer = ask(self.run, question, self.config, progress=progress,
                             others=self.others, expected_s=self.expected_s,
                             builtin=self.builtin, conversation=self.conversation)
        except Exception as exc:  # the worker must end with a message, whatever happened
            answer = Answer(question, f"Could not answer: {type(exc).__name__}: {exc}",
                            "", "builtin", "builtin", notes=["internal error"])
        flush()
        self.post_message(self.QuestionAnswered(answer))

    # -- painting ----------------------------------------------------------------------

    @on(AnswerStreamed)
    def _streamed_in(self, msg: AskPane.AnswerStreamed) -> None:
        msg.stop()
        if msg.kind == "delta":
            self._streamed.append(msg.text)
        elif msg.kind == "restart":
            self._streamed.clear()
        elif msg.kind == "status":
            self.query_one("#ask-status", Static).update(Text(clean(msg.text, 200)))
        self.query_one("#ask-stream", Static).update(
            Text(clean_block("".join(self._streamed)[-4000:])))

    @on(QuestionAnswered)
    def _answered(self, msg: AskPane.QuestionAnswered) -> None:
        # Not stopped: the screen may want to know too.
        self.busy = False
        self.query_one("#ask-input", Input).remove_class("-busy")
        self._streamed.clear()
        self.query_one("#ask-stream", Static).update("")
        answer = msg.answer
        if answer.text and "internal error" not in answer.notes:
            self.conversation.add(answer)
        self._write(answer)
        self._show_citations(answer)
        who = (f"{answer.model} ({answer.mode} mode)" if answer.by_llm
               else "the built-in analyst")
        self.query_one("#ask-status", Static).update(Text(
            f"answered by {clean(who)}; {len(self.citations)} citation(s): pick one to see "
            "its events"))

    def _write_question(self, question: str) -> None:
        self.query_one(RichLog).write(Text.assemble(("? ", "bold"), (clean(question), "bold")))

    def _write(self, answer: Answer) -> None:
        log = self.query_one(RichLog)
        log.write(Text(clean_block(answer.text)))
        for note in answer.notes:
            log.write(Text(f"check: {clean(note, 400)}", style="italic"))
        log.write(Text(""))

    def _show_citations(self, answer: Answer) -> None:
        self.citations = answer.valid_citations
        ol = self.query_one("#ask-citations", OptionList)
        ol.clear_options()
        ol.add_options([Option(Text.assemble((f"[{c.ref}] ", "bold"), clean(c.label, 200)),
                               id=str(i)) for i, c in enumerate(self.citations)])
        if self.citations:  # the first is highlighted: the first enter shows its events
            ol.highlighted = 0

    @on(OptionList.OptionSelected, "#ask-citations")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        c = self.citations[event.option_index]
        self.post_message(self.CitationSelected(c, c.rows, c.expr))

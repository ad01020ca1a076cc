"""The Ask pane in a minimal app, with Textual's Pilot: a question, the answer streaming
in, citations that post the event rows to jump to, the conversation kept per run."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Input, OptionList, RichLog

from features.run import Run
from steering.llm import LLMConfig
from tui.widgets.ask import AskPane, conversation_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "steering"))
from openai_server import FakeOpenAI, completion

SIZE = (160, 50)


class AskApp(App[None]):
    def __init__(self, run: Run, **kw: Any) -> None:
        super().__init__()
        self.pane_args = kw
        self.the_run = run

    def compose(self) -> ComposeResult:
        yield AskPane(self.the_run, id="ask", **self.pane_args)


@pytest.fixture
def failed(sample: Callable[[str], Path], tmp_path: Path) -> Run:
    """A copy of the failed sample run (its own path: its own conversation)."""
    run = Run(shutil.copytree(sample("exception"), tmp_path / "pool"))
    run.load()
    return run


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def of(seen: list[Message], kind: type[Message]) -> list[Any]:
    """Messages of ``kind``, each once (the hook sees a bubbling message at every node)."""
    return list({id(m): m for m in seen if isinstance(m, kind)}.values())


def log_text(app: App[None]) -> str:
    return "\n".join(line.text for line in app.query_one(RichLog).lines)


async def submit(pilot: Any, app: App[None], question: str) -> None:
    inp = app.query_one("#ask-input", Input)
    inp.focus()
    inp.value = question
    await pilot.press("enter")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_ask_and_jump_to_a_citation(failed: Run) -> None:
    seen: list[Message] = []
    app = AskApp(failed, builtin=True)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await submit(pilot, app, "What failed?")
        (done,) = of(seen, AskPane.QuestionAnswered)
        answer = done.answer
        assert answer.backend == "builtin" and answer.kind == "errors"
        text = log_text(app)
        assert "? What failed?" in text
        assert "[act:1b0601a6]" in text  # brackets shown literally, never markup
        assert "built-in analyst" in text
        options = app.query_one("#ask-citations", OptionList)
        pane = app.query_one(AskPane)
        assert options.option_count == len(pane.citations) == len(answer.valid_citations) > 2
        assert "[act:1b0601a6]" in str(options.get_option_at_index(0).prompt)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        (picked,) = of(seen, AskPane.CitationSelected)
        assert picked.citation.ref == "act:1b0601a6"
        assert picked.expr.startswith("academy.action_tag=1b0601a6")
        assert picked.rows and list(picked.rows) == failed.select(picked.expr).tolist()
        ev = failed.events()
        tags = {(ev.record(r) or {}).get("academy.action_tag", "")[:8] for r in picked.rows}
        assert tags == {"1b0601a6"}
        assert app.query_one("#ask-input", Input).value == ""


async def test_the_answer_streams_in_and_the_conversation_stays(failed: Run,
                                                                server: FakeOpenAI) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    server.script(completion(f"The generator raised [act:1b0601a6]. {words}"))
    cfg = LLMConfig(base_url=server.base_url, model="m", mode="tools", max_retries=0)
    seen: list[Message] = []
    app = AskApp(failed, config=cfg)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await submit(pilot, app, "What failed?")
        streamed = of(seen, AskPane.AnswerStreamed)
        deltas = "".join(m.text for m in streamed if m.kind == "delta")
        assert deltas.endswith("word39") and "The generator raised" in deltas
        assert len([m for m in streamed if m.kind == "delta"]) < 42, "batched, not per token"
        (done,) = of(seen, AskPane.QuestionAnswered)
        assert done.answer.backend == "llm"
        assert "The generator raised [act:1b0601a6]." in log_text(app)
    assert [a.question for a in conversation_for(failed).turns] == ["What failed?"]
    # A new pane for the same run shows the conversation so far.
    again = AskApp(failed, builtin=True)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "? What failed?" in log_text(again)
        assert "The generator raised [act:1b0601a6]." in log_text(again)
        assert again.query_one("#ask-citations", OptionList).option_count == 1


async def test_one_question_at_a_time(failed: Run) -> None:
    app = AskApp(failed, builtin=True)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(AskPane)
        pane.busy = True
        inp = app.query_one("#ask-input", Input)
        inp.focus()
        inp.value = "Any errors?"
        await pilot.press("enter")
        await pilot.pause()
        assert inp.value == "Any errors?" and "? Any errors?" not in log_text(app)

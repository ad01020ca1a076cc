"""``ask(run, question)``: a natural-language question about a run, answered from the data
with cited evidence.

With an LLM configured (:class:`~steering.llm_config.LLMConfig`: ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY``), the model answers in ``tools`` mode (a tool-calling loop) or ``plan``
mode (a structured-output plan of tool calls, run here, then an answer). Without one, or
when the model fails, the built-in analyst answers and the :class:`Answer` says why.
Either way the answer is verified (:mod:`steering.ask.verify`): citations must exist in
the run, numbers must come from the data the answer was built from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steering.ask import analyst, questions
from steering.ask.llm_paths import AskLimits, Progress, plan_answer, tools_answer
from steering.ask.refs import Citation, EvidenceIndex
from steering.ask.summary import summarize
from steering.ask.tools import Toolbox
from steering.ask.verify import NumberCheck, verify
from steering.llm_config import LLMConfig, LLMError, redact

if TYPE_CHECKING:
    from features.run import Run
    from steering.llm import LLMClient, Message

__all__ = ["Answer", "Conversation", "ask"]

log = logging.getLogger("academy_tui.ask")
log.addHandler(logging.NullHandler())  # no "last resort" stderr lines under a TUI or CLI

NO_LLM = ("no LLM is configured (set OPENAI_BASE_URL for a local server or "
          "OPENAI_API_KEY for OpenAI)")


@dataclass
class Answer:
    """An answer, its evidence and how it was made."""

    question: str
    text: str
    """What to show: verified (invalid citations removed, unsupported numbers marked)."""
    raw_text: str
    """What the model (or the analyst) wrote, before verification."""
    backend: str
    """``llm`` or ``builtin``."""
    mode: str
    """``tools``, ``plan`` or ``builtin``."""
    citations: list[Citation] = field(default_factory=list)
    numbers: list[NumberCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What verification removed or flagged, and what went wrong with a plan."""
    model: str | None = None
    fallback_reason: str | None = None
    """Why the built-in analyst answered (no LLM configured, or how the LLM failed)."""
    kind: str | None = None
    """The question's kind (:data:`steering.ask.questions.KINDS`), when classified."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls made for this answer: tool, arguments, ok, error."""
    usage: dict[str, int] = field(default_factory=dict)
    """Tokens spent (LLM answers): prompt, completion, calls."""

    @property
    def valid_citations(self) -> list[Citation]:
        """Citations that name something in the run, each once, in order."""
        seen: set[str] = set()
        out = []
        for c in self.citations:
            if c.valid and c.ref not in seen:
                seen.add(c.ref)
                out.append(c)
        return out

    @property
    def by_llm(self) -> bool:
        return self.backend == "llm"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"question": self.question, "text": self.text, "raw_text": self.raw_text,
                "backend": self.backend, "mode": self.mode, "model": self.model,
                "fallback_reason": self.fallback_reason, "kind": self.kind,
                "citations": [c.as_dict() for c in self.citations],
                "numbers": [n.as_dict() for n in self.numbers], "notes": self.notes,
                "steps": self.steps, "usage": self.usage}


@dataclass
class Conversation:
    """The questions asked about one run so far (kept in memory by the UI), handed to the
    next question as context."""

    run_key: str
    turns: list[Answer] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        self.turns.append(answer)

    def messages(self, turns: int = 3, chars: int = 1500) -> list[Message]:
        """The last ``turns`` exchanges as chat messages (answers cut to ``chars``)."""
        out: list[Message] = []
        for a in self.turns[-turns:]:
            out.append({"role": "user", "content": a.question[:chars]})
            out.append({"role": "assistant", "content": a.text[:chars]})
        return out


def _steps(toolbox: Toolbox) -> list[dict[str, Any]]:
    return [{"tool": r.tool, "arguments": r.arguments, "ok": r.ok, "error": r.error}
            for r in toolbox.results]


def builtin_answer(run: Run, question: str, *, reason: str | None = None,
                   others: Sequence[Run] = (), home: Path | None = None,
                   expected_s: float | None = None) -> Answer:
    """The built-in analyst's answer, verified like any other; ``reason`` says why it
    answers (default: no LLM configured)."""
    toolbox = Toolbox(run, others=others, home=home, expected_s=expected_s)
    kind = questions.classify(question, run) or ("compare" if others else None)
    asked = question
    if expected_s is not None and questions.expected_in(question) is None:
        # --expect: the analyst reads the expected time from the question.
        asked = f"{question} (expected {expected_s:g} s)"
        kind = kind or "time"
    body, kind = analyst.answer(toolbox, asked, kind)
    # The analyst's own fixed wording (its examples) is not log data but may hold numbers.
    sources = "\n".join([*(r.to_json() for r in toolbox.results), analyst.CAPABILITIES,
                         analyst.EXAMPLES])
    checked = verify(body, EvidenceIndex(run), sources, asked)
    why = reason or NO_LLM
    text = f"{checked.text}\n\n(Answered by the built-in analyst: {why}.)"
    return Answer(question, text, body, "builtin", "builtin", checked.citations,
                  checked.numbers, checked.notes, None, why, kind, _steps(toolbox))


def ask(run: Run, question: str, config: LLMConfig | None = None, *,
        progress: Progress | None = None, others: Sequence[Run] = (),
        expected_s: float | None = None, home: Path | None = None, builtin: bool = False,
        client: LLMClient | None = None, conversation: Conversation | None = None,
        limits: AskLimits | None = None) -> Answer:
    """Answer ``question`` about ``run``.

    ``config`` defaults to :meth:`LLMConfig.load` (file, environment); ``builtin=True``
    skips the LLM. ``progress(kind, text)`` sees the answer stream (``delta``), status
    lines (``status``) and ``restart`` when streamed text is to be discarded. ``others``
    are runs the question may compare with (``home`` finds more by uuid); ``expected_s``
    is the expected run time (else read from the question: "I expected 16 s").
    ``client`` reuses an :class:`~steering.llm.LLMClient` (a fresh token budget is
    started); ``conversation`` gives earlier questions as context (tools mode: small plan
    mode contexts have no room for them). Never raises for LLM
    trouble: the built-in analyst answers and :attr:`Answer.fallback_reason` says why.
    """
    question = " ".join(question.split())
    if not question:
        raise ValueError("empty question")
    expected = expected_s if expected_s is not None else questions.expected_in(question)
    report = progress or (lambda kind, text: None)
    if builtin:
        return builtin_answer(run, question, reason="the built-in analyst was asked for",
                              others=others, home=home, expected_s=expected)
    if config is None:
        try:
            config = LLMConfig.load()
        except ValueError as exc:
            return builtin_answer(run, question, reason=f"the LLM settings are unusable: {exc}",
                                  others=others, home=home, expected_s=expected)
    if not config.configured:
        return builtin_answer(run, question, others=others, home=home, expected_s=expected)
    mode = config.resolved_mode
    limits = limits or (AskLimits.compact() if mode == "plan" else AskLimits())
    toolbox = Toolbox(run, others=others, home=home, expected_s=expected,
                      result_chars=limits.result_chars)
    summary = summarize(run, expected, limits.summary_chars)
    notes: list[str] = []
    own = client is None
    try:
        from steering.llm import LLMClient

        llm = client if client is not None else LLMClient(config)
    except Exception as exc:  # a broken openai install must not break the question
        return builtin_answer(run, question, reason=f"the LLM client cannot start: {exc}",
                              others=others, home=home, expected_s=expected)
    budget = llm.new_budget()
    history = conversation.messages() if conversation and mode == "tools" else []
    try:
        if mode == "tools":
            got = tools_answer(llm, toolbox, question, summary, history, limits, report)
        else:
            got = plan_answer(llm, toolbox, question, summary, limits, report, notes)
    except LLMError as exc:
        reason = redact(f"the LLM failed ({exc.kind}): {exc.message}", config.api_key)
        log.warning("ask: %s; the built-in analyst answers", reason)
        report("restart", "")
        return builtin_answer(run, question, reason=reason, others=others, home=home,
                              expected_s=expected)
    finally:
        if own:
            llm.close()
    if got.cut:
        notes.append("The model's answer stopped at its token limit: it may be incomplete.")
    sources = f"{summary}\n{got.seen}"
    checked = verify(got.text, EvidenceIndex(run), sources, question)
    return Answer(question, checked.text, got.text, "llm", mode, checked.citations,
                  checked.numbers, notes + checked.notes, config.model, None,
                  questions.classify(question, run), _steps(toolbox),
                  {"prompt_tokens": budget.prompt_tokens,
                   "completion_tokens": budget.completion_tokens, "calls": budget.calls})

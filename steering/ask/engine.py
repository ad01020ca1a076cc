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

from features.facts import Fact, FactSheet, sheet_scope
from steering.ask import analyst, kinds_mode, questions
from steering.ask.llm_paths import AskLimits, Progress, plan_answer, tools_answer
from steering.ask.refs import Citation, EvidenceIndex
from steering.ask.summary import summarize
from steering.ask.tools import Toolbox
from steering.ask.verify import NumberCheck, Verified, verify
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
    facts: list[Fact] = field(default_factory=list)
    """The facts the answer was made of (built-in and ``kinds`` answers): each number with
    its unit, what it counts and its evidence."""

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
                "steps": self.steps, "usage": self.usage,
                "facts": [f.as_dict() for f in self.facts]}


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


EVERY_COUNT = "how many agents, calls, processes, errors and records"
"""The question whose answer holds every count of a run (a model's numbers are checked
against their nouns)."""


@dataclass
class _Built:
    """The built-in analyst's answer before it is dressed: its text, its facts and the
    verification."""

    toolbox: Toolbox
    body: str
    kind: str
    sheet: FactSheet
    checked: Verified


def _analyst(run: Run, r: questions.Reading, others: Sequence[Run] = (),
             home: Path | None = None) -> _Built:
    """The analyst's answer to the reading ``r``: its facts computed once, its text
    verified against the tool results it was written from."""
    toolbox = Toolbox(run, others=others, home=home, expected_s=r.expected_s)
    with sheet_scope() as sheet:
        body, kind = analyst.answer(toolbox, r)
    # The analyst's own fixed wording (its examples) is not log data but may hold numbers.
    sources = "\n".join([*(t.to_json() for t in toolbox.results), analyst.CAPABILITIES,
                         analyst.EXAMPLES, *(f.text for f in sheet)])
    if r.expected_s is not None:
        sources += f"\nexpected {r.expected_s:g} s"
    checked = verify(body, EvidenceIndex(run), sources, r.said)
    return _Built(toolbox, body, kind, sheet, checked)


def _every_count(run: Run) -> FactSheet:
    """Every count of the run (agents, calls, processes, errors, records) as facts: a
    model's numbers are checked against their nouns."""
    return _analyst(run, questions.Reading(EVERY_COUNT, "counts")).sheet


def builtin_answer(run: Run, question: str | questions.Reading, *, reason: str | None = None,
                   others: Sequence[Run] = (), home: Path | None = None,
                   expected_s: float | None = None) -> Answer:
    """The built-in analyst's answer, verified like any other; ``reason`` says why it
    answers (default: no LLM configured). ``question`` is the text or its reading."""
    r = (question if isinstance(question, questions.Reading)
         else questions.read(question, run, others=others, expected_s=expected_s))
    b = _analyst(run, r, others, home)
    why = reason or NO_LLM
    text = f"{b.checked.text}\n\n(Answered by the built-in analyst: {why}.)"
    return Answer(r.text, text, b.body, "builtin", "builtin", b.checked.citations,
                  b.checked.numbers, b.checked.notes, None, why, b.kind, _steps(b.toolbox),
                  facts=list(b.sheet))


def kinds_answer(run: Run, question: str | questions.Reading, llm: LLMClient,
                 config: LLMConfig, *, others: Sequence[Run] = (), home: Path | None = None,
                 expected_s: float | None = None, report: Progress = lambda k, t: None,
                 route_all: bool = False) -> Answer:
    """The ``kinds`` mode: the analyst reads the question's kind (the model picks it from
    an enum only when the analyst cannot tell, or always with ``route_all``), the analyst
    computes the facts, and (with ``config.phrase``) the model phrases them by reference
    before the analyst's answer with its evidence. Raises :class:`LLMError` when a model
    call fails."""
    r = (question if isinstance(question, questions.Reading)
         else questions.read(question, run, others=others, expected_s=expected_s))
    route_notes: tuple[str, ...] = ()
    if route_all or (r.kind is None and not others):
        got = kinds_mode.route(llm, run, r.text, report)
        route_notes = got.notes
        r = r.routed(got.kind, action=got.action, agent=got.agent, time_s=got.time_s,
                     read_as=got.read_as)
    b = _analyst(run, r, others, home)
    notes = [f"The question's kind ({b.kind}) was chosen by "
             f"{'the model' if r.by == 'model' else 'the built-in analyst'}."]
    notes += [f"Route: {n}." for n in route_notes]
    text, raw, reason = b.checked.text, b.body, None
    if r.read_as:
        # The model's reading is a guess a person should see before the answer.
        text = f'Read as "{r.read_as}" (the model\'s reading of the question):\n{text}'
    facts = list(b.sheet)
    phrased = False
    if config.phrase and b.kind != "unknown" and facts:
        report("restart", "")
        ph = kinds_mode.phrase(llm, r.text, b.sheet, report, known=_every_count(run))
        notes += ph.notes
        if ph.dropped:
            reason = f"the model's phrasing was not shown: {ph.dropped}"
            notes.append(f"The built-in analyst's answer is shown alone: {ph.dropped}.")
            report("restart", "")
        else:
            phrased = True
            text = f"{ph.text}\n\n{b.checked.text}"
            raw = f"{ph.raw}\n\n{b.body}"
    if r.by == "analyst" and not phrased:
        # No model call: say so, as for any answer of the built-in analyst.
        reason = reason or ("the built-in analyst read this question (kinds mode asks the "
                            "model only for questions it cannot read)")
        return Answer(r.text, f"{text}\n\n(Answered by the built-in analyst: {reason}.)",
                      raw, "builtin", "kinds", b.checked.citations, b.checked.numbers,
                      notes + b.checked.notes, config.model, reason, b.kind,
                      _steps(b.toolbox), facts=facts)
    return Answer(r.text, text, raw, "llm", "kinds", b.checked.citations, b.checked.numbers,
                  notes + b.checked.notes, config.model, reason, b.kind, _steps(b.toolbox),
                  facts=facts)


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
    if not question.split():
        raise ValueError("empty question")
    # Read once: every path below takes this reading, none reads the text again.
    r = questions.read(question, run, others=others, expected_s=expected_s)
    report = progress or (lambda kind, text: None)
    if builtin:
        return builtin_answer(run, r, reason="the built-in analyst was asked for",
                              others=others, home=home)
    if config is None:
        try:
            config = LLMConfig.load()
        except ValueError as exc:
            return builtin_answer(run, r, reason=f"the LLM settings are unusable: {exc}",
                                  others=others, home=home)
    if not config.configured:
        return builtin_answer(run, r, others=others, home=home)
    mode = config.resolved_mode
    own = client is None
    try:
        from steering.llm import LLMClient

        llm = client if client is not None else LLMClient(config)
    except Exception as exc:  # a broken openai install must not break the question
        return builtin_answer(run, r, reason=f"the LLM client cannot start: {exc}",
                              others=others, home=home)
    budget = llm.new_budget()
    try:
        if mode == "kinds":
            got_kinds = kinds_answer(run, r, llm, config, others=others, home=home,
                                     report=report)
            got_kinds.usage = _usage(budget)
            return got_kinds
        return _model_answer(run, r, llm, config, mode, limits, others, home, report,
                             conversation, budget)
    except LLMError as exc:
        reason = redact(f"the LLM failed ({exc.kind}): {exc.message}", config.api_key)
        log.warning("ask: %s; the built-in analyst answers", reason)
        report("restart", "")
        return builtin_answer(run, r, reason=reason, others=others, home=home)
    finally:
        if own:
            llm.close()


def _usage(budget: Any) -> dict[str, int]:
    return {"prompt_tokens": budget.prompt_tokens,
            "completion_tokens": budget.completion_tokens, "calls": budget.calls}


def _model_answer(run: Run, r: questions.Reading, llm: LLMClient, config: LLMConfig,
                  mode: str, limits: AskLimits | None, others: Sequence[Run],
                  home: Path | None, report: Progress,
                  conversation: Conversation | None, budget: Any) -> Answer:
    """``tools`` or ``plan``: the model answers from tool results; its answer is verified,
    and when it loses facts (numbers not in the data, a number on the wrong noun, no
    evidence) the built-in analyst's answer follows it, with the reason."""
    limits = limits or (AskLimits.compact() if mode == "plan" else AskLimits())
    toolbox = Toolbox(run, others=others, home=home, expected_s=r.expected_s,
                      result_chars=limits.result_chars)
    summary = summarize(run, r.expected_s, limits.summary_chars)
    notes: list[str] = []
    history = conversation.messages() if conversation and mode == "tools" else []
    if mode == "tools":
        got = tools_answer(llm, toolbox, r, summary, history, limits, report)
    else:
        got = plan_answer(llm, toolbox, r, summary, limits, report, notes)
    if got.cut:
        notes.append("The model's answer stopped at its token limit: it may be incomplete.")
    sources = f"{summary}\n{got.seen}"
    checked = verify(got.text, EvidenceIndex(run), sources, r.text)
    b = _analyst(run, r, others, home)
    # A number the data holds, put on another noun ("799 agents" when 799 counts records):
    # against this answer's facts and the run's counts of everything.
    every = _every_count(run)
    for f in b.sheet:
        every.add(f.value, f.unit, f.noun, f.text, f.ev)
    misplaced = [i for i in every.check(checked.text, r.text) if i.why == "misplaced"]
    text = checked.text
    for i in sorted(misplaced, key=lambda i: -i.start):
        text = text[:i.start] + kinds_mode.MARK + text[i.end:]
    if misplaced:
        notes.append("A number was put on the wrong noun, replaced by "
                     f"{kinds_mode.MARK}: " + "; ".join(i.detail for i in misplaced[:4]) + ".")
    lost = []
    unsupported = sum(1 for n in checked.numbers if not n.supported)
    if unsupported:
        lost.append(f"{unsupported} number(s) are not in the data")
    if misplaced:
        lost.append(f"{len(misplaced)} number(s) are on the wrong noun")
    if not checked.valid_citations:
        lost.append("it cites no evidence")
    reason = None
    if lost and b.kind != "unknown":
        reason = "the model's answer lost facts (" + "; ".join(lost) + ")"
        text = (f"{text}\n\nThe built-in analyst's answer ({reason}):\n{b.checked.text}")
    return Answer(r.text, text, got.text, "llm", mode,
                  checked.citations + (b.checked.citations if reason else []),
                  checked.numbers, notes + checked.notes, config.model, reason,
                  r.kind, _steps(toolbox), _usage(budget),
                  facts=list(b.sheet) if reason else [])

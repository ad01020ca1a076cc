"""The smallest job that helps: a model picks the question's kind from an enum (when the
analyst cannot tell), the analyst computes the facts, the model phrases them by reference.

A small model never plans tool calls and never computes here. Its two decisions are:

- :func:`route`: ``{"kind", "action", "agent", "time_s"}`` from enums (JSON-schema
  output, grammar-enforced by llama.cpp), validated field by field.
- :func:`phrase`: one to three sentences that refer to facts as ``{F3}``; the renderer
  puts each fact's worded value in ("4 agents", never a bare 4). A number the model types
  itself is checked (:meth:`features.facts.FactSheet.check`): invented or misplaced ones
  are replaced by ``[?]`` and listed in the notes. A phrasing that cites no fact or
  loses most of its numbers is dropped, and the analyst's own answer stands alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import prompts
from features.facts import FactSheet, NumberIssue
from steering.llm import LLMClient, LLMError, json_schema_format

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["Phrased", "RefStream", "Route", "phrase", "route", "route_schema"]

Progress = Callable[[str, str], None]
MARK = "[?]"
"""What replaces a number the model typed that is no fact."""
MAX_FACTS = 24
"""Facts shown to the phrasing model (the first ones: the analyst writes the answer first)."""


@dataclass(frozen=True)
class Route:
    """Which kind of question, and its arguments."""

    kind: str | None
    action: str = ""
    agent: str = ""
    time_s: float | None = None
    by: str = "analyst"
    """``analyst`` (its own reading of the question) or ``model``."""
    notes: tuple[str, ...] = ()
    read_as: str = ""
    """The question the model took this one to mean (one of :data:`CANON`)."""


def _names(run: Run) -> tuple[list[str], list[str]]:
    acts = run.actions()
    actions = sorted({str(a) for a in acts["action"].tolist() if a})[:40] if len(acts) else []
    ag = run.agents()
    agents = sorted({str(a) for a in ag["agent_id"].tolist() if a})[:30] if len(ag) else []
    return actions, agents


CANON: dict[str, str] = {
    "What happened to this run?": "story",
    "How many agents were launched?": "counts",
    "How many calls succeeded, failed or were cancelled?": "counts",
    "How many processes or workers were there?": "counts",
    "Was anything abnormal or unusual?": "abnormal",
    "What did the steering agent suggest or change?": "steering",
    "Did the calls get slower or faster over time?": "changes",
    "How long does an action usually take?": "durations",
    "Which call or action was the slowest?": "slowest",
    "Where did the time go?": "time",
    "Which agent crashed, and what raised an error?": "errors",
    "What was an agent doing at a given time?": "agent_at",
    "How many actions ran at once?": "concurrency",
    "How does this run compare with another run?": "compare",
    "Did anything hang or get stuck?": "hung",
    "None of these": "other",
}
"""Questions the analyst reads, one or more per kind. A small model matches a question to
the nearest of these far better than it names an abstract kind (measured: as a kind enum,
Qwen2.5-Coder-0.5B sent "did a worker die on us?" and "is next_item creeping up?" to
counts)."""


def route_schema(actions: list[str], agents: list[str]) -> dict[str, Any]:
    """The route reply: every string an enum, so a small model cannot wander."""
    return {"type": "object", "additionalProperties": False,
            "required": ["same_as", "action", "agent", "time_s"],
            "properties": {
                "same_as": {"type": "string", "enum": list(CANON)},
                "action": {"type": "string", "enum": ["", *actions]},
                "agent": {"type": "string", "enum": ["", *agents]},
                "time_s": {"type": "number"}}}


def route(client: LLMClient, run: Run, question: str, progress: Progress) -> Route:
    """The model's pick of the nearest question the analyst reads, and its arguments
    (validated: a value outside its enum is dropped with a note). Raises
    :class:`LLMError` when the reply is unusable."""
    actions, agents = _names(run)
    p = prompts.load("ask_route")
    progress("status", "choosing the kind of question…")
    res = client.chat([{"role": "user", "content": p.render(
        kinds="\n".join(f"- {q}" for q in CANON), actions=", ".join(actions) or "(none)",
        agents=", ".join(agents) or "(none)", question=question)}],
        response_format=json_schema_format("ask_route", route_schema(actions, agents)),
        max_tokens=120, prompt=(p.name, p.hash))
    got = res.json()
    if not isinstance(got, dict):
        raise LLMError("bad_response", "the route is not a JSON object")
    notes = []
    same = got.get("same_as")
    kind = CANON.get(same) if isinstance(same, str) else None
    if kind is None:
        notes.append(f"the model's pick {str(same)[:40]!r} is not one of the questions")
    if kind == "other":
        kind = None
    action = got.get("action") if got.get("action") in actions else ""
    agent = got.get("agent") if got.get("agent") in agents else ""
    t = got.get("time_s")
    time_s = float(t) if isinstance(t, int | float) and 0 <= t < 1e7 else None
    return Route(kind, str(action), str(agent), time_s, "model", tuple(notes),
                 str(same) if kind else "")


class RefStream:
    """Streamed model text with ``{F3}`` filled in as soon as the reference is complete."""

    def __init__(self, sheet: FactSheet, progress: Progress) -> None:
        self.sheet, self.progress, self.pending = sheet, progress, ""

    def feed(self, chunk: str) -> None:
        text = self.pending + chunk
        cut = text.rfind("{")
        if cut >= 0 and "}" not in text[cut:] and len(text) - cut < 12:
            text, self.pending = text[:cut], text[cut:]
        else:
            self.pending = ""
        if text:
            self.progress("delta", self.sheet.render(text).text)

    def close(self) -> None:
        if self.pending:
            self.progress("delta", self.sheet.render(self.pending).text)
            self.pending = ""


@dataclass
class Phrased:
    """The model's phrasing, rendered and checked."""

    text: str
    """Facts filled in, typed numbers that are no fact replaced by ``[?]``."""
    raw: str
    used: int = 0
    """Facts in the text: references filled in, and numbers typed that are a fact's value
    with its noun."""
    issues: list[NumberIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: str | None = None
    """Why the phrasing is not shown (the analyst's answer stands alone), or ``None``."""


def phrase(client: LLMClient, question: str, sheet: FactSheet, progress: Progress,
           max_tokens: int = 160, known: FactSheet | None = None) -> Phrased:
    """One to three sentences over the sheet's facts (streamed to ``progress`` with facts
    filled in), checked (typed numbers also against ``known``: the run's other counts, so
    a record count put on agents is called misplaced). Raises :class:`LLMError` when the
    model fails."""
    p = prompts.load("ask_phrase")
    progress("status", "phrasing the facts…")
    stream = RefStream(sheet, progress)
    result = None
    for item in client.stream_chat(
            [{"role": "user", "content": p.render(question=question,
                                                  facts=sheet.lines(MAX_FACTS))}],
            max_tokens=max_tokens, prompt=(p.name, p.hash)):
        if isinstance(item, str):
            stream.feed(item)
        else:
            result = item
    stream.close()
    raw = (result.content if result is not None else "").strip()
    return check_phrasing(raw, question, sheet, known)


def check_phrasing(raw: str, question: str, sheet: FactSheet,
                   known: FactSheet | None = None) -> Phrased:
    """Render ``raw``'s fact references and mark the numbers it typed that are no fact (of
    ``sheet`` or ``known``) or a fact's value on another noun."""
    got = sheet.render(raw)
    text = got.text
    typed, issues = (sheet.merged(known) if known else sheet).audit(text, question,
                                                                    skip=got.spans)
    for i in sorted(issues, key=lambda i: -i.start):
        text = text[:i.start] + MARK + text[i.end:]
    out = Phrased(text.strip(), raw, len(got.used) + len(typed), issues)
    if got.bad:
        out.notes.append(f"Removed {len(got.bad)} reference(s) to facts that do not exist: "
                         + ", ".join(got.bad[:5]) + ".")
    invented = [i for i in issues if i.why == "invented"]
    misplaced = [i for i in issues if i.why == "misplaced"]
    if invented:
        out.notes.append(f"The model typed {len(invented)} number(s) that are no fact of this "
                         f"answer; they are replaced by {MARK}: "
                         + ", ".join(i.text for i in invented[:6]) + ".")
    if misplaced:
        out.notes.append("The model put a number on the wrong noun, replaced by "
                         f"{MARK}: " + "; ".join(i.detail for i in misplaced[:4]) + ".")
    if not raw:
        out.dropped = "the model wrote nothing"
    elif not out.used and sheet.facts:
        out.dropped = "the model's phrasing holds no fact"
    elif len(issues) > out.used:
        out.dropped = (f"the model typed {len(issues)} number(s) that are no fact, against "
                       f"{out.used} fact(s) referred to")
    return out

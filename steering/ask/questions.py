"""Reading a question: what kind it is, and the durations, times, agents and runs it names.

Deterministic and small on purpose: the built-in analyst answers the kinds listed in
:data:`KINDS`; the LLM paths use :func:`expected_in` so "I expected 16 s" reaches the
breakdown whichever backend answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["KINDS", "Reading", "agent_in", "classify", "expected_in", "read", "run_refs_in",
           "time_in"]

KINDS: dict[str, str] = {
    "story": "what happened to this run (status, crashes, hangs, slowdowns, steering)",
    "counts": "how many agents, calls (by outcome), processes, errors or records",
    "abnormal": "whether anything was abnormal",
    "steering": "what the steering agent suggested or changed, and when",
    "changes": "what changed in how long calls take (\"why are the first calls slower?\")",
    "durations": "how long an action's calls take (typical, p95, longest)",
    "slowest": "which actions (or agents) were slowest, and slowdowns",
    "time": "where the time went (say \"I expected 16 s\" to explain the excess)",
    "errors": "errors and exceptions",
    "agent_at": "what agent X was doing at time T (\"what was AgentId<2c1ec60a> doing at "
                "1.5 s?\")",
    "concurrency": "how many actions ran at once",
    "compare": "how this run compares with another (name its uuid or use --compare)",
    "hung": "whether anything is hung or never finished",
}
"""Question kinds the built-in analyst answers, with how to ask them."""

_NUM = r"(\d+(?:\.\d+)?)"
_UNIT = (r"(ms|milliseconds?|msecs?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)"
         r"(?![a-z])")
_EXPECT = re.compile(
    r"(?:expect\w*|should(?:\s+have)?\s+(?:take|taken|last|run)\w*|supposed\s+to\s+"
    r"(?:take|last)|instead\s+of|rather\s+than|budget(?:ed)?|target(?:ed)?|planned)"
    r"\D{0,30}?" + _NUM + r"\s*(?:" + _UNIT + r")?", re.IGNORECASE)
_AT_TIME = re.compile(
    r"(?:\bat\s+(?:t\s*=\s*)?\+?|@\s*|\bt\s*=\s*\+?|\bsecond\s+|\+)" + _NUM
    + r"\s*(?:" + _UNIT + r")?|" + _NUM + r"\s*" + _UNIT
    + r"\s+(?:into|after\s+the\s+start)", re.IGNORECASE)
_AGENT_ID = re.compile(r"AgentId<([^<>\s]{1,64})>")
_COMPARE = re.compile(r"\b(compare\w*|comparison|diff\w*|versus|vs\.?|other\s+run|"
                      r"previous\s+run)\b", re.I)
_HEX = re.compile(r"\b[0-9a-f]{6,}(?:-[0-9a-f]{4,})*\b", re.IGNORECASE)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("changes", re.compile(
        r"(what\s+changed|\bchang\w*\s+(at|after|from|in\s+(speed|duration|time))|level\s+"
        r"shift|\bdrift\w*|speed\w*\s*up|sped\s+up|(get|gets|got|getting)\s+(faster|slower)|became\s+(faster|"
        r"slower)|(first|early|earlier|initial|later|last)\b[^?]{0,60}\b(slower|faster|longer|"
        r"quicker)\s+than\b[^?]{0,40}\b(later|last|first|earlier|rest|others|ones))", re.I)),
    ("steering", re.compile(r"\b(steer\w*|remed\w*|knob\w*|approv\w*|suggest\w*)\b", re.I)),
    ("compare", re.compile(r"\b(compare\w*|comparison|diff\w*|versus|vs\.?|(slower|faster|"
                           r"longer|quicker|shorter)\s+than|than\s+(run|the\s+"
                           r"other|the\s+previous|last\s+time|before|yesterday)|other\s+run|"
                           r"previous\s+run|regress\w*)\b", re.I)),
    ("hung", re.compile(r"\b(hung|hang\w*|stuck|frozen|freez\w*|deadlock\w*|never\s+"
                        r"(finish|return|complet|end)\w*|still\s+(running|waiting)|"
                        r"unfinished|in\s+flight|orphan\w*|not\s+finish\w*)\b", re.I)),
    ("abnormal", re.compile(r"\b(abnormal\w*|anomal\w*|unusual|odd|strange|weird|out\s+of\s+"
                            r"the\s+ordinary|anything\s+(wrong|off|bad)|suspicious|healthy|"
                            r"look\w*\s+(ok|fine|normal|right))\b", re.I)),
    ("errors", re.compile(r"\b(errors?|exceptions?|fail\w*|crash\w*|rais\w*|traceback\w*|"
                          r"went\s+wrong|broken|problems?|warnings?)\b", re.I)),
    ("concurrency", re.compile(r"(at\s+once|at\s+the\s+same\s+time|concurren\w*|parallel\w*|"
                               r"simultaneous\w*|in\s+parallel|overlap\w*|how\s+many\s+\w+\s+"
                               r"(were\s+)?(running|executing|active|alive))", re.I)),
    ("counts", re.compile(r"\b(how\s+many|number\s+of|count\s+of|count\s+the|total\s+"
                          r"(number|count))\b", re.I)),
    ("story", re.compile(r"(what\s+(happened|went\s+on|is\s+going\s+on|did\s+(this|the)\s+run"
                         r"\s+do)|summar\w*|overview|tell\s+me\s+about|in\s+short|in\s+a\s+"
                         r"nutshell|\bstory\b|describe\s+(this|the)\s+run)", re.I)),
    ("time", re.compile(r"(where\b.*\btime|time\s+go|took\s+so\s+long|take\s+so\s+long|"
                        r"why\b.*\b(slow|long|took|take|late)|expect\w*|breakdown|overhead|wall|"
                        r"how\s+long|duration|spent|excess|longer\s+than)", re.I)),
    ("slowest", re.compile(r"\b(slow\w*|longest|bottleneck\w*|most\s+time|took\s+the\s+most|"
                           r"take\s+the\s+most|fastest|quickest)\b", re.I)),
]


_DURATION = re.compile(r"(how\s+long\s+(does|do|did|is|are)\b|typical\w*|usually|normally|"
                       r"median|p95|percentile|average|on\s+average|how\s+fast|how\s+slow)",
                       re.I)


def _actions_named(question: str, run: Run) -> tuple[str, ...]:
    """The run's actions the question names, in the order it names them."""
    names = {str(a) for a in run.actions()["action"].tolist() if a}
    out: list[str] = []
    for w in re.findall(r"[A-Za-z_]\w*", question):
        if w in names and w not in out:
            out.append(w)
    return tuple(out)


def _names_action(question: str, run: Run) -> bool:
    return bool(_actions_named(question, run))


def classify(question: str, run: Run | None = None) -> str | None:
    """The kind of ``question`` (a key of :data:`KINDS`), or ``None``.

    "What was X doing at T" needs an agent and a time; the others go by keywords, in the
    order compare, hung, errors, concurrency, time, slowest (a question about why it took
    so long is about time, one about what was slowest is about actions)."""
    q = question.strip()
    if time_in(q) is not None and (
            _AGENT_ID.search(q) or re.search(r"\bdoing\b|\bwhat\s+was\b|\bbusy\b|happen",
                                             q, re.I)
            or (run is not None and agent_in(q, run) is not None)):
        return "agent_at"
    if expected_in(q) is not None and not _COMPARE.search(q):
        return "time"
    if run is not None and _DURATION.search(q) and _names_action(q, run):
        return "durations"
    for kind, pattern in _PATTERNS:
        if pattern.search(q):
            if kind == "time" and re.search(r"\bslowest\b|\blongest\b", q, re.I) \
                    and not _EXPECT.search(q):
                return "slowest"
            return kind
    return None


def _seconds(value: str, unit: str | None) -> float:
    u = (unit or "s").lower()
    if u.startswith(("ms", "mil")):
        return float(value) * 0.001
    if u.startswith("h"):
        return float(value) * 3600.0
    if u.startswith("m"):
        return float(value) * 60.0
    return float(value)


def expected_in(question: str) -> float | None:
    """Seconds the user expected, from "expected 16 s", "should take 1.5 min", "instead of
    16s", "budget 500 ms"; ``None`` when the question names none."""
    m = _EXPECT.search(question)
    return _seconds(m.group(1), m.group(2)) if m else None


def time_in(question: str) -> float | None:
    """Seconds since the run's start from "at 1.5 s", "at t=2", "@3.2s", "+1.2 s",
    "2 s into the run"; ``None`` when the question names no time."""
    for m in _AT_TIME.finditer(question):
        if m.group(1) is not None:
            return _seconds(m.group(1), m.group(2))
        return _seconds(m.group(3), m.group(4))
    return None


def agent_in(question: str, run: Run) -> str | None:
    """The agent the question names (``AgentId<...>``, an id prefix, a name or a class
    with one agent), as a string :func:`steering.ask.lookups.find_agent` accepts."""
    m = _AGENT_ID.search(question)
    if m:
        return m.group(0)
    ag = run.agents()
    ids = [str(a) for a in ag["agent_id"].tolist()]
    for h in _HEX.findall(question):
        low = h.lower()
        if any(a.lower().removeprefix("agentid<").startswith(low) for a in ids):
            return low
    words = set(re.findall(r"[A-Za-z_][\w]*", question))
    classes = {str(c) for c in ag["class"].tolist()}
    for cls in classes:
        if cls in words:
            return cls
    # "the launcher", "the generator": part of exactly one class name.
    low = {w.lower() for w in words if len(w) >= 5}
    hits = {c for c in classes for w in low if w in c.lower()}
    if len(hits) == 1:
        return hits.pop()
    for name in {str(n) for n in ag["name"].tolist() if n}:
        if name in words:
            return name
    return None


def run_refs_in(question: str, run: Run) -> list[str]:
    """Hex tokens of the question that could name another run (uuids or prefixes that are
    not this run's, nor one of its agents, actions or files)."""
    own = run.uuid.lower()
    ids = " ".join([*(str(a) for a in run.agents()["agent_id"].tolist()),
                    *(str(t) for t in run.actions()["tag"].tolist()),
                    *run.events().file_names]).lower()
    out = []
    for h in _HEX.findall(question):
        low = h.lower()
        if len(low) >= 6 and not own.startswith(low) and low not in ids:
            out.append(low)
    return out


@dataclass(frozen=True)
class Reading:
    """A question read once, with everything the answer needs from its words.

    :func:`steering.ask.engine.ask` reads the question here and hands this on; the analyst,
    the model paths and the fallbacks take what they need from it and never read the text
    again (one pass: question -> kind -> facts -> rendered answer)."""

    text: str
    """The question as asked (whitespace collapsed)."""
    kind: str | None
    """A key of :data:`KINDS`, or ``None`` when the question fits none."""
    expected_s: float | None = None
    """The expected run time: from the question ("I expected 16 s") or ``--expect``."""
    time_s: float | None = None
    """A time since the run's start the question names ("at 1.5 s")."""
    agent: str | None = None
    """An agent the question names (as :func:`steering.ask.lookups.find_agent` takes it)."""
    actions: tuple[str, ...] = ()
    """Actions of the run the question names."""
    run_refs: tuple[str, ...] = ()
    """Hex tokens that could name another run."""
    by: str = "analyst"
    """Who chose :attr:`kind`: ``analyst`` (its own reading) or ``model`` (a route)."""
    read_as: str = ""
    """The question a model took this one to mean, when it routed it."""

    @property
    def said(self) -> str:
        """The words an answer's wording choices go by: the question and, when a model
        routed it, the question it was read as."""
        return f"{self.text} ({self.read_as})" if self.read_as else self.text

    @property
    def action(self) -> str | None:
        return self.actions[0] if self.actions else None

    def routed(self, kind: str | None, *, action: str = "", agent: str = "",
               time_s: float | None = None, read_as: str = "") -> Reading:
        """This reading with a model's route: its kind, and the arguments the question did
        not give itself (what the question says wins over the model's pick). A route with
        no kind ("none of these") leaves the analyst's own kind and arguments as they were."""
        if kind is None:  # the model read it as none of the kinds
            return replace(self, by="model")
        actions = self.actions or ((action,) if action else ())
        return replace(self, kind=kind, by="model", read_as=read_as, actions=actions,
                       agent=self.agent or agent or None,
                       time_s=self.time_s if self.time_s is not None else time_s)


def read(question: str, run: Run, *, others: Sequence[object] = (),
         expected_s: float | None = None) -> Reading:
    """Read ``question`` about ``run`` once. ``others`` are runs passed to compare with (a
    question of no known kind is then a comparison); ``expected_s`` (``--expect``) wins
    over a time in the question, and makes a question of no known kind a time question."""
    text = " ".join(question.split())
    expected = expected_s if expected_s is not None else expected_in(text)
    kind = classify(text, run)
    if kind is None and others:
        kind = "compare"
    if kind is None and expected_s is not None:
        kind = "time"
    return Reading(text, kind, expected, time_in(text), agent_in(text, run),
                   _actions_named(text, run), tuple(run_refs_in(text, run)))

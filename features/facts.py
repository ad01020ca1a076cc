"""Typed facts: a number with its unit and what it counts, worded once, cited.

An answer about a run is made of facts. Each :class:`Fact` has an id (``F3``), a value,
a unit (``s``, ``time``, ``count``, ``%``, ``x``), the noun it counts ("agents",
"error records") and its rendering ("4 agents", "0.512 s", "+3.200 s"). A writer (the
built-in analyst or a model) refers to facts by id; :meth:`FactSheet.render` puts the
worded value in, so a record count can never be written as a number of agents. Numbers a
writer types itself are checked by :meth:`FactSheet.check`: one that is no fact (nor in
the question) is *invented*; one that is a fact's value but followed by another noun
("799 agents" when 799 counts records) is *misplaced*.

>>> sheet = FactSheet()
>>> sheet.count(4, "agent", what="agents launched")
'4 agents'
>>> sheet.render("The run launched {F1}.").text
'The run launched 4 agents.'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from features.fmt import fmt_dur

__all__ = ["Fact", "FactSheet", "NumberIssue", "Rendered", "current", "fmt_at", "fmt_dur",
           "sheet_scope"]


def fmt_at(x: float | None) -> str:
    """A time point since the run's start: ``+3.200 s``."""
    return "+?" if x is None else f"+{x:.3f} s"


@dataclass(frozen=True)
class Fact:
    """One number of an answer, with what it is."""

    id: str
    value: float
    unit: str
    """``count``, ``s`` (a duration), ``time`` (since the run's start), ``%``, ``x``."""
    noun: str
    """What it counts or measures: "agents launched", "median of next_item"."""
    text: str
    """How it is written: "4 agents", "0.512 s"."""
    ev: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "value": self.value, "unit": self.unit, "noun": self.noun,
                "text": self.text, "ev": list(self.ev)}


@dataclass(frozen=True)
class Rendered:
    """A writer's text with its fact references filled in."""

    text: str
    used: list[Fact]
    """The facts referred to, in order (repeats kept)."""
    bad: list[str]
    """References that name no fact (removed from the text)."""
    spans: list[tuple[int, int]]
    """Where the facts' texts are in :attr:`text`."""


@dataclass(frozen=True)
class NumberIssue:
    """A number a writer typed that is not a fact as written."""

    text: str
    why: str
    """``invented`` (no fact has this value) or ``misplaced`` (the value is a fact's,
    the noun after it is not)."""
    detail: str
    start: int
    end: int


_REF = re.compile(r"\{\s*(F\d{1,4})\s*\}")
_NUM = re.compile(r"(?<![\w.<>:/#@$+-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
                  r"(\s?(?:ms|s|min|%|x|×)(?![\w]))?(?:\s+([A-Za-z][a-z]+))?")
_SCALE = {"ms": 1e-3, "min": 60.0}
# Nouns that say what a number counts: a number followed by one of these must be a fact
# with the same noun (a record count is no number of agents).
COUNT_NOUNS = ("agent", "call", "process", "record", "file", "error", "warning", "event",
               "line", "suggestion", "slowdown", "incident", "run", "exception", "message")
# Words that name the same thing in Academy: a call of an action is "an action" too.
SAME = {"action": "call", "invocation": "call", "task": "call", "log": "record",
        "entry": "record", "entrie": "record", "traceback": "error", "failure": "error",
        "agents": "agent"}


def _stem(word: str) -> str:
    w = word.lower()
    for suffix in ("es", "s"):
        base = w[: -len(suffix)]
        if w.endswith(suffix) and (base in COUNT_NOUNS or base in SAME):
            w = base
            break
    return SAME.get(w, w)


@dataclass
class FactSheet:
    """The facts of one answer, in the order they were written."""

    facts: list[Fact] = field(default_factory=list)
    _by_text: dict[tuple[str, str], Fact] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.facts)

    def __iter__(self) -> Iterator[Fact]:
        return iter(self.facts)

    def get(self, fid: str) -> Fact | None:
        i = fid[1:]
        if fid[:1] != "F" or not i.isdigit() or not 1 <= int(i) <= len(self.facts):
            return None
        return self.facts[int(i) - 1]

    def add(self, value: float, unit: str, noun: str, text: str,
            ev: Sequence[str] = ()) -> Fact:
        """Record a fact (the same text and noun twice is one fact) and return it."""
        key = (text, noun)
        got = self._by_text.get(key)
        if got is not None:
            return got
        f = Fact(f"F{len(self.facts) + 1}", float(value), unit, noun, text,
                 tuple(e for e in ev if e))
        self.facts.append(f)
        self._by_text[key] = f
        return f

    def merged(self, other: FactSheet) -> FactSheet:
        """A new sheet: these facts (same ids), then ``other``'s that are not already here."""
        out = FactSheet()
        for f in [*self.facts, *other.facts]:
            out.add(f.value, f.unit, f.noun, f.text, f.ev)
        return out

    # -- writing facts ---------------------------------------------------------------------

    def count(self, n: int, noun: str, plural: str | None = None, *, what: str = "",
              ev: Sequence[str] = ()) -> str:
        """``4 agents`` (``1 agent``), recorded as a count of ``what`` (default: the
        plural noun)."""
        word = noun if n == 1 else plural or noun + "s"
        text = f"{n} {word}"
        self.add(n, "count", what or (plural or noun + "s"), text, ev)
        return text

    def dur(self, x: float | None, what: str = "a duration", ev: Sequence[str] = ()) -> str:
        text = fmt_dur(x)
        if x is not None and math.isfinite(x):
            self.add(x, "s", what, text, ev)
        return text

    def at(self, x: float | None, what: str = "a time since the run's start",
           ev: Sequence[str] = ()) -> str:
        text = fmt_at(x)
        if x is not None and math.isfinite(x):
            self.add(x, "time", what, text, ev)
        return text

    def pct(self, x: float, what: str) -> str:
        text = f"{x:g}%"
        self.add(x, "%", what, text)
        return text

    def ratio(self, x: float, what: str) -> str:
        text = f"{x:g}x"
        self.add(x, "x", what, text)
        return text

    # -- reading what a writer wrote -------------------------------------------------------

    def lines(self, limit: int = 30) -> str:
        """The facts for a prompt, one per line: ``F1 = 4 agents (agents launched)``."""
        out = [f"{f.id} = {f.text} ({f.noun})" for f in self.facts[:limit]]
        return "\n".join(out)

    def render(self, template: str) -> Rendered:
        """``template`` with every ``{F3}`` replaced by its fact's text; references that
        name no fact are removed (and listed)."""
        out: list[str] = []
        used: list[Fact] = []
        bad: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = size = 0
        for m in _REF.finditer(template):
            piece = template[pos:m.start()]
            out.append(piece)
            size += len(piece)
            f = self.get(m.group(1))
            if f is None:
                bad.append(m.group(1))
            else:
                used.append(f)
                out.append(f.text)
                spans.append((size, size + len(f.text)))
                size += len(f.text)
            pos = m.end()
        out.append(template[pos:])
        return Rendered("".join(out), used, bad, spans)

    def check(self, text: str, question: str = "",
              skip: Sequence[tuple[int, int]] = ()) -> list[NumberIssue]:
        """Numbers in ``text`` (outside the ``skip`` spans: rendered facts, citations) that
        are no fact: invented, or a fact's value put on another noun."""
        return self.audit(text, question, skip)[1]

    def audit(self, text: str, question: str = "", skip: Sequence[tuple[int, int]] = ()
              ) -> tuple[list[Fact], list[NumberIssue]]:
        """The facts that numbers typed in ``text`` trace to, and the numbers that trace to
        none (see :meth:`check`)."""
        asked = {v for v, _ in _numbers(question)}
        traced: list[Fact] = []
        issues = []
        for m in _NUM.finditer(text):
            if any(s <= m.start() < e for s, e in skip):
                continue
            value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
            unit = (m.group(3) or "").strip()
            word = m.group(4) or ""
            decimals = len(m.group(2) or ".") - 1
            same = [f for f in self.facts if _same(value, unit, decimals, f)]
            noun = _stem(word) if word else ""
            end = m.end(3) if m.group(3) else m.end(2) if m.group(2) else m.end(1)
            token = text[m.start():end]
            if not same:
                if value in asked:
                    continue
                issues.append(NumberIssue(token, "invented", "no fact has this value",
                                          m.start(), end))
            elif noun in COUNT_NOUNS and not any(noun in _nouns(f) for f in same):
                issues.append(NumberIssue(
                    f"{token} {word}", "misplaced",
                    f"{token} counts {same[0].noun}, not {word}", m.start(), end))
            else:
                traced.append(next((f for f in same if noun and noun in _nouns(f)), same[0]))
        return traced, issues


def _nouns(f: Fact) -> set[str]:
    return {_stem(w) for w in re.findall(r"[A-Za-z]+", f"{f.noun} {f.text}")}


def _numbers(text: str) -> list[tuple[float, str]]:
    return [(float(m.group(1).replace(",", "") + (m.group(2) or "")),
             (m.group(3) or "").strip()) for m in _NUM.finditer(text)]


def _same(value: float, unit: str, decimals: int, f: Fact) -> bool:
    """``value`` as written (``unit``, ``decimals`` digits) could be fact ``f``."""
    if f.unit in ("s", "time"):
        secs = value * _SCALE.get(unit, 1.0)
        tol = 0.5 * 10.0 ** -decimals * _SCALE.get(unit, 1.0)
        return unit in ("", "s", "ms", "min") and abs(secs - f.value) <= max(
            tol, 0.005 * abs(f.value)) + 1e-9
    if unit in ("ms", "s", "min"):
        return False
    tol = 0.5 * 10.0 ** -decimals
    return abs(value - f.value) <= max(tol, 0.005 * abs(f.value)) + 1e-9


_CURRENT: ContextVar[FactSheet | None] = ContextVar("academy_tui_facts", default=None)


def current() -> FactSheet:
    """The sheet being written (a throwaway one outside :func:`sheet_scope`)."""
    got = _CURRENT.get()
    return got if got is not None else FactSheet()


@contextmanager
def sheet_scope(sheet: FactSheet | None = None) -> Iterator[FactSheet]:
    """Every fact written inside goes to ``sheet`` (a new one by default)."""
    sheet = sheet if sheet is not None else FactSheet()
    token = _CURRENT.set(sheet)
    try:
        yield sheet
    finally:
        _CURRENT.reset(token)

"""Evidence ids: how answers cite a run, and what a citation points at.

Three forms, the same for the LLM and the built-in analyst (``prompts/ask_system.txt``
teaches them):

=========================  ==================================================
``[ev:FILE:LINE]``         one event: the first 8 characters of its pool file
                           name and its 1-based line (``[ev:f03f8efc:43]``)
``[act:TAG8]``             one action: the first 8 characters of its tag
``[agent:AgentId<...>]``   one agent (or a caller ``UserId<...>``), as logged
=========================  ==================================================

:class:`EvidenceIndex` resolves a citation against a run: whether it exists, a label
for people, the event rows it stands for and a filter expression that selects them
(what a UI jumps to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["CITATION", "Citation", "EvidenceIndex", "act_ref", "agent_ref", "ev_ref",
           "find_refs", "quote"]

MAX_ROWS = 10_000
"""Event rows kept per citation (an agent can have hundreds of thousands)."""

CITATION = re.compile(r"\[((?:ev|act|agent):[^\[\]\s]{1,120}"
                      r"(?:\s*[,;]\s*(?:ev|act|agent):[^\[\]\s]{1,120})*)\]")
"""A bracket holding one citation or several separated by commas."""
_ONE = re.compile(r"(ev|act|agent):([^\[\]\s,;]{1,120})")
_EV = re.compile(r"^([0-9A-Za-z_-]{4,64}):(\d{1,9})$")
_ACT = re.compile(r"^[0-9a-fA-F-]{6,36}$")
_AGENT = re.compile(r"^(?:Agent|User)Id<[^<>\s]{1,64}>$")


def ev_ref(file_name: str | None, line: int) -> str:
    """``ev:FILE8:LINE`` of an event."""
    return f"ev:{(file_name or '?')[:8]}:{int(line)}"


def act_ref(tag: str | None) -> str:
    """``act:TAG8`` of an action."""
    return f"act:{(tag or '?')[:8]}"


def agent_ref(agent_id: str | None) -> str:
    """``agent:AgentId<...>`` of an agent."""
    return f"agent:{agent_id}"


def find_refs(text: str) -> list[tuple[int, int, list[str]]]:
    """The citations in ``text``: ``(start, end, refs)`` per bracket, in order."""
    out = []
    for m in CITATION.finditer(text):
        refs = [f"{k}:{v.rstrip('.')}" for k, v in _ONE.findall(m.group(1))]
        out.append((m.start(), m.end(), refs))
    return out


def quote(value: object, limit: int = 160) -> str:
    """Log-derived text, made safe to put in a prompt or an answer: one line, control
    characters escaped, at most ``limit`` characters, inside ``«`` ``»`` so a reader (or a
    model) can tell where the data ends. Never interpret what is inside."""
    s = "" if value is None else str(value)
    s = s.replace("«", "‹").replace("»", "›")
    s = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                else " " for ch in s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return f"«{s}»"


@dataclass(frozen=True)
class Citation:
    """One cited event, action or agent, checked against the run."""

    ref: str
    """As cited, without brackets: ``ev:f03f8efc:43``, ``act:18268d60``, ``agent:...``."""
    kind: str
    """``event``, ``action``, ``agent`` or ``unknown``."""
    valid: bool
    """It names exactly one thing that exists in the run."""
    label: str = ""
    """For people: ``event f03f8efc:43 +0.007 s DEBUG academy.handle``."""
    rows: tuple[int, ...] = ()
    """Event rows (store rows) it stands for, in time order, at most :data:`MAX_ROWS`."""
    expr: str = ""
    """A filter expression selecting those events (``""`` when invalid)."""
    reason: str = ""
    """Why it is not valid."""
    in_sources: bool = True
    """It appeared in the data the answer was built from (a valid citation the model did
    not see is still real, but was guessed)."""

    @property
    def text(self) -> str:
        """``[ref]``, as written in answers."""
        return f"[{self.ref}]"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "kind": self.kind, "valid": self.valid, "label": self.label,
                "rows": list(self.rows[:50]), "row_count": len(self.rows), "expr": self.expr,
                "reason": self.reason, "in_sources": self.in_sources}


@dataclass
class EvidenceIndex:
    """Resolves citations against one run (built lazily from its current snapshot)."""

    run: Run
    _cache: dict[str, Citation] = field(default_factory=dict)

    def resolve(self, ref: str) -> Citation:
        """The :class:`Citation` for ``ref`` (``ev:...``, ``act:...`` or ``agent:...``)."""
        if ref not in self._cache:
            kind, _, value = ref.partition(":")
            fn = {"ev": self._event, "act": self._action, "agent": self._agent}.get(kind)
            self._cache[ref] = fn(ref, value) if fn else Citation(
                ref, "unknown", False, reason="not an ev:, act: or agent: citation")
        return self._cache[ref]

    def _event(self, ref: str, value: str) -> Citation:
        m = _EV.match(value)
        if not m:
            return Citation(ref, "event", False, reason="not FILE:LINE")
        ev = self.run.events()
        prefix, line = m.group(1).lower(), int(m.group(2))
        files = [i for i, name in enumerate(ev.file_names) if name.lower().startswith(prefix)]
        if len(files) != 1:
            why = "no pool file starts with" if not files else "several pool files start with"
            return Citation(ref, "event", False, reason=f"{why} {prefix!r}")
        rows = np.flatnonzero((ev.file == files[0]) & (ev.line == line))
        if not len(rows):
            return Citation(ref, "event", False,
                            reason=f"file {prefix} has no record on line {line}")
        row = int(rows[0])
        stem = ev.file_names[files[0]].rsplit(".", 1)[0]
        level = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(
            int(ev.ints["levelno"][row]), "")
        label = (f"event {prefix[:8]}:{line} +{ev.created[row] - ev.t0:.3f} s {level} "
                 f"{quote(ev.message[row], 80)}")
        return Citation(ref, "event", True, label, (row,), f"@file={stem} and @line={line}")

    def _action(self, ref: str, value: str) -> Citation:
        if not _ACT.match(value):
            return Citation(ref, "action", False, reason="not an action tag")
        acts = self.run.actions()
        low = value.lower()
        hits = [i for i, t in enumerate(acts["tag"].tolist()) if str(t).lower().startswith(low)]
        if len(hits) != 1:
            why = "no action tag starts with" if not hits else "several action tags start with"
            return Citation(ref, "action", False, reason=f"{why} {value!r}")
        r = acts.row(hits[0])
        expr = f"academy.action_tag={r['tag']}"
        rows = self.run.select(expr)[:MAX_ROWS]
        label = f"action {r['action']} {str(r['tag'])[:8]} on {r['agent_id']} ({r['status']})"
        return Citation(ref, "action", True, label, tuple(int(x) for x in rows), expr)

    def _agent(self, ref: str, value: str) -> Citation:
        if not _AGENT.match(value):
            return Citation(ref, "agent", False, reason="not AgentId<...> or UserId<...>")
        ev = self.run.events()
        from features.normalize import canonical_id

        want = canonical_id(value) or value
        who = self.run.event_agents()
        mask = np.asarray(who == want, dtype=bool)
        if not mask.any() and "academy.src" in ev.codes:
            mask = np.asarray(ev.strings("academy.src") == want, dtype=bool)
        if not mask.any():
            return Citation(ref, "agent", False, reason=f"no agent {value} in this run")
        rows = ev.order[mask[ev.order]][:MAX_ROWS]
        ag = self.run.agents()
        cls = ""
        if len(ag):
            hit = np.flatnonzero(ag["agent_id"] == want)
            if len(hit):
                cls = f" ({ag['class'][hit[0]]})"
        key = "academy.src" if want.startswith("UserId") else "academy.agent_id"
        return Citation(ref, "agent", True, f"agent {want}{cls}",
                        tuple(int(x) for x in rows), f"{key}={want}")

"""What people read about an incident (``steering.summary``): facts, never log text.

The 0.5B model's summaries copied claims planted in log messages ("set the weight of all
agents to 1000") into the summary, stated as the steering agent's own finding (issue 15).
So the summary is written here, from the incident's facts: ids, counts, ratios,
durations, times and the remedy chosen, each number a :class:`~features.facts.Fact`.
Text that came from log records (what happened around a change, ``features.around``) is
shown in double quotes after ``the log shows:``: data, not a finding. Names read from
records (agent class, action, agent ids) are used bare only when they look like names.

A model's words are added only when :func:`vet` passes them: every number a fact
(:func:`steering.ask.kinds_mode.check_phrasing`, as for answers to questions), and no
run of :data:`RUN` words copied, outside double quotes, from the log-derived lines it was
shown (the explanation, the causes) that our own fact text does not also hold.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from features.facts import FactSheet
from features.safe import clean
from steering.policy import Remedy
from steering.watch import SteerIncident

__all__ = ["RUN", "IncidentFacts", "clock", "copied", "ident", "incident_facts", "quote",
           "summary", "vet"]

RUN = 4
"""Words in a row that make a copy: "set the weight of" is one; "slow calls of" is not."""
QUOTE_MAX = 120
MAX_AGENTS = 4
_NAME = re.compile(r"[A-Za-z_][\w.]{0,79}(?:<[\w.-]{1,64}>)?")
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r'"[^"]*"')


def clock(t: float) -> str:
    """A wall-clock time with tenths: ``14:03:07.4``."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 10)}"


def quote(text: object, limit: int = QUOTE_MAX) -> str:
    """Log text as data: one line, in double quotes (its own made single, so it cannot
    end the quote early), cut at ``limit`` characters."""
    s = clean(text, 10 * limit).replace('"', "'")
    return '"' + (s if len(s) <= limit else s[:limit - 1] + "…") + '"'


def ident(name: object) -> str:
    """A name read from the records: bare when it looks like one (``Knobbed.step``,
    ``AgentId<1234abcd>``), quoted otherwise."""
    s = str(name)
    return s if _NAME.fullmatch(s) else quote(s, 60)


@dataclass
class IncidentFacts:
    """An incident's facts, and what a model may say about them."""

    sheet: FactSheet
    words: dict[str, str]
    """The worded facts the summary is written with: ``count``, ``max_ratio``,
    ``median_ratio``, ``usual``, ``excess``, ``since``, ``more_agents``."""
    clocks: dict[str, str]
    """Clock text -> its fact reference (``{F7}``): a typed ``14:03:07.4`` is a fact."""
    ours: list[str] = field(default_factory=list)
    """Text of ours a model may repeat (the facts, the remedies): not a copy."""


def incident_facts(inc: SteerIncident, remedies: Sequence[Remedy]) -> IncidentFacts:
    """The numbers of ``inc`` and of its remedies' calls, worded once."""
    s = FactSheet()
    w: dict[str, str] = {}
    group = ident(inc.group)
    if inc.change:
        w["count"] = s.count(inc.count, "call", what=f"calls of {group} at the new level")
    else:
        w["count"] = s.count(inc.count, "slow call", what=f"slow calls of {group}")
    if math.isfinite(inc.max_ratio):
        w["max_ratio"] = s.ratio(round(inc.max_ratio, 1),
                                 "the largest ratio of a call to the usual duration")
    if math.isfinite(inc.median_ratio):
        w["median_ratio"] = s.ratio(round(inc.median_ratio, 1),
                                    "the median ratio of the calls to the usual duration")
    if inc.baseline_s:
        w["usual"] = s.dur(inc.baseline_s, "what a call took before the incident")
    w["excess"] = s.dur(inc.excess_s, "time the calls took beyond the usual, summed")
    if len(inc.agents) > MAX_AGENTS:
        w["more_agents"] = s.count(len(inc.agents) - MAX_AGENTS, "other agent",
                                   what="slow agents not named")
    for agent, (n, _) in sorted(inc.per_agent.items()):
        s.count(n, "slow call", what=f"slow calls on {ident(agent)}")
    clocks = {}
    for t, what in ((inc.start, "when the calls started"), (inc.end, "when the last ended")):
        text = clock(t)
        clocks[text] = "{" + s.add(t, "time", what, text).id + "}"
    w["since"] = clock(inc.start)
    for r in remedies:
        for k, v in r.args.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                s.add(v, "value", f"{k} in remedy {r.id}", f"{k}={v:g}")
        if r.previous is not None:  # worded with the knob: a bare "1" could go anywhere
            s.add(r.previous, "value", f"{r.spec.knob} now on {ident(r.target.agent_id)}",
                  f"{r.spec.knob}={r.previous:g} now")
    ours = [s.lines(60), *(r.describe() for r in remedies)]
    return IncidentFacts(s, w, clocks, ours)


def summary(inc: SteerIncident, facts: IncidentFacts, remedy: Remedy | None,
            n_remedies: int) -> str:
    """The sentences people read: what, where, since when, the remedy chosen, and what
    the log shows around it (quoted)."""
    w = facts.words
    where = ", ".join(ident(a) for a in inc.agents[:MAX_AGENTS]) or "unknown agents"
    if "more_agents" in w:
        where += f" and {w['more_agents']}"
    usual = f"the usual {w['usual']}" if "usual" in w else "the group's median"
    if inc.change and "median_ratio" in w:
        how = f"a {inc.change.replace('_', ' ')}: {w['count']} at a median " \
              f"{w['median_ratio']} {usual}"
    elif "max_ratio" in w:
        how = f"{w['count']}, up to {w['max_ratio']} {usual}"
    else:
        how = w["count"]
    ev = f" [ev:{inc.evidence[0]}]" if inc.evidence else ""
    out = (f"Incident {ident(inc.id)} ({ident(inc.severity)}): {ident(inc.group)} on "
           f"{where}, {how}, {w['excess']} extra, since {w['since']}{ev}.")
    if remedy is not None:
        out += f" Remedy: {remedy.describe()}."
    else:
        out += " No remedy chosen." if n_remedies else " No declared remedy fits."
    if inc.cause:
        out += " Around it the log shows: " + "; ".join(quote(c) for c in inc.cause[:2]) + "."
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _runs(text: str) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i:i + RUN]) for i in range(len(w) - RUN + 1)}


def copied(text: str, sources: Sequence[str], ours: Sequence[str] = ()) -> str | None:
    """The first run of :data:`RUN` words of ``text``, outside double quotes, that is in
    ``sources`` (log-derived lines) and not in ``ours``; ``None`` when there is none."""
    bad: set[tuple[str, ...]] = set()
    for src in sources:
        bad |= _runs(src)
    for own in ours:
        bad -= _runs(own)
    for part in _QUOTED.split(text):
        w = _words(part)
        for i in range(len(w) - RUN + 1):
            if tuple(w[i:i + RUN]) in bad:
                return " ".join(w[i:i + RUN])
    return None


def vet(raw: str, facts: IncidentFacts, sources: Sequence[str], *, need_fact: bool = True
        ) -> tuple[str | None, str | None]:
    """A model's text with its fact references filled in, or ``None`` and why it is left
    out: a number that is no fact, a fact referred to that does not exist, unpaired double
    quotes, log text repeated unquoted, or (``need_fact``) no fact at all."""
    from steering.ask.kinds_mode import check_phrasing

    text = " ".join(raw.split())
    if not text:
        return None, "the model wrote nothing"
    for shown, ref in facts.clocks.items():
        text = text.replace(shown, ref)
    if text.count('"') % 2:
        return None, "its double quotes do not pair up"
    # Quoted text is data, not the model's claim: hidden from both checks.
    quoted: list[str] = []

    def hide(m: re.Match[str]) -> str:
        quoted.append(m.group(0))
        return f'"{_mark(len(quoted) - 1)}"'

    got = check_phrasing(_QUOTED.sub(hide, text), "", facts.sheet)
    if got.issues:
        return None, ("it typed number(s) that are no fact: "
                      + ", ".join(quote(i.text, 20) for i in got.issues[:4]))
    if got.notes:  # references to facts that do not exist
        return None, got.notes[0]
    if need_fact and got.dropped:
        return None, got.dropped
    same = copied(got.text, sources, facts.ours)
    if same is not None:
        return None, f"it repeats log text unquoted ({quote(same, 60)})"
    out = got.text
    for i, q in enumerate(quoted):
        out = out.replace(f'"{_mark(i)}"', q, 1)
    return out, None


def _mark(i: int) -> str:
    # Letters only: a digit in it would be checked as a number.
    return "quoted" + "".join(chr(97 + int(d)) for d in str(i))

"""One thing the detector found (:class:`Incident`) and the sentence people read about it.

Kinds:

- ``slowdown``: consecutive slow calls of one group (agent class, action);
- ``level_shift``: from one call on, the group's calls (on an agent) take much longer, for
  good or for a long stretch; ``speedup``: the same to faster; ``drift``: durations that
  grow (or shrink) steadily (:mod:`features.changepoint`);
- ``hung``: a call in flight past its group's limit, a call its caller cancelled after
  waiting that long, an agent whose shutdown took many times the others' or ended in a
  ``TimeoutError``, or a process whose log stopped in the middle of calls
  (:mod:`features.hangs`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from features.baseline import jsonable

KINDS = ("slowdown", "level_shift", "speedup", "drift", "hung")
HUNG = "hung"
"""The kind of a hung incident."""


def secs(x: float | None) -> str:
    """A duration as people read it: 0.40 s, 12.3 ms, 59.8 s."""
    if x is None or not math.isfinite(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f} s"
    if abs(x) >= 10:
        return f"{x:.1f} s"
    if abs(x) >= 0.1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms" if abs(x) >= 0.001 else f"{x * 1e6:.0f} us"


def times(r: float) -> str:
    """A ratio: 4.0x, 120x."""
    if not math.isfinite(r):
        return "-"
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x"


@dataclass
class Incident:
    """Something found about the calls of one group: see the module docstring."""

    id: int
    kind: str
    """``slowdown``, ``level_shift``, ``speedup``, ``drift`` or ``hung``."""
    group: str
    agent_class: str
    action: str
    start: float
    """Start of the first call (seconds since the epoch); a change: of its first call at
    the new level; a shutdown: when it began."""
    end: float
    """End of the last call (for calls still hung: the time judged at)."""
    count: int
    max_ratio: float
    """Largest ratio of a call's duration (for hung calls: time in flight so far) to the
    group's median; a change: its typical duration after against before (below 1 for a
    speed-up)."""
    excess_s: float
    """Seconds the calls took beyond the group's median, summed (a change: beyond the
    level before it; negative for a speed-up: seconds saved)."""
    severity: str
    """``high`` (5x or more, or 5+ calls), ``medium`` (3.5x, or 3+ calls) or ``low``;
    ``info`` for a speed-up."""
    tags: list[str]
    agents: list[str]
    evidence_rows: list[int]
    """Event rows of its calls' start, execute_start and end records (a change: its first
    call at the new level first, then the last call before it and the records of what
    happened around it; a shutdown: its records)."""
    things: list[dict[str, Any]] = field(default_factory=list)
    """Per call: tag, agent, status, duration, baseline, ratio, z, mv_score."""
    cause: list[str] = field(default_factory=list)
    """What happened around a change (an action called on the agent, a steering change,
    a user key that changed value, a new process), each with its evidence."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Kind-specific numbers: a change's ``at_call``, ``at_s`` (seconds since the run
    start), ``before_s``, ``after_s``, ``ratio``, ``calls``, ``ended``, ``until_call``,
    ``until_s``, ``p_value``; a hang's ``how`` (``in flight``, ``cancelled``,
    ``shutdown``, ``process stopped``), ``waited_s``, ``limit_s``, ``median_s``..."""

    def headline(self) -> str:
        """What it is, in one sentence, without what happened around it."""
        return f"#{self.id} {self.severity}: " + _WORDS.get(self.kind, _slowdown)(self)

    def describe(self) -> str:
        """One sentence for people (with what happened around a change)."""
        if self.cause:
            return self.headline() + "; around it: " + "; ".join(self.cause)
        return self.headline()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        d = asdict(self)
        d["description"] = self.describe()
        return jsonable(d)


def _slowdown(inc: Incident) -> str:
    plural = "s" if inc.count > 1 else ""
    return (f"{inc.count} slow call{plural} of {inc.group}, up to {inc.max_ratio:.1f}x its "
            f"median, {inc.excess_s:.3f}s extra over {inc.end - inc.start:.3f}s")


def _on(inc: Incident) -> str:
    n = len(inc.agents)
    return f" on {n} agents" if n > 1 else ""


def _level(inc: Incident) -> str:
    d = inc.detail
    r = d.get("ratio", inc.max_ratio)
    faster = inc.kind == "speedup"
    how = (f"{times(1 / r)} faster than its earlier {secs(d.get('before_s'))}" if faster
           else f"{times(r)} its earlier {secs(d.get('before_s'))}")
    out = (f"from +{d.get('at_s', math.nan):.1f} s (call {d.get('at_call', '?')}) "
           f"{inc.group}{_on(inc)} takes {secs(d.get('after_s'))}, {how} "
           f"({'a speed-up' if faster else 'a level shift'} over {inc.count} calls")
    if d.get("ended"):
        out += (f", until +{d.get('until_s', math.nan):.1f} s (call {d.get('until_call', '?')})"
                " when it went back")
    return out + ")"


def _drift(inc: Incident) -> str:
    d = inc.detail
    r = d.get("ratio", inc.max_ratio)
    way = times(r) if r >= 1 else f"{times(1 / r)} faster"
    return (f"{inc.group}{_on(inc)} drifting from {secs(d.get('before_s'))} to "
            f"{secs(d.get('after_s'))} over {inc.count} calls ({way}), from "
            f"+{d.get('at_s', math.nan):.1f} s")


def _hung(inc: Incident) -> str:
    d = inc.detail
    how = d.get("how", "in flight")
    if how == "shutdown" and d.get("run"):
        return (f"the run's shutdown hung: {secs(d.get('waited_s'))} after its last call "
                f"({d.get('share', 0) * 100:.0f}% of the run), ended by a TimeoutError")
    if how == "shutdown":
        who = ", ".join(inc.agents[:3]) + (f" +{len(inc.agents) - 3}" if len(inc.agents) > 3
                                           else "")
        out = (f"{inc.agent_class} {who} hung in shutdown: {secs(d.get('waited_s'))} from "
               "'Shutting down agent'")
        if d.get("share") is not None:
            out += f" ({d['share'] * 100:.0f}% of the run)"
        if d.get("others_s") is not None:
            out += f", while the other agents took {secs(d['others_s'])}"
        if d.get("timeout"):
            out += (", with a TimeoutError while waiting for it" if d.get("finished", True) else
                    ", ended by a TimeoutError")
        elif not d.get("finished", True):
            out += ", never finished"
        return out
    if how == "process stopped":
        calls = "1 call" if inc.count == 1 else f"{inc.count} calls"
        # No run start (incidents() without t0) or no time of the last record: said
        # without the time, not a TypeError on formatting None.
        at = d.get("stopped_s")
        when = f"at +{at:.3f} s " if isinstance(at, int | float) and math.isfinite(at) else ""
        return (f"the log of process {d.get('file', '?')} stopped {when}in the middle of "
                f"{calls} of {inc.group}: hung or killed")
    calls = "1 call" if inc.count == 1 else f"{inc.count} calls"
    what = (f"cancelled by its caller after {secs(d.get('waited_s'))}" if how == "cancelled"
            else f"in flight for {secs(d.get('waited_s'))}")
    limit = f", past its limit of {secs(d.get('limit_s'))}" if d.get("limit_s") else ""
    med = d.get("median_s")
    base = (f" ({times(d['waited_s'] / med)} its median {secs(med)})"
            if med and d.get("waited_s") else "")
    return f"{calls} of {inc.group} hung: {what}{limit}{base}"


_WORDS = {"level_shift": _level, "speedup": _level, "drift": _drift, HUNG: _hung}


def severity(max_ratio: float, count: int) -> str:
    if max_ratio >= 5 or count >= 5:
        return "high"
    if max_ratio >= 3.5 or count >= 3:
        return "medium"
    return "low"


__all__ = ["HUNG", "KINDS", "Incident", "secs", "severity", "times"]

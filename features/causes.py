"""The excess of a run named by its causes: "I expected 16 s, it took 24 s: where did the 8 s
go?" answered with who and what, not only with categories.

Causes, in the order a person asks about them: agents that calls waited for while they
started (which agent, which process, how long), agents that calls waited on in vain
(crashed, killed, never started), slow calls by name (from the detector's incidents when
given, else each call far beyond its group's median), level shifts, drift and hangs (the
detector's other incident kinds), run start-up before the first call, shutdown after the
last, idle time, and only then ordinary messaging. Each cause carries its seconds and the
row of its evidence. Causes may overlap in time (a slow call while another agent starts), so
their seconds are not shares that add up to the excess; :func:`excess_sentence` says so
when they pass it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from features.analyses import TimeBreakdown
from features.fmt import fmt_s

if TYPE_CHECKING:
    from features.detect import DetectionResult
    from features.run import Run

SLOW_RATIO = 3.0
"""Without the detector: a call at least this many times its group's median is named."""
MIN_GROUP = 5
"""Calls a group needs before its median says what is normal."""


@dataclass
class Cause:
    """One named cause of time spent."""

    kind: str
    """``agent start-up``, ``stalled``, ``slow call``, ``level shift``, ``drift``, ``hung``,
    ``run start-up``, ``shutdown``, ``idle``, ``messaging``..."""
    seconds: float
    text: str
    """For people: what, who, how long (numbers the data holds)."""
    row: int = -1
    """Evidence: an event row (-1 when none)."""
    facts: dict[str, float] = field(default_factory=dict)
    """The numbers ``text`` writes (ratio, median...), as numbers."""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seconds": self.seconds, "text": self.text,
                "row": self.row, "facts": dict(self.facts)}


def _fmt(x: float) -> str:
    return fmt_s(x)


def causes(tb: TimeBreakdown, run: Run | None = None,
           detection: DetectionResult | None = None, top: int = 3) -> list[Cause]:
    """The causes of the run's time beyond the work itself, largest first within each
    kind, kinds in the order above (``top`` per kind). Slow calls need the ``run``."""
    out: list[Cause] = []
    for s in tb.startups[:top]:
        proc = f" ({str(s['process'])[:8]})" if s.get("process") else ""
        calls = "1 call" if s["calls"] == 1 else f"{s['calls']} calls"
        started = (f"ran {_fmt(s['startup_s'])} after its launch" if
                   math.isfinite(s["startup_s"]) else "had not started")
        first = s.get("t_process_first", math.nan) - s["t_launched"]
        if math.isfinite(first) and first > 0.05 * max(s["startup_s"], 1e-9) and \
                s.get("process_kind", "").startswith(("a Parsl", "a worker")):
            # How much of it was the process itself starting: the seed's HTEX question.
            started += f" (its process wrote its first record {_fmt(first)} after the launch)"
        out.append(Cause("agent start-up", s["waited_s"],
                         f"agent start-up {_fmt(s['waited_s'])}: {s['class']} "
                         f"{s['agent_id']} {started}, in {s['process_kind']}{proc}, and "
                         f"{calls} waited for it", s["row"],
                         {"waited_s": s["waited_s"], "startup_s": s["startup_s"],
                          "calls": float(s["calls"])}))
    for s in tb.stalls[:top]:
        why = f" ({s['reason']})" if s.get("reason") else ""
        calls = "1 call" if s["calls"] == 1 else f"{s['calls']} calls"
        out.append(Cause("stalled", s["stalled_s"],
                         f"stalled {_fmt(s['stalled_s'])}: {calls} waited on {s['class']} "
                         f"{s['agent_id']}, {s['status']}{why}, and never ran", s["row"],
                         {"stalled_s": s["stalled_s"], "calls": float(s["calls"])}))
    if run is not None:
        out += _slow_calls(run, detection, top)
    sec = tb.seconds
    if sec["startup"] > 0:
        out.append(Cause("run start-up", sec["startup"],
                         f"run start-up before the first call {_fmt(sec['startup'])}"))
    if sec["shutdown"] > 0:
        out.append(Cause("shutdown", sec["shutdown"],
                         f"shutdown after the last call {_fmt(sec['shutdown'])}"))
    if sec["idle"] > 0:
        out.append(Cause("idle", sec["idle"], f"idle {_fmt(sec['idle'])} (no call in "
                                               "flight, no caller between calls)"))
    msg = sec["queue"] + sec["reply"]
    if msg > 0 and tb.actions:
        out.append(Cause("messaging", msg,
                         f"messaging {_fmt(msg)} ({tb.actions} calls, "
                         f"{_fmt(msg / tb.actions)} each on average)",
                         facts={"messaging_s": msg, "calls": float(tb.actions),
                                "per_call_s": msg / tb.actions}))
    return out


def _slow_calls(run: Run, detection: DetectionResult | None, top: int) -> list[Cause]:
    """Named slow calls and the detector's other incident kinds."""
    out: list[Cause] = []
    if detection is not None:
        for inc in detection.incidents:
            kind = {"slowdown": "slow call"}.get(inc.kind, inc.kind.replace("_", " "))
            if inc.kind == "slowdown":
                calls = sorted(inc.things, key=lambda t: -_extra(t))[:top]
                for t in calls:
                    out.append(_call_cause(run, t, kind))
                continue
            excess = float(inc.excess_s) if math.isfinite(inc.excess_s) else 0.0
            row = int(inc.evidence_rows[0]) if inc.evidence_rows else -1
            out.append(Cause(kind, max(excess, 0.0),
                             f"{kind}: {inc.describe().split(': ', 1)[-1]}", row))
        return out
    acts = run.actions()
    if not len(acts):
        return out
    dur = np.where(np.isfinite(acts["exec_s"]), acts["exec_s"], acts["total_s"])
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(zip(acts["agent_class"].tolist(), acts["action"].tolist(),
                                strict=True)):
        groups.setdefault(key, []).append(i)
    found: list[dict[str, Any]] = []
    for (_cls, action), idx in groups.items():
        d = dur[idx]
        ok = np.isfinite(d)
        if ok.sum() < MIN_GROUP:
            continue
        med = float(np.median(d[ok]))
        for i in idx:
            if math.isfinite(dur[i]) and med > 0 and dur[i] >= SLOW_RATIO * med:
                found.append({"tag": acts["tag"][i], "agent_id": acts["agent_id"][i],
                              "duration": float(dur[i]), "baseline_s": med,
                              "ratio": float(dur[i]) / med, "action": action,
                              "row": int(acts["row_start"][i])})
    found.sort(key=lambda t: -_extra(t))
    for t in found[:top]:
        out.append(_call_cause(run, t, "slow call"))
    return out


def _extra(t: dict[str, Any]) -> float:
    """Seconds a call took beyond its group's normal (the detector's ``excess_s``)."""
    x = t.get("excess_s")
    if isinstance(x, int | float) and math.isfinite(x):
        return float(x)
    d, b = t.get("duration"), _baseline(t)
    if isinstance(d, int | float) and math.isfinite(d) and math.isfinite(b):
        return float(d) - b
    return 0.0


def _baseline(t: dict[str, Any]) -> float:
    b = t.get("baseline_s", t.get("baseline"))
    return float(b) if isinstance(b, int | float) else math.nan


def _call_cause(run: Run, t: dict[str, Any], kind: str) -> Cause:
    action = t.get("action")
    row = t.get("row", -1)
    if action is None or row == -1:
        acts = run.actions()
        hit = np.flatnonzero(acts["tag"] == t.get("tag"))
        if len(hit):
            action = acts["action"][hit[0]]
            row = int(acts["row_start"][hit[0]])
    extra = _extra(t)
    ratio, base = t.get("ratio"), _baseline(t)
    dur = t.get("duration")
    if not isinstance(dur, int | float) and isinstance(ratio, int | float):
        dur = float(ratio) * base
    times = f", {float(ratio):.1f}x its median {_fmt(base)}" if \
        isinstance(ratio, int | float) and math.isfinite(ratio) and math.isfinite(base) else ""
    took = f" took {_fmt(float(dur))}" if isinstance(dur, int | float) else ""
    facts = {k: float(v) for k, v in (("extra_s", extra), ("ratio", ratio),
                                       ("median_s", base), ("took_s", dur))
             if isinstance(v, int | float) and math.isfinite(v)}
    return Cause(kind, extra, f"{kind} +{_fmt(extra)}: {action} {str(t.get('tag'))[:8]} on "
                 f"{t.get('agent_id')}{took}{times}", int(row) if row is not None else -1,
                 facts)


def per_call(run: Run, expected: dict[str, float]) -> list[Cause]:
    """For each action with an expected duration per call (``{"next_item": 0.5}``): how
    its calls compare (caller's view, start to end), as a cause with the seconds beyond
    what was expected (summed over the calls that took longer)."""
    acts = run.actions()
    out = []
    for action, want in expected.items():
        m = (acts["action"] == action) & np.isfinite(acts["total_s"])
        if not m.any():
            out.append(Cause("expected per call", 0.0,
                             f"no finished {action} call to compare with {_fmt(want)}"))
            continue
        d = acts["total_s"][m]
        over = float(np.clip(d - want, 0, None).sum())
        med = float(np.median(d))
        n = int(m.sum())
        worst = int(np.flatnonzero(m)[np.argmax(d)])
        out.append(Cause(
            "expected per call", over,
            f"{action}: {n} call{'s' if n != 1 else ''} took {_fmt(med)} each (median, "
            f"{_fmt(float(d.max()))} at most) against {_fmt(want)} expected, "
            f"+{_fmt(over)} in all beyond it", int(acts["row_start"][worst]),
            {"calls": float(n), "median_s": med, "max_s": float(d.max()),
             "expected_s": want, "beyond_s": over}))
    return out


def excess_sentence(tb: TimeBreakdown, found: list[Cause],
                    cite: Callable[[int], str] | None = None) -> str | None:
    """"Of the excess of X, by cause: ...", or None without an expected time or excess;
    ``cite`` turns an evidence row into ``[file:line]``."""
    excess = tb.excess_s
    if excess is None or excess <= 0:
        return None
    named = [c for c in found if c.seconds > 0 and c.kind != "messaging"]
    msg = next((c for c in found if c.kind == "messaging"), None)
    if not named:
        return (f"Nothing stands out in the excess of {_fmt(excess)}: no agent was waited "
                "for and no call was far beyond its group's median; it is spread over "
                "execution, caller time" + (f" and {msg.text}" if msg else "") + ".")
    # Largest first; what is too small to matter is summed, not listed one by one.
    floor = max(0.01, 0.02 * excess)
    big = sorted((c for c in named if c.seconds >= floor), key=lambda c: -c.seconds)[:6]
    small = [c for c in named if c not in big]
    listed = "; ".join(c.text + (f" [{cite(c.row)}]" if cite and c.row >= 0 else "")
                       for c in big)
    if small:
        listed += (f"{'; ' if big else ''}smaller ones {_fmt(sum(c.seconds for c in small))} "
                   "in all (" + ", ".join(sorted({c.kind for c in small})) + ")")
    total = sum(c.seconds for c in named)
    out = f"Of the excess of {_fmt(excess)}, by cause: {listed}."
    if total > excess * 1.05:
        out += (" Together these come to more than the excess (they overlap in time, or "
                "the rest of the work was faster than expected).")
    elif total < excess * 0.95:
        out += (f" The other {_fmt(excess - total)} is execution, caller time and "
                "messaging beyond what was expected" + (f" ({msg.text})" if msg else "")
                + ".")
    return out


__all__ = ["Cause", "causes", "excess_sentence", "per_call"]

"""Run facts for questions people ask most: how many of what, what happened, what steering
did. Each count comes with what it counts, so an answer never has a bare number.

Tools (``run_facts``, ``steering``) for every backend; the built-in analyst phrases them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from steering.ask.lookups import action_item, clip, detection, ev_at, num, rel
from steering.ask.refs import agent_ref

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["run_facts", "steering_facts"]


def run_facts(run: Run) -> dict[str, Any]:
    """Status, wall time, and counts with their nouns: records, files, processes, agents
    (by status), calls (by outcome), error and warning records, incidents by kind,
    steering; plus the crashed agents with when and why."""
    from features.status import status_of

    ev = run.events()
    st, rule = status_of(run, run.last_write())
    ag = run.agents()
    acts = run.actions()
    procs = run.processes()
    lv = ev.ints["levelno"]
    inc = detection(run).incidents if ev.n else []
    crashed = []
    for r in ag.records():
        if r["status"] == "crashed":
            crashed.append({"agent": agent_ref(r["agent_id"]), "class": r["class"],
                            "at_s": rel(run, r["t_crash"]),
                            "why": clip(r.get("crash_reason"), 120),
                            "ev": ev_at(run, r["row_crash"])})
    # First crash first: later ones are often its consequence (a caller losing its callee).
    crashed.sort(key=lambda c: (c["at_s"] is None, c["at_s"] or 0.0))
    trail = _trail(run)
    err = np.flatnonzero(lv >= 40) if ev.n else np.zeros(0, dtype=np.int64)
    launch: list[int] = [int(r) for r in ag["row_launched"] if r >= 0] if len(ag) else []
    return {
        "status": st, "status_rule": clip(rule, 200),
        "wall_s": num(ev.t1 - ev.t0) if ev.n else None,
        "records": ev.n, "files": len(ev.file_names),
        "processes": {"count": len(procs),
                      "ended_abruptly": int(np.sum(procs["end"] == "abrupt"))
                      if len(procs) else 0},
        "agents": {"launched": int(np.isfinite(ag["t_launched"]).sum()) if len(ag) else 0,
                   "count": len(ag),
                   "by_status": dict(Counter(str(s) for s in ag["status"].tolist()))},
        "calls": {"count": len(acts),
                  "by_outcome": dict(Counter(str(s) for s in acts["status"].tolist())),
                  "by_action": dict(Counter(str(a) for a in acts["action"].tolist()))},
        "error_records": int((lv >= 40).sum()) if ev.n else 0,
        "warning_records": int(((lv >= 30) & (lv < 40)).sum()) if ev.n else 0,
        "incidents": dict(Counter(i.kind for i in inc)),
        "crashed_agents": crashed[:10],
        "steering": trail["counts"] if trail["counts"] else None,
        # Evidence for the counts: the first launch, call and error record.
        "ev": {"first_launch": ev_at(run, int(min(launch, default=-1))),
               "first_call": ev_at(run, int(acts["row_start"][0])) if len(acts) else None,
               "first_error": ev_at(run, int(err[np.argmin(ev.created[err])]))
               if len(err) else None,
               "first_record": ev_at(run, int(ev.order[0])) if ev.n else None},
    }


def _trail(run: Run) -> dict[str, Any]:
    from features.trail import read_trail

    t = read_trail(run)
    counts = {k: v for k, v in t.counts().items() if v} if (t.records or t.unverified) \
        else {}
    return {"trail": t, "counts": counts}


def steering_facts(run: Run, limit: int = 10) -> dict[str, Any]:
    """What the steering agents did, from their verified records only: each suggestion
    (when, on whom, which call, what became of it), each agent's state, what was not
    counted."""
    got = _trail(run)
    t = got["trail"]
    ev = run.events()
    sugg = []
    for s in list(t.suggestions.values())[:limit]:
        first = s.records[0][0] if s.records else -1
        applied = [r for r in s.records if r[2] == "apply"]
        sugg.append({
            "id": s.key, "at_s": num(s.time), "target": agent_ref(s.target) if s.target
            else None, "action": s.action or None, "args": clip(s.args, 120),
            "state": clip(s.state, 160), "summary": clip(s.summary, 240),
            "applied_at_s": num(applied[-1][1]) if applied else None,
            "ev": ev_at(run, first)})
    return {
        "suggestions": sugg, "suggestion_count": len(t.suggestions),
        "agents": [{"agent": st.short, "state": st.state, "mode": st.mode or None,
                    "why": clip(st.why, 120)} for st in t.sessions.values()],
        "counts": got["counts"],
        "not_counted": len(t.unverified),
        "not_counted_why": sorted({w for _, w in t.unverified})[:3],
        "first_ev": ev_at(run, int(t.verified[0])) if len(t.verified) else None,
        "records": len(t.verified), "of_events": ev.n,
    }


def first_last(run: Run) -> dict[str, Any]:
    """The first and last call, for a narrative."""
    acts = run.actions()
    if not len(acts):
        return {}
    ends = np.nan_to_num(acts["t_end"], nan=-np.inf)
    return {"first": action_item(run, acts.row(0)),
            "last": action_item(run, acts.row(int(np.argmax(ends))))}

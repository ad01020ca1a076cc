"""What the ask tools compute about the run as a whole: where the time went, anomalies,
how many at once, another run against this one, one agent at one time.

Like :mod:`steering.ask.lookups`: plain JSON-ready dicts with evidence ids, times in
seconds since the run's first record, :class:`~steering.ask.lookups.ToolArgError` for
arguments that name nothing here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from steering.ask.lookups import (
    action_item,
    clip,
    detection,
    ev_at,
    event_item,
    find_agent,
    num,
    rel,
)
from steering.ask.refs import act_ref, agent_ref, ev_ref

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["anomalies", "concurrency", "diff_run", "events_at", "where_time_went"]


# -- analyses ----------------------------------------------------------------------------

def where_time_went(run: Run, expected_s: float | None = None) -> dict[str, Any]:
    """Wall time split into categories that add up to it, the answer sentence, callers
    and the evidence of the first and last action."""
    from features.analyses import CATEGORIES, CATEGORY_HELP, CATEGORY_WORDS
    from features.causes import causes
    from features.report import answer

    tb = run.where_time_went(expected_s)
    found = causes(tb, run, detection(run))
    wall = tb.wall_s
    acts = run.actions()
    out: dict[str, Any] = {
        "wall_s": num(wall), "expected_s": num(expected_s), "excess_s": num(tb.excess_s),
        "actions": tb.actions,
        "seconds": {c: num(tb.seconds[c]) for c in CATEGORIES},
        "share_pct": {c: num(tb.seconds[c] / wall * 100, 1) if wall else None
                      for c in CATEGORIES},
        "meaning": {c: CATEGORY_HELP[c] for c in CATEGORIES},
        "words": {c: CATEGORY_WORDS[c] for c in CATEGORIES},
        "causes": [{"kind": c.kind, "seconds": num(c.seconds), "text": c.text,
                    **{k: num(v) for k, v in c.facts.items()}} for c in found[:8]],
        "agents_waited_for": [{"agent": agent_ref(d["agent_id"]), "class": d["class"],
                               "process_kind": d["process_kind"],
                               "startup_s": num(d["startup_s"]),
                               "waited_s": num(d["waited_s"])} for d in tb.startups[:5]],
        "first_action_s": rel(run, tb.first_action_t),
        "last_action_end_s": rel(run, tb.last_action_t),
        "callers": [{"caller": agent_ref(c["caller"]), "calls": c["calls"],
                     "in_calls_s": num(c["in_calls_s"]),
                     "between_calls_s": num(c["between_calls_s"])} for c in tb.callers[:5]],
        "answer": answer(tb, found),
    }
    if len(acts):
        out["first_action"] = action_item(run, acts.row(0))
        ends = np.nan_to_num(acts["t_end"], nan=-np.inf)
        out["last_action"] = action_item(run, acts.row(int(np.argmax(ends))))
    parsl = parsl_startup(run)
    if parsl:  # only when Parsl's monitoring is joined on: small models' caps are tight
        out["parsl_startup"] = parsl
    return out


def parsl_startup(run: Run) -> list[dict[str, Any]]:
    """Agents' start-up broken into its Parsl parts, when Parsl's monitoring database or
    its text logs are joined on (:mod:`features.parsl_startup`): seconds per step (those
    the sources mark), with evidence."""
    if "parsl.status" not in run.events().store.key_shapes:
        return []
    from features.parsl_startup import parsl_startup as breakdown
    from features.parsl_startup import step_columns

    t = breakdown(run)
    return [{"agent": agent_ref(str(t["agent_id"][i])), "class": str(t["class"][i]),
             "task": t["task"][i], "block": t["block"][i], "total_s": num(t["total_s"][i]),
             "steps": {s: num(t[s][i]) for s in step_columns(t)},
             "ev": [ev_ref(f, int(n)) for f, n in (e.rsplit(":", 1) for e in t["evidence"][i])
                    if n.isdigit()]}  # "?": a line not known, not citable
            for i in range(len(t))]


def anomalies(run: Run, limit: int = 5) -> dict[str, Any]:
    """Slowdown and hung-call incidents with what differs about their calls, unfinished
    actions, crashed agents and processes that ended abruptly."""
    from features.explain import DURATIONS, explain

    res = detection(run)
    incidents = []
    for inc in res.incidents[:limit]:
        d: dict[str, Any] = {
            "id": inc.id, "kind": inc.kind, "group": inc.group, "severity": inc.severity,
            "calls": inc.count, "max_ratio": num(inc.max_ratio, 2),
            "excess_s": num(inc.excess_s), "start_s": rel(run, inc.start),
            "end_s": rel(run, inc.end), "description": inc.describe(),
            "acts": [act_ref(t) for t in inc.tags[:8]],
            "agents": [agent_ref(a) for a in inc.agents[:5]],
            "ev": [ev_at(run, r) for r in inc.evidence_rows[:6]]}
        if inc.kind == "slowdown":
            e = explain(run, inc.tags, top=3, symptoms=DURATIONS, label="slow")
            d["explanation"] = [clip(line, 240) for line in e.lines()[1:5]]
        incidents.append(d)
    acts = run.actions()
    open_mask = np.isin(acts["status"], ("in flight", "orphaned")) if len(acts) \
        else np.zeros(0, dtype=bool)
    ag = run.agents()
    procs = run.processes()
    return {
        "incidents": incidents, "incident_count": len(res.incidents),
        "unfinished_actions": [action_item(run, r)
                               for r in acts.where(open_mask).head(limit).records()],
        "unfinished_count": int(open_mask.sum()),
        "crashed_agents": [agent_ref(a) for a, c in zip(ag["agent_id"], ag["crashed"],
                                                       strict=True) if c][:limit],
        "not_shut_down": [agent_ref(a) for a, s in zip(ag["agent_id"], ag["status"],
                                                      strict=True)
                          if s in ("launched", "running")][:limit],
        "abrupt_processes": [str(f)[:8] for f, e in zip(procs["file"], procs["end"],
                                                        strict=True) if e == "abrupt"],
        "live": bool(res.live),
        "notes": [clip(n, 200) for n in res.notes[:5]],
    }


def concurrency(run: Run, what: str = "executing") -> dict[str, Any]:
    """How many at once: the maximum, when, the time-weighted mean, and the actions
    executing (or in flight) at the maximum."""
    from features.analyses import concurrency_stats

    times, counts = run.concurrency(what)
    cs = concurrency_stats(times, counts)
    out: dict[str, Any] = {"what": what, "max": int(cs["max"]), "mean": num(cs["mean"], 2),
                           "at_s": rel(run, cs["t_max"])}
    if what != "agents" and len(times):
        acts = run.actions()
        t = cs["t_max"]
        s, e = (("t_exec_start", "t_exec_end") if what == "executing"
                else ("t_start", "t_end"))
        end = np.nan_to_num(acts[e], nan=np.inf)
        at = np.flatnonzero((acts[s] <= t) & (end > t))
        out["at_max"] = [action_item(run, acts.row(int(i))) for i in at[:8]]
    return out


def diff_run(run: Run, other: Run) -> dict[str, Any]:
    """This run (B) against ``other`` (A, the reference): wall, categories, per action."""
    from features.diff import diff

    d = diff(other, run)
    cats = d.category_changes
    rows = [r for r in d.rows if r["phase"] == "total"]
    return {
        "a": {"role": "reference (the other run)", "uuid": d.a["uuid"],
              "wall_s": num(d.a["wall_s"]), "actions": d.a["actions"]},
        "b": {"role": "this run", "uuid": d.b["uuid"], "wall_s": num(d.b["wall_s"]),
              "actions": d.b["actions"]},
        "wall_change_s": num(d.wall_change_s), "identical": d.identical,
        "category_change_s": {c: num(v) for c, v in cats.items()},
        "answer": d.answer,
        "actions": [{"agent_class": r["agent_class"], "action": r["action"],
                     "presence": r["presence"], "count_a": r["count_a"],
                     "count_b": r["count_b"], "p50_a": num(r["p50_a"]),
                     "p50_b": num(r["p50_b"]), "p95_a": num(r["p95_a"]),
                     "p95_b": num(r["p95_b"]), "sum_change_s": num(r["sum_change_s"])}
                    for r in rows[:10]],
        "new": d.new[:10], "missing": d.missing[:10],
    }


# -- one agent at one time ---------------------------------------------------------------

def _state_at(r: dict[str, Any], t: float) -> str:
    def before(x: Any) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and x <= t

    if before(r["t_shutdown"]):
        return "shut down"
    if before(r["t_crash"]):
        return "crashed"
    if before(r["t_shutting_down"]):
        return "shutting down"
    if before(r["t_running"]):
        return "running"
    if before(r["t_launched"]) or before(r["t_starting"]):
        return "starting"
    return "not launched yet"


def _with_exec(run: Run, r: dict[str, Any]) -> dict[str, Any]:
    """An action item with when its execution started and ended."""
    return {**action_item(run, r), "exec_start_s": rel(run, r["t_exec_start"]),
            "exec_end_s": rel(run, r["t_exec_end"])}


def events_at(run: Run, agent: str, time_s: float, window_s: float = 1.0,
              limit: int = 8) -> dict[str, Any]:
    """What ``agent`` was doing ``time_s`` seconds into the run: its lifecycle state, the
    action(s) it was executing, the calls just before and after, and its nearest events."""
    ev = run.events()
    aid, cls = find_agent(run, agent)
    t = ev.t0 + float(time_s)
    ag = run.agents()
    rec = ag.row(int(np.flatnonzero(ag["agent_id"] == aid)[0]))
    acts = run.actions()
    mine = acts.where(acts["agent_id"] == aid)
    xs, xe = mine["t_exec_start"], np.nan_to_num(mine["t_exec_end"], nan=np.inf)
    now = np.flatnonzero((xs <= t) & (xe >= t))
    done = np.flatnonzero(xe < t)
    later = np.flatnonzero(xs > t)
    out: dict[str, Any] = {
        "agent": agent_ref(aid), "class": cls, "time_s": num(time_s),
        "run_wall_s": num(ev.t1 - ev.t0), "state": _state_at(rec, t),
        "launched_s": rel(run, rec["t_launched"]), "running_s": rel(run, rec["t_running"]),
        "shutdown_s": rel(run, rec["t_shutdown"]),
        "executing": [_with_exec(run, mine.row(int(i))) for i in now[:4]],
        "previous": _with_exec(run, mine.row(int(done[np.argmax(xe[done])])))
        if len(done) else None,
        "next": _with_exec(run, mine.row(int(later[np.argmin(xs[later])])))
        if len(later) else None,
        "calls_before": len(done), "calls_after": len(later),
    }
    near = np.flatnonzero(np.abs(ev.created - t) <= window_s)
    rows = near[np.asarray(run.event_agents_at(near) == aid, dtype=bool)]
    rows = rows[np.argsort(np.abs(ev.created[rows] - t), kind="stable")][:limit]
    rows = rows[np.argsort(ev.created[rows], kind="stable")]
    out["events_near"] = [event_item(run, int(r)) for r in rows]
    return out

"""The built-in analyst's answers to the questions people ask most (issue 14): counts with
their nouns, what happened to the run, anything abnormal, what steering did, what changed,
how long an action takes. Every number comes from a tool result (so the verifier finds it)
and carries what it counts ("2 agents", never a bare 2).
"""

from __future__ import annotations

import re
from typing import Any

from steering.ask.phrasing import act, at, cite, dur, failed, n
from steering.ask.questions import Reading
from steering.ask.tools import Toolbox

__all__ = ["abnormal", "changes", "counts", "durations", "steering", "story"]

CHANGE_KINDS = ("level_shift", "drift", "speedup")


def _n(count: int, noun: str, plural: str | None = None, what: str = "") -> str:
    return n(count, noun, plural, what)


def _by(d: dict[str, int], order: tuple[str, ...] = (), noun: str = "call") -> str:
    """``3 shut down, 1 crashed``: each count a fact ("agents shut down")."""
    keys = [k for k in order if k in d] + sorted(k for k in d if k not in order)
    out = []
    for k in keys:
        n(d[k], noun, what=f"{noun}s {k}")
        out.append(f"{d[k]} {k}")
    return ", ".join(out)


OUTCOMES = ("ok", "exception", "cancelled", "in flight", "orphaned")
STATUSES = ("running", "shut down", "crashed", "never started", "launched")


def _calls_line(f: dict[str, Any]) -> str:
    c = f["calls"]
    words = {"ok": ("succeeded", "succeeded"), "exception": ("raised", "raised"),
             "cancelled": ("was cancelled", "were cancelled"),
             "in flight": ("is in flight", "are in flight"),
             "orphaned": ("never finished", "never finished")}
    parts = [f"{_n(c['by_outcome'][k], 'call', what=f'calls that {words[k][1]}')} "
             f"{words[k][c['by_outcome'][k] != 1]}" for k in OUTCOMES if k in c["by_outcome"]]
    head = f"{_n(c['count'], 'call', what='calls of actions')} of actions"
    return head + (f": {', '.join(parts)}" if parts else "")


def _agents_line(f: dict[str, Any]) -> str:
    a = f["agents"]
    return (f"{_n(a['launched'], 'agent', what='agents launched')} launched "
            f"({_n(a['count'], 'agent', what='agents seen')} seen in all: "
            f"{_by(a['by_status'], STATUSES, 'agent')})")


def counts(tb: Toolbox, r: Reading) -> str:
    """How many agents, calls, processes, errors or records, with what each counts."""
    res = tb.call("run_facts", {})
    if not res.ok:
        return failed(res)
    f = res.data
    q = r.said.lower()
    lines = []
    if re.search(r"agent", q):
        lines.append(_agents_line(f) + ".")
    if re.search(r"action|call|succe|fail|raise|cancel", q):
        lines.append(_calls_line(f) + ".")
        if f["calls"]["by_action"]:
            lines.append("By action: " + ", ".join(
                f"{_n(v, 'call', what=f'calls of {k}')} of {k}"
                for k, v in sorted(f["calls"]["by_action"].items())) + ".")
    if re.search(r"process|worker", q):
        p = f["processes"]
        lines.append(f"{_n(p['count'], 'process', 'processes', 'processes')} wrote to the pool "
                     f"({_n(p['ended_abruptly'], 'process', 'processes', 'abrupt ends')} "
                     "ended abruptly).")
    if re.search(r"error|exception|warning", q):
        lines.append(f"{_n(f['error_records'], 'error record')} and "
                     f"{_n(f['warning_records'], 'warning record')}.")
    if re.search(r"record|event|line|file", q) or not lines:
        lines.append(f"{_n(f['records'], 'record', what='records (log lines)')} in "
                     f"{_n(f['files'], 'file', what='log files')}.")
        if len(lines) == 1:
            lines += [_agents_line(f) + ".", _calls_line(f) + "."]
    e = f["ev"]
    return " ".join(lines) + " " + cite(e["first_launch"], e["first_call"], e["first_error"]
                                        or e["first_record"])


def story(tb: Toolbox, r: Reading) -> str:
    """What happened to the run, in a few sentences: status, agents, calls, start-up,
    crashes, hangs, slowdowns and changes, errors, steering."""
    res = tb.call("run_facts", {})
    if not res.ok:
        return failed(res)
    f = res.data
    out = [f"The run {f['status']} ({f['status_rule']}) after "
           f"{dur(f['wall_s'], 'wall time of the run')}: "
           f"{_agents_line(f)}, and {_calls_line(f)} "
           f"{cite(f['ev']['first_launch'], f['ev']['first_call'])}."]
    wt = tb.call("where_time_went", {})
    if wt.ok:
        waited = wt.data.get("agents_waited_for") or []
        if waited:
            w = waited[0]
            out.append(f"Calls waited {dur(w['waited_s'], 'waiting for an agent to start')} "
                       f"for {w['class']} "
                       f"{str(w['agent']).removeprefix('agent:')} to start, in "
                       f"{w['process_kind']} {cite(w['agent'])}.")
    for c in f["crashed_agents"][:3]:
        out.append(f"{c['class']} {str(c['agent']).removeprefix('agent:')} crashed at "
                   f"{at(c['at_s'], 'when an agent crashed')}: {c['why']} "
                   f"{cite(c['agent'], c['ev'])}.")
    if f["incidents"]:
        an = tb.call("anomalies", {"limit": 5})
        if an.ok:
            for inc in an.data["incidents"][:3]:
                out.append(f"{inc['description']} {cite(*inc['acts'][:2])}.")
    if f["error_records"]:
        out.append(f"{_n(f['error_records'], 'error record')} in the pool, the first "
                   f"{cite(f['ev']['first_error'])} (ask about errors for all of them).")
    if f["steering"]:
        st = tb.call("steering", {"limit": 5})
        if st.ok:
            out.append(_steering_line(st.data))
    if len(out) == 1:
        out.append("Nothing crashed, hung or slowed down, and no record is an error.")
    return " ".join(out)


def abnormal(tb: Toolbox, r: Reading) -> str:
    """Anything out of the ordinary: incidents of every kind, crashes, unfinished calls,
    errors; or what was checked and found normal."""
    res = tb.call("run_facts", {})
    an = tb.call("anomalies", {"limit": 5})
    if not (res.ok and an.ok):
        return failed(res if not res.ok else an)
    f, a = res.data, an.data
    lines = [f"{inc['description']} {cite(*inc['acts'][:2], *inc['ev'][:1])}."
             for inc in a["incidents"]]
    for c in f["crashed_agents"][:3]:
        lines.append(f"{c['class']} {str(c['agent']).removeprefix('agent:')} crashed at "
                     f"{at(c['at_s'], 'when an agent crashed')}: {c['why']} "
                     f"{cite(c['agent'], c['ev'])}.")
    if a["unfinished_count"]:
        unf = _n(a["unfinished_count"], "call", what="calls never finished")
        lines.append(f"{unf} never finished: " + "; ".join(
            f"{act(x)} {cite(x['act'])}" for x in a["unfinished_actions"][:3]) + ".")
    if f["error_records"]:
        lines.append(f"{_n(f['error_records'], 'error record')} in the pool, the first "
                     f"{cite(f['ev']['first_error'])}.")
    if lines:
        return "Yes: " + " ".join(lines)
    judged = f["calls"]["count"]
    return (f"Nothing abnormal: {_n(judged, 'call')} checked for slowdowns, hangs, level "
            "shifts and drift, no agent crashed, no call is unfinished and no record is "
            f"an error {cite(f['ev']['first_call'])}."
            + (" " + " ".join(a["notes"][:2]) if a["notes"] else ""))


def _steering_line(d: dict[str, Any]) -> str:
    if not d["suggestion_count"]:
        return "The steering agent made no suggestion."
    parts = []
    for s in d["suggestions"][:4]:
        call = (f"{s['action']}({s['args']}) on {str(s['target']).removeprefix('agent:')}"
                if s["action"] and s["action"] != "none" else "no remedy")
        when = f", applied at {at(s['applied_at_s'])}" if s["applied_at_s"] is not None \
            else ""
        parts.append(f"{s['id']} at {at(s['at_s'])}: {call}; {s['state']}{when} "
                     f"{cite(s['ev'])}")
    more = d["suggestion_count"] - len(parts)
    return (f"The steering agent made {_n(d['suggestion_count'], 'suggestion')}: "
            + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") + ".")


def steering(tb: Toolbox, r: Reading) -> str:
    """What the steering agents suggested and changed, and when (verified records only)."""
    res = tb.call("steering", {"limit": 10})
    if not res.ok:
        return failed(res)
    d = res.data
    if not d["records"] and not d["not_counted"]:
        return "No steering agent wrote to this run."
    out = [_steering_line(d)]
    for a in d["agents"]:
        out.append(f"Steering agent {a['agent']} is {a['state']}"
                   + (f" ({a['why']})" if a["why"] else "") + ".")
    if d["not_counted"]:
        out.append(f"{_n(d['not_counted'], 'record', what='records not counted')} with "
                   "steering keys are not a steering "
                   f"agent's own and were not counted ({'; '.join(d['not_counted_why'])}).")
    return " ".join(out)


def changes(tb: Toolbox, r: Reading) -> str:
    """What changed in how long calls take: level shifts, drift, speed-ups, with what
    happened around them."""
    an = tb.call("anomalies", {"limit": 10})
    if not an.ok:
        return failed(an)
    found = [i for i in an.data["incidents"] if i["kind"] in CHANGE_KINDS]
    if found:
        return " ".join(f"{i['description']} {cite(*i['acts'][:2], *i['ev'][:1])}."
                        for i in found[:4])
    slow = [i for i in an.data["incidents"] if i["kind"] == "slowdown"]
    tail = (" The slow calls there are: " + " ".join(f"{i['description']}."
                                                    for i in slow[:2])) if slow else ""
    return ("No lasting change in how long any action's calls take (no level shift, drift "
            "or speed-up)." + tail)


def durations(tb: Toolbox, r: Reading) -> str:
    """How long an action's calls take: typical (median), p95 and the longest."""
    res = tb.call("group_stats", {"by": "action", "value": "total_s", "limit": 30})
    if not res.ok:
        return failed(res)
    groups = res.data.get("groups") or []
    named = [g for g in groups if str(g.get("action")) in r.actions] or groups[:3]
    lines = []
    for g in named:
        slow = g.get("slowest") or {}
        a = g.get("action")
        lines.append(f"{a}: {_n(int(g['count']), 'call', what=f'calls of {a}')}, typically "
                     f"{dur(g.get('p50_s'), f'median of {a}')} (median), "
                     f"{dur(g.get('p95_s'), f'p95 of {a}')} at p95, "
                     f"{dur(g.get('max_s'), f'longest {a}')} at most"
                     + (f" {cite(slow.get('act'))}" if slow.get("act") else "") + ".")
    return " ".join(lines) if lines else "No finished calls to time."

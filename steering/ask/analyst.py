"""The built-in analyst: deterministic answers from the tools, no model needed.

It answers the kinds of question in :data:`steering.ask.questions.KINDS`, each with
numbers and citations taken from the same tool results an LLM would see (so the same
verifier checks both). Anything else gets an honest list of what it can answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from features.facts import current
from steering.ask import narrative, questions
from steering.ask.phrasing import act as _act
from steering.ask.phrasing import at as _t
from steering.ask.phrasing import cite as _cite
from steering.ask.phrasing import dur as _d
from steering.ask.phrasing import failed as _failed
from steering.ask.phrasing import n as _n
from steering.ask.phrasing import phases as _phases
from steering.ask.questions import Reading
from steering.ask.tools import Toolbox

__all__ = ["CAPABILITIES", "answer"]

CAPABILITIES = "I can answer: " + "; ".join(questions.KINDS.values()) + "."
EXAMPLES = "what was AgentId<...> doing at 1.5 s?"


# -- one function per kind -----------------------------------------------------------------

def _slowest_agents(tb: Toolbox) -> str:
    res = tb.call("list_things", {"kind": "agents", "sort": "startup_s", "limit": 3})
    if not res.ok or not res.data["items"]:
        return "No agent start-up was logged in this run."
    top, *rest = res.data["items"]
    lines = [f"The slowest agent to start was {top['agent'].removeprefix('agent:')} "
             f"({top['class']}): {_d(top['startup_s'])} from launch to running "
             f"{_cite(top['agent'], top['ev'])}."]
    lines += [f"Next: {r['agent'].removeprefix('agent:')} ({r['class']}) "
              f"{_d(r['startup_s'])} {_cite(r['agent'])}." for r in rest]
    return "\n".join(lines)


def slowest(tb: Toolbox, r: Reading) -> str:
    """The slowest calls (or agents' start-up), with the typical call for comparison."""
    q = r.said.lower()
    if "agent" in q and re.search(r"start|launch|boot|up\b", q):
        return _slowest_agents(tb)
    lines: list[str] = []
    if re.search(r"slowdown|anomal|unusual|outlier|spike|regress", q):
        lines += _incidents(tb)
    named = r.action
    args: dict[str, Any] = {"kind": "actions", "sort": "total_s", "limit": 5}
    if named:
        args["action"] = named
    res = tb.call("list_things", args)
    if not res.ok:
        return _failed(res)
    items = [i for i in res.data["items"] if i.get("total_s") is not None]
    if not items:
        return "No action of this run has finished, so none can be timed yet."
    top, *rest = items
    lines.append(f"The slowest action was {_act(top)}: "
                 f"{_d(top['total_s'], 'the slowest call, in all')} in all"
                 f"{_phases(top)}, started at {_t(top['start_s'])} "
                 f"{_cite(top['act'], top['ev'])}.")
    if rest:
        lines.append("Next slowest: " + "; ".join(
            f"{_act(r)} {_d(r['total_s'], 'a slow call, in all')} {_cite(r['act'])}"
            for r in rest) + ".")
    stats = tb.call("group_stats", {"by": "class_action", "value": "total_s", "limit": 5})
    if stats.ok and stats.data["groups"]:
        lines.append("Typical calls: " + "; ".join(
            f"{g['agent_class']}.{g['action']} p50 "
            f"{_d(g['p50_s'], 'median of ' + g['action'])}, p95 "
            f"{_d(g['p95_s'], 'p95 of ' + g['action'])} over "
            f"{_n(g['count'], 'call', what='calls of ' + g['action'])}"
            for g in stats.data["groups"]
            if not named or g["action"] == named) + ".")
    return "\n".join(lines)


def _incidents(tb: Toolbox) -> list[str]:
    """Slowdown incidents, one line each, with the calls they hold."""
    res = tb.call("anomalies", {})
    if not res.ok:
        return [_failed(res)]
    slow = [i for i in res.data["incidents"] if i["kind"] == "slowdown"]
    if not slow:
        return ["No slowdown was found: no call was slow against the other calls of its "
                "action."]
    out = [f"{_n(len(slow), 'slowdown')} found:"]
    for inc in slow:
        r = current().ratio(inc["max_ratio"], f"slowest call of {inc['group']} against its "
                                              "median")
        out.append(f"- {_n(inc['calls'], 'slow call', what='slow calls of ' + inc['group'])} "
                   f"of {inc['group']}, up to {r} its median, "
                   f"{_d(inc['excess_s'], 'time beyond the median')} extra, from "
                   f"{_t(inc['start_s'], 'start of the slowdown')} {_cite(*inc['acts'][:4])}.")
        out.extend(f"  {line}" for line in inc.get("explanation", [])[1:3] if line)
    return out


def time(tb: Toolbox, r: Reading) -> str:
    """Where the time went, against the expected time when there is one."""
    expected = r.expected_s
    args = {"expected_s": expected} if expected is not None else {}
    res = tb.call("where_time_went", args)
    if not res.ok:
        return _failed(res)
    d = res.data
    lines = [d["answer"]]
    for p in d.get("parsl_startup") or []:
        cls = p["class"]
        steps = ", ".join(f"{name} {_d(s, f'{name} of {cls}')}"
                          for name, s in p["steps"].items() if s is not None)
        lines.append(f"On Parsl, {p['class']} {str(p['agent']).removeprefix('agent:')} took "
                     f"{_d(p['total_s'], 'launch to running on Parsl')} from its launch to "
                     f"running: {steps} {_cite(p['agent'], *p['ev'][:4])}.")
    ranked = sorted(((c, s) for c, s in d["seconds"].items() if s), key=lambda cs: -cs[1])
    lines.append("Largest parts of the wall time: " + ", ".join(
        f"{c} {_d(s)} ({d['share_pct'][c]}%)" for c, s in ranked[:4]) + ".")
    if d.get("first_action"):
        first, last = d["first_action"], d["last_action"]
        lines.append(f"The first action, {_act(first)}, started at {_t(first['start_s'])} "
                     f"{_cite(first['act'], first['ev'])}; the last one to end was "
                     f"{_act(last)} {_cite(last['act'], last['ev'])}.")
        slow = tb.call("list_things", {"kind": "actions", "sort": "total_s", "limit": 3})
        if slow.ok and slow.data["items"]:
            lines.append("Slowest calls: " + "; ".join(
                f"{_act(r)} {_d(r['total_s'])} {_cite(r['act'])}"
                for r in slow.data["items"] if r.get("total_s") is not None) + ".")
    return "\n".join(lines)


def errors(tb: Toolbox, r: Reading) -> str:
    """Failed actions and ERROR/CRITICAL records (or tracebacks), with evidence."""
    failed = tb.call("list_things", {"kind": "actions", "status": "exception",
                                     "sort": "start_s", "descending": False, "limit": 5})
    recs = tb.call("query_events", {"where": "levelno>=40 or exc_text!=None", "limit": 5})
    warns = tb.call("query_events", {"where": "levelno>=30 and levelno<40", "limit": 3})
    if not (failed.ok and recs.ok and warns.ok):
        return _failed(next(r for r in (failed, recs, warns) if not r.ok))
    n_failed, n_recs = failed.data["matching"], recs.data["count"]
    n_warn = warns.data["count"]
    facts = tb.call("run_facts", {})
    crashes = [f"- {c['class']} {str(c['agent']).removeprefix('agent:')} crashed at "
               f"{_t(c['at_s'])}: {c['why']} {_cite(c['agent'], c['ev'])}."
               for c in (facts.data["crashed_agents"][:5] if facts.ok else [])]
    if not n_failed and not n_recs and crashes:
        return "No action raised and no record is an error, but:\n" + "\n".join(crashes)
    if not n_failed and not n_recs:
        last = tb.call("list_things", {"kind": "processes", "sort": "end_s", "limit": 1})
        cite = _cite(last.data["items"][0]["ev"]) if last.ok and last.data["items"] else ""
        return (f"No errors: no action raised and no record is an ERROR or has a traceback "
                f"{cite}. There are {_n(n_warn, 'warning', what='warning records')}."
                + (f" The first: {_event(warns.data['events'][0])}." if n_warn else ""))
    lines = [f"{_n(n_failed, 'call', what='calls that raised')} raised and "
             f"{_n(n_recs, 'record', what='error records (or with a traceback)')} are errors "
             f"or carry a traceback; {_n(n_warn, 'warning', what='warning records')}."]
    if crashes and re.search(r"crash|died|killed|dead", r.said, re.I):
        lines[1:1] = crashes  # asked about crashes: those first
        crashes = []
    for a in failed.data["items"]:
        # When it raised (its end), not when it was sent.
        when = a.get("end_s") if a.get("end_s") is not None else a["start_s"]
        lines.append(f"- {_act(a)}, called at {_t(a['start_s'])}, raised at {_t(when)} "
                     f"{_cite(a['act'], a['ev'])}.")
    for e in recs.data["events"]:
        lines.append(f"- {_event(e)}.")
    if n_recs > len(recs.data["events"]):
        more = n_recs - len(recs.data["events"])
        lines.append(f"({_n(more, 'more record', 'more records', 'error records not shown')} "
                     "not shown.)")
    return "\n".join(lines + crashes)


def _event(e: dict[str, Any]) -> str:
    from steering.ask.refs import quote

    who = f" on {e['agent']}" if e.get("agent") else ""
    raised = f", raised {quote(e['exception'], 120)}" if e.get("exception") else ""
    return (f"{e.get('level', '?')} at {_t(e.get('t_s'))} from {e.get('logger', '?')}{who}: "
            f"{quote(e.get('message', ''), 160)}{raised} {_cite(e.get('ev'))}")


def agent_at(tb: Toolbox, r: Reading) -> str:
    """What one agent was doing at one time."""
    when, who = r.time_s, r.agent
    if when is None or who is None:
        ag = tb.call("list_things", {"kind": "agents", "sort": "launched_s",
                                     "descending": False, "limit": 10})
        names = ", ".join(f"{_cite(i['agent'])} ({i['class']})"
                          for i in ag.data.get("items", [])) if ag.ok else ""
        need = "a time (\"at 1.5 s\")" if when is None else "an agent"
        return (f"Tell me {need}: for example \"{EXAMPLES}\". "
                f"Agents in this run: {names or 'none'}.")
    res = tb.call("events_at", {"agent": who, "time_s": when})
    if not res.ok:
        return _failed(res)
    d = res.data
    name = f"{d['agent'].removeprefix('agent:')} ({d['class']})"
    head = f"At {_t(d['time_s'])}, {name}"
    if d["time_s"] > (d["run_wall_s"] or 0):
        return (f"{head}: that is after the run's last record ({_t(d['run_wall_s'])}); "
                f"the agent's state then was: {d['state']} {_cite(d['agent'])}.")
    if d["executing"]:
        x = d["executing"][0]
        line = (f"{head} was executing {_act(x)} (execution from {_t(x['exec_start_s'])} to "
                f"{_t(x['exec_end_s'])}) {_cite(x['act'], x['ev'])}.")
    elif d["state"] == "running":
        prev, nxt = d["previous"], d["next"]
        line = f"{head} was running but not executing an action"
        if prev:
            line += (f": its previous call, {_act(prev)}, ended at {_t(prev['exec_end_s'])} "
                     f"{_cite(prev['act'])}")
        if nxt:
            line += (f"{';' if prev else ':'} the next, {_act(nxt)}, started at "
                     f"{_t(nxt['exec_start_s'])} {_cite(nxt['act'])}")
        line += f" {_cite(d['agent'])}."
    else:
        when_s = {"not launched yet": d["launched_s"], "starting": d["launched_s"],
                  "shut down": d["shutdown_s"]}.get(d["state"])
        since = f" (since {_t(when_s)})" if when_s is not None else ""
        line = f"{head} was {d['state']}{since} {_cite(d['agent'])}."
    lines = [line, f"It executed {_n(d['calls_before'], 'call', what='calls before then')} "
                   f"before and {_n(d['calls_after'], 'call', what='calls after then')} after "
                   "that time."]
    if d["events_near"]:
        lines.append("Its events nearest to that time: " + "; ".join(
            _event(e) for e in d["events_near"][:3]) + ".")
    return "\n".join(lines)


def concurrency(tb: Toolbox, r: Reading) -> str:
    """How many actions executed at once, calls were in flight, agents were alive."""
    ex = tb.call("concurrency", {"what": "executing"})
    fl = tb.call("concurrency", {"what": "in flight"})
    ag = tb.call("concurrency", {"what": "agents"})
    if not (ex.ok and fl.ok and ag.ok):
        return _failed(next(r for r in (ex, fl, ag) if not r.ok))
    e = ex.data
    cites = _cite(*(a["act"] for a in e.get("at_max", [])[:4]))
    current().add(e["mean"], "count", "calls executing on average", f"{e['mean']}")
    def were(k: int) -> str:
        return "was" if k == 1 else "were"

    return (f"At most {_n(e['max'], 'call', what='calls executing at once')} {were(e['max'])} "
            f"executing at once, first at {_t(e['at_s'])} {cites}; on average {e['mean']} "
            f"were executing.\nAt most "
            f"{_n(fl.data['max'], 'call', what='calls in flight at once')} {were(fl.data['max'])}"
            f" in flight at once (sent, not yet answered) and at most "
            f"{_n(ag.data['max'], 'agent', what='agents alive at once')} {were(ag.data['max'])} "
            "alive at once.")


def compare(tb: Toolbox, r: Reading) -> str:
    """This run against another one (``--compare`` or a uuid named in the question)."""
    names = r.run_refs
    other = names[0] if names else (tb.others[0].uuid if tb.others else None)
    if other is None:
        return ("Which run should I compare with? Name its uuid (or a prefix) in the "
                "question, or pass --compare RUN.")
    res = tb.call("diff_run", {"other": other})
    if not res.ok:
        return _failed(res)
    d = res.data
    a, b = d["a"]["uuid"][:8], d["b"]["uuid"][:8]
    lines = [f"A is the other run {a}, B is this run {b}. {d['answer']}"]
    changed = sorted((r for r in d["actions"] if r["sum_change_s"]),
                     key=lambda r: -abs(r["sum_change_s"]))
    if changed:
        top = changed[0]
        slow = tb.call("list_things", {"kind": "actions", "action": top["action"],
                                       "sort": "total_s", "limit": 1})
        cite = _cite(slow.data["items"][0]["act"]) if slow.ok and slow.data["items"] else ""
        lines.append(f"{top['agent_class']}.{top['action']}: "
                     f"{_n(top['count_b'], 'call', what='calls in B')} in B against "
                     f"{_n(top['count_a'], 'call', what='calls in A')} in A, "
                     f"p50 {_d(top['p50_b'])} against "
                     f"{_d(top['p50_a'])}, p95 {_d(top['p95_b'])} against {_d(top['p95_a'])}"
                     f"; its slowest call in this run: {cite}.")
    return "\n".join(lines)


def hung(tb: Toolbox, r: Reading) -> str:
    """Hung or unfinished calls, crashed or never stopped agents, abrupt processes."""
    res = tb.call("anomalies", {})
    if not res.ok:
        return _failed(res)
    d = res.data
    stuck = [i for i in d["incidents"] if i["kind"] == "hung"]
    lines = []
    for inc in stuck:
        lines.append(f"Hung: {inc['description']} {_cite(*inc['acts'][:3])}.")
    if d["unfinished_count"]:
        lines.append(f"{_n(d['unfinished_count'], 'call', what='calls never completed')} "
                     "never completed: " + "; ".join(
            f"{_act(a)} ({a['status']}, since {_t(a['start_s'])}) {_cite(a['act'])}"
            for a in d["unfinished_actions"]) + ".")
    if d["crashed_agents"]:
        lines.append("Crashed agents: " + " ".join(_cite(a) for a in d["crashed_agents"])
                     + ".")
    if d["not_shut_down"]:
        lines.append("Agents that never shut down: "
                     + " ".join(_cite(a) for a in d["not_shut_down"]) + ".")
    if d["abrupt_processes"]:
        lines.append("Processes whose log just stops (no clean close): "
                     + ", ".join(d["abrupt_processes"]) + ".")
    if lines:
        head = ("The run is still being written: calls in flight may yet finish. "
                if d["live"] else "")
        return head + "\n".join(lines)
    acts = tb.call("list_things", {"kind": "actions", "sort": "start_s", "limit": 1})
    last = acts.data["items"][0] if acts.ok and acts.data["items"] else None
    n = acts.data["matching"] if acts.ok else 0
    tail = (f" The last call to start was {_act(last)} at {_t(last['start_s'])} "
            f"{_cite(last['act'], last['ev'])}.") if last else ""
    return (f"Nothing looks hung: all {n} action(s) completed, every agent shut down and no "
            f"process stopped abruptly.{tail}")


def unknown(tb: Toolbox, r: Reading) -> str:
    """An honest list of what the analyst can answer, and one line about the run."""
    res = tb.call("where_time_went", {})
    line = f"\nAbout this run: {res.data['answer']}" if res.ok else ""
    first = res.data.get("first_action") if res.ok else None
    if first:
        line += f" {_cite(first['ev'])}"
    return f"I cannot tell what kind of question that is. {CAPABILITIES}{line}"


ANSWERS: dict[str, Callable[[Toolbox, Reading], str]] = {
    "slowest": slowest, "time": time, "errors": errors, "agent_at": agent_at,
    "concurrency": concurrency, "compare": compare, "hung": hung,
    "story": narrative.story, "counts": narrative.counts, "abnormal": narrative.abnormal,
    "steering": narrative.steering, "changes": narrative.changes,
    "durations": narrative.durations,
}


def answer(tb: Toolbox, r: Reading) -> tuple[str, str]:
    """``(text, kind)``: the built-in answer to the question ``r`` read (``unknown`` when
    it is of no kind the analyst answers)."""
    kind = r.kind if r.kind in ANSWERS else "unknown"
    return ANSWERS.get(kind, unknown)(tb, r), kind

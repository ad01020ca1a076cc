"""Who waited, and on whom, in :func:`features.analyses.where_time_went`: per call the
time it waited for its agent to start or on an agent that was gone, and then per party
the totals a reader asks about (per caller its calls and the gaps between them, per agent
the calls that waited for it to start or stalled on it).

Kept apart from the attribution of wall time to categories (which only needs the
intervals) because this is the part that joins calls to their agents and processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.table import Table

Spans = tuple[np.ndarray, np.ndarray]
"""Per call, the start and the end of one interval (NaN where the call has none)."""


def process_kind(process_name: Any, same_as_launcher: bool) -> str:
    """What kind of process an agent ran in, from its ``processName``."""
    name = str(process_name or "")
    if name.startswith("HTEX-Worker") or "parsl" in name.lower():
        return "a Parsl HTEX worker process"
    if name.startswith(("SpawnProcess", "ForkProcess", "ForkServerProcess", "Process-")):
        return "a worker process"
    if same_as_launcher:
        return "a thread of the process that launched it"
    return f"another process ({name})" if name else "an unknown process"


def union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Seconds covered by the intervals, overlaps counted once."""
    ok = ~(np.isnan(starts) | np.isnan(ends)) & (ends > starts)
    s, e = starts[ok], ends[ok]
    if not len(s):
        return 0.0
    order = np.argsort(s)
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    # A new block starts where the start is past everything seen before.
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > run_end[:-1]
    block_id = np.cumsum(new) - 1
    block_start = s[new]
    block_end = np.zeros(block_id[-1] + 1)
    np.maximum.at(block_end, block_id, e)
    return float(np.sum(block_end - block_start))


def agent_waits(actions: Table, agents: Table | None, send: np.ndarray, xs: np.ndarray,
                xe: np.ndarray, call_end: np.ndarray) -> tuple[np.ndarray, Spans, Spans]:
    """Per call (sent at ``send``, executed from ``xs`` to ``xe``, ended at ``call_end``):
    when its agent stopped answering (NaN if it did not), its wait for the agent to start,
    and its stall on an agent that never started, crashed or whose process ended."""
    known, ready, gone, never = _agent_times(actions, agents)
    # Waiting for the agent to start: from the send until it runs (or executes this
    # call, or the call ends). An agent with no running record that executed calls
    # was ready: only calls that did not execute wait on it.
    wait_end = np.fmin(np.fmin(np.where(np.isnan(ready), np.inf, ready), call_end),
                       np.where(np.isnan(xs), np.inf, xs))
    waiting = ~np.isnan(send) & ~never & (
        (ready > send) | (known & np.isnan(ready) & np.isnan(xs)))
    su_s = np.where(waiting, send, np.nan)
    su_e = np.where(waiting, np.fmin(wait_end, np.where(np.isnan(gone), np.inf, gone)),
                    np.nan)
    # Stalled: on an agent that never started, or after its crash or process end.
    stall_from = np.where(never, send, np.fmax(send, gone))
    stall_to = np.where(np.isnan(xs), call_end,
                        np.where(np.isnan(xe) & ~np.isnan(gone), call_end, np.nan))
    stalled = ~np.isnan(send) & (never | ~np.isnan(gone)) & (stall_to > stall_from)
    st_s = np.where(stalled, stall_from, np.nan)
    st_e = np.where(stalled, stall_to, np.nan)
    return gone, (su_s, su_e), (st_s, st_e)


def _agent_times(actions: Table, agents: Table | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per call: whether its agent is known, the agent's running time, the time it
    stopped answering (crash or its process's end; NaN if it did not) and whether it never
    started."""
    n = len(actions)
    nan = np.full(n, np.nan)
    if agents is None or not len(agents):
        no = np.zeros(n, dtype=bool)
        return no, nan, nan.copy(), no.copy()
    first: dict[Any, int] = {}
    for i, a in enumerate(agents["agent_id"].tolist()):
        first.setdefault(a, i)
    idx = np.array([first.get(a, -1) for a in actions["agent_id"].tolist()], dtype=np.int64)
    has = idx >= 0
    safe = np.maximum(idx, 0)
    ready = np.where(has, agents["t_running"][safe], np.nan)
    status = np.asarray(agents["status"], dtype=object)
    t_crash = np.asarray(agents["t_crash"], dtype=np.float64)
    crashed = np.asarray(status == "crashed")
    gone = np.where(has & crashed[safe], t_crash[safe], np.nan)
    never = has & np.asarray(status == "never started")[safe]
    return has, ready, gone, never


def _groups(keys: np.ndarray, keep: np.ndarray | None = None) -> dict[Any, np.ndarray]:
    """Distinct key (not ``None``) -> the ascending indices of ``keys`` that hold it (only
    where ``keep``), in sorted key order. One sort for all groups: a mask per group was
    groups x rows object comparisons (828 processes over 71k actions: 1 s a pass)."""
    valid = np.fromiter((k is not None for k in keys.tolist()), dtype=bool, count=len(keys))
    if keep is not None:
        valid &= keep
    idx = np.flatnonzero(valid)
    if not len(idx):
        return {}
    try:
        uniq, inv = np.unique(keys[idx], return_inverse=True)
    except TypeError:  # keys of mixed types (a hand-made table): by their text
        uniq, inv = np.unique(np.array([str(k) for k in keys[idx].tolist()]),
                              return_inverse=True)
        first = {str(k): k for k in keys[idx].tolist()}
        uniq = np.array([first[u] for u in uniq.tolist()], dtype=object)
    order = np.argsort(inv, kind="stable")
    cuts = np.cumsum(np.bincount(inv, minlength=len(uniq)))[:-1]
    return dict(zip(uniq.tolist(), np.split(idx[order], cuts), strict=True))


def caller_summaries(actions: Table, starts_any: np.ndarray, ends_any: np.ndarray,
                     ivs: dict[str, list[Spans]]) -> list[dict[str, Any]]:
    """Per caller: its calls, busy span, time in calls and between them; the gaps between
    its calls are added to ``ivs["caller"]``."""
    callers = []
    caller_col = np.asarray(actions["caller"], dtype=object)
    groups = _groups(caller_col)
    has_start = ~np.isnan(starts_any)
    for caller, rows in groups.items():
        rows = rows[has_start[rows]]
        cs, ce = starts_any[rows], ends_any[rows]
        order = np.argsort(cs)
        cs, ce = cs[order], ce[order]
        reach = np.maximum.accumulate(np.nan_to_num(ce, nan=-np.inf))
        # A gap runs from the end of everything before to the next call's start.
        ivs["caller"].append((reach[:-1], cs[1:]))
        span = float(np.nanmax(ce) - cs[0]) if len(cs) else 0.0
        in_calls = union_length(cs, ce)
        callers.append({
            "caller": caller, "calls": len(rows), "span_s": span,
            "in_calls_s": in_calls, "between_calls_s": max(span - in_calls, 0.0),
        })
    return callers


def agent_startups(actions: Table, agents: Table, processes: Table | None, su_s: np.ndarray,
                   su_e: np.ndarray) -> list[dict[str, Any]]:
    """Per agent that calls waited for to start (see ``TimeBreakdown.startups``), the
    longest wait first."""
    names: dict[Any, Any] = {}
    firsts: dict[Any, float] = {}
    if processes is not None and len(processes):
        names = dict(zip(processes["file"].tolist(), processes["processName"].tolist(),
                         strict=True))
        firsts = dict(zip(processes["file"].tolist(), processes["t_first"].tolist(),
                          strict=True))
    out = []
    rows = actions["row_start"]
    by_agent = _groups(np.asarray(actions["agent_id"], dtype=object),
                       ~np.isnan(su_s) & (su_e > su_s))
    for i, a in enumerate(agents["agent_id"].tolist()):
        mine = by_agent.get(a)
        if mine is None:
            continue
        m = mine
        f, lf = agents["file"][i], agents["launch_file"][i]
        first = int(mine[np.argmin(su_s[mine])])
        out.append({
            "agent_id": a, "class": agents["class"][i], "process": f,
            "process_kind": process_kind(names.get(f), f is not None and f == lf)
            if f is not None else "a process that never logged",
            "t_launched": float(agents["t_launched"][i]),
            "t_process_first": float(firsts.get(f, np.nan)) if f is not None else np.nan,
            "t_running": float(agents["t_running"][i]),
            "startup_s": float(agents["t_running"][i] - agents["t_launched"][i]),
            "waited_s": union_length(su_s[m], su_e[m]), "calls": len(m),
            "row": int(rows[first]),
        })
    out.sort(key=lambda d: -d["waited_s"])
    return out


def agent_stalls(actions: Table, agents: Table, st_s: np.ndarray, st_e: np.ndarray
                 ) -> list[dict[str, Any]]:
    """Per agent that calls waited on in vain (see ``TimeBreakdown.stalls``), the longest
    stall first."""
    out = []
    rows = actions["row_start"]
    by_agent = _groups(np.asarray(actions["agent_id"], dtype=object),
                       ~np.isnan(st_s) & (st_e > st_s))
    for i, a in enumerate(agents["agent_id"].tolist()):
        m = by_agent.get(a)
        if m is None:
            continue
        first = int(m[np.argmin(st_s[m])])
        out.append({"agent_id": a, "class": agents["class"][i],
                    "status": agents["status"][i], "reason": agents["crash_reason"][i]
                    if "crash_reason" in agents.columns else None,
                    "t_gone": float(agents["t_crash"][i]),
                    "stalled_s": union_length(st_s[m], st_e[m]), "calls": len(m),
                    "row": int(rows[first])})
    out.sort(key=lambda d: -d["stalled_s"])
    return out

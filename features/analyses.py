"""Analyses over things: where the time went, how many at once, per-group statistics.

Every function takes tables from :mod:`features.things` (or events) and returns plain
data (dataclasses, numpy arrays, :class:`~features.table.Table`), so the CLI report, the
TUI and a notebook show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from features.table import Table

# Categories of wall-clock time, highest priority first: an instant in which some action
# executes counts as execution even if another call is in transit at the same time.
CATEGORIES = ("execution", "agent_startup", "stalled", "queue", "reply", "caller", "startup",
              "shutdown", "idle")
CATEGORY_WORDS = {
    "execution": "execution", "agent_startup": "agent start-up",
    "stalled": "stalled on a lost agent", "queue": "messaging (requests)",
    "reply": "messaging (replies)", "caller": "callers between calls",
    "startup": "run start-up", "shutdown": "shutdown", "idle": "idle",
}
"""How people call each category (the keys stay stable for code)."""
CATEGORY_HELP = {
    "execution": "an action was executing in an agent",
    "agent_startup": "a request waited for its agent to start (its process, imports and "
                     "the agent's own start-up), from the call until the agent was running",
    "stalled": "a request waited on an agent that had crashed, whose process had ended, or "
               "that never started: it never ran",
    "queue": "a request was in transit to a running agent (sent, not yet executing)",
    "reply": "a result was on its way back to the caller",
    "caller": "between a caller's consecutive calls (the caller's own work or sleep)",
    "startup": "before the first call (process start, imports, exchange, executor and "
               "manager start-up)",
    "shutdown": "after the last call ended (shutdown and teardown)",
    "idle": "no call in flight and no caller between calls",
}


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


@dataclass
class TimeBreakdown:
    """Wall time of a run split into categories that add up to it exactly."""

    t0: float
    t1: float
    wall_s: float
    expected_s: float | None
    seconds: dict[str, float]
    """Category -> seconds of wall time (see :data:`CATEGORIES`)."""
    phase_sums: dict[str, float]
    """Sum over actions of each phase duration (overlapping calls counted each)."""
    actions: int
    first_action_t: float | None
    last_action_t: float | None
    callers: list[dict[str, Any]] = field(default_factory=list)
    """Per caller: calls, busy span, time in calls, time between calls."""
    notes: list[str] = field(default_factory=list)
    startups: list[dict[str, Any]] = field(default_factory=list)
    """Per agent that calls waited for: ``agent_id``, ``class``, ``process`` (file),
    ``process_kind``, ``t_launched``, ``t_process_first`` (its process's first record),
    ``t_running``, ``startup_s`` (launch to running),
    ``waited_s`` (time calls waited for it, overlaps counted once), ``calls`` waiting,
    ``row`` (evidence: the first waiting call's start record)."""
    stalls: list[dict[str, Any]] = field(default_factory=list)
    """Per agent that calls waited on in vain: ``agent_id``, ``status``, ``reason``,
    ``t_gone``, ``stalled_s``, ``calls``, ``row``."""

    def words(self, category: str) -> str:
        """The category's name for people."""
        return CATEGORY_WORDS.get(category, category)

    @property
    def excess_s(self) -> float | None:
        return None if self.expected_s is None else self.wall_s - self.expected_s

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["excess_s"] = self.excess_s
        return d


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
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


def where_time_went(actions: Table, t0: float, t1: float,
                    expected_s: float | None = None, agents: Table | None = None,
                    processes: Table | None = None) -> TimeBreakdown:
    """Attribute every instant of ``[t0, t1]`` to one category (see :data:`CATEGORIES`).

    A call is in flight from its send to its end (success, exception, cancel, or the end
    of the run), executed or not. While it waits, it waits for something: for its agent to
    start (``agent_startup``, until the agent's ``Running agent`` record), on an agent that
    crashed, whose process ended or that never started (``stalled``), or in transit to a
    running agent (``queue``). Then execution, then the reply. Per caller, the gaps between
    its consecutive calls. Elementary segments between all interval boundaries take the
    highest-priority category active in them; what precedes the first call is run start-up
    and what follows the last one is shutdown. ``agents`` (``Run.agents()``) and
    ``processes`` (``Run.processes()``) name who was waited for; without them waiting is
    all ``queue``."""
    wall = max(t1 - t0, 0.0)
    ivs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in CATEGORIES}
    n = len(actions)
    callers: list[dict[str, Any]] = []
    startups: list[dict[str, Any]] = []
    stalls: list[dict[str, Any]] = []
    first_t = last_t = None
    if n:
        ts = actions["t_start"]
        send = np.where(np.isnan(actions["t_sending"]), ts, actions["t_sending"])
        xs, xe, te = actions["t_exec_start"], actions["t_exec_end"], actions["t_end"]
        open_call = ~np.isnan(send) & np.isnan(te)
        call_end = np.where(np.isnan(te), t1, te)
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
        ivs["agent_startup"].append((su_s, su_e))
        # Stalled: on an agent that never started, or after its crash or process end.
        stall_from = np.where(never, send, np.fmax(send, gone))
        stall_to = np.where(np.isnan(xs), call_end,
                            np.where(np.isnan(xe) & ~np.isnan(gone), call_end, np.nan))
        stalled = ~np.isnan(send) & (never | ~np.isnan(gone)) & (stall_to > stall_from)
        st_s = np.where(stalled, stall_from, np.nan)
        st_e = np.where(stalled, stall_to, np.nan)
        ivs["stalled"].append((st_s, st_e))
        ivs["queue"].append((send, np.where(np.isnan(xs), np.where(open_call, t1, np.nan),
                                            xs)))
        ivs["execution"].append((xs, xe))
        ivs["reply"].append((xe, te))
        exec_open = ~np.isnan(xs) & np.isnan(xe)
        ivs["execution"].append((np.where(exec_open, xs, np.nan),
                                 np.where(exec_open, np.fmin(
                                     t1, np.where(np.isnan(gone), np.inf, gone)), np.nan)))
        starts_any = np.fmin(np.fmin(ts, send), xs)
        ends_any = np.fmax(np.fmax(te, xe), np.where(open_call, t1, np.nan))
        if np.isfinite(starts_any).any():
            first_t = float(np.nanmin(starts_any))
        if np.isfinite(ends_any).any():
            last_t = float(np.nanmax(ends_any))
        callers = _callers(actions, starts_any, ends_any, ivs)
        if agents is not None and len(agents):
            startups = _startups(actions, agents, processes, su_s, su_e)
            stalls = _stalls(actions, agents, st_s, st_e)
    seconds = _attribute(ivs, t0, t1, first_t, last_t)
    phase = {
        "queue": float(np.nansum(actions["queue_s"])) if n else 0.0,
        "execution": float(np.nansum(actions["exec_s"])) if n else 0.0,
        "reply": float(np.nansum(actions["reply_s"])) if n else 0.0,
    }
    notes = []
    if n == 0:
        notes.append("no actions in this run: all time is start-up or idle")
    return TimeBreakdown(t0, t1, wall, expected_s, seconds, phase, n, first_t, last_t,
                         callers, notes, startups, stalls)


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


def _callers(actions: Table, starts_any: np.ndarray, ends_any: np.ndarray,
             ivs: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> list[dict[str, Any]]:
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
        in_calls = _union_length(cs, ce)
        callers.append({
            "caller": caller, "calls": len(rows), "span_s": span,
            "in_calls_s": in_calls, "between_calls_s": max(span - in_calls, 0.0),
        })
    return callers


def _startups(actions: Table, agents: Table, processes: Table | None, su_s: np.ndarray,
              su_e: np.ndarray) -> list[dict[str, Any]]:
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
            "waited_s": _union_length(su_s[m], su_e[m]), "calls": len(m),
            "row": int(rows[first]),
        })
    out.sort(key=lambda d: -d["waited_s"])
    return out


def _stalls(actions: Table, agents: Table, st_s: np.ndarray, st_e: np.ndarray
            ) -> list[dict[str, Any]]:
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
                    "stalled_s": _union_length(st_s[m], st_e[m]), "calls": len(m),
                    "row": int(rows[first])})
    out.sort(key=lambda d: -d["stalled_s"])
    return out


def _attribute(ivs: dict[str, list[tuple[np.ndarray, np.ndarray]]], t0: float, t1: float,
               first_t: float | None, last_t: float | None) -> dict[str, float]:
    """Sweep all interval boundaries; each elementary segment goes to the highest-priority
    category with an open interval (start-up/shutdown/idle when none is)."""
    bounds = [np.array([t0, t1])]
    cat_edges: list[tuple[int, np.ndarray, np.ndarray]] = []
    for ci, cat in enumerate(CATEGORIES):
        # All of a category's interval lists at once (one per caller: 828 processes made
        # 828 sweeps over every boundary); "open" is "any of them open" either way.
        parts = ivs.get(cat, [])
        if not parts:
            continue
        s = np.concatenate([p[0] for p in parts])
        e = np.concatenate([p[1] for p in parts])
        ok = ~(np.isnan(s) | np.isnan(e)) & (e > s)
        s2 = np.clip(s[ok], t0, t1)
        e2 = np.clip(e[ok], t0, t1)
        if len(s2):
            cat_edges.append((ci, s2, e2))
            bounds.append(s2)
            bounds.append(e2)
    if first_t is not None:
        bounds.append(np.array([min(max(first_t, t0), t1)]))
    if last_t is not None:
        bounds.append(np.array([min(max(last_t, t0), t1)]))
    edges = np.unique(np.concatenate(bounds))
    seg = np.diff(edges)
    mid = (edges[:-1] + edges[1:]) / 2
    best = np.full(len(seg), len(CATEGORIES), dtype=np.int64)
    for ci, s, e in cat_edges:
        delta = np.zeros(len(edges) + 1, dtype=np.int64)
        np.add.at(delta, np.searchsorted(edges, s), 1)
        np.add.at(delta, np.searchsorted(edges, e), -1)
        active = np.cumsum(delta)[: len(seg)] > 0
        best = np.where(active & (best > ci), ci, best)
    out = dict.fromkeys(CATEGORIES, 0.0)
    none = best == len(CATEGORIES)
    for ci, cat in enumerate(CATEGORIES):
        out[cat] = float(seg[best == ci].sum())
    if first_t is None:
        out["startup"] += float(seg[none].sum())
    else:
        out["startup"] += float(seg[none & (mid < first_t)].sum())
        out["shutdown"] += float(seg[none & (mid > (last_t or t1))].sum())
        out["idle"] += float(seg[none & (mid >= first_t) & (mid <= (last_t or t1))].sum())
    return out


def concurrency(starts: np.ndarray, ends: np.ndarray, t_end: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """How many at once: the step function of open intervals.

    Returns ``(times, counts)``: from ``times[i]`` until ``times[i+1]`` exactly
    ``counts[i]`` intervals are open. An interval with no end (in flight) stays open
    until ``t_end`` (or forever when ``t_end`` is None)."""
    s = np.asarray(starts, dtype=np.float64)
    e = np.asarray(ends, dtype=np.float64).copy()
    ok = ~np.isnan(s)
    s, e = s[ok], e[ok]
    if t_end is not None:
        e = np.where(np.isnan(e), t_end, e)
    e = e[~np.isnan(e)]  # intervals still open at the end (no t_end) never close
    times = np.concatenate([s, e])
    delta = np.concatenate([np.ones(len(s), dtype=np.int64), -np.ones(len(e), dtype=np.int64)])
    if not len(times):
        return np.empty(0), np.empty(0, dtype=np.int64)
    order = np.lexsort((delta, times))  # ends before starts at equal times
    times, delta = times[order], delta[order]
    counts = np.cumsum(delta)
    last = np.r_[times[1:] != times[:-1], True]
    return times[last], counts[last]


def concurrency_stats(times: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Maximum, time-weighted mean and time at the maximum of a step function."""
    if len(times) < 2:
        return {"max": float(counts.max()) if len(counts) else 0.0, "mean": 0.0,
                "t_max": float(times[0]) if len(times) else float("nan")}
    dur = np.diff(times)
    c = counts[:-1]
    total = dur.sum()
    i = int(np.argmax(counts))
    return {"max": float(counts.max()), "mean": float((c * dur).sum() / total) if total else 0.0,
            "t_max": float(times[i])}


def sample_steps(times: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function's value at each time of ``grid`` (0 before the first step)."""
    if not len(times):
        return np.zeros(len(grid), dtype=np.int64)
    idx = np.searchsorted(times, grid, side="right") - 1
    out = np.where(idx >= 0, counts[np.maximum(idx, 0)], 0)
    return out


def _pct(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if len(x) else float("nan")


def group_stats(actions: Table, by: tuple[str, ...] = ("agent_class", "action"),
                value: str = "total_s") -> Table:
    """Per group (default: agent class and action): count, errors, p50, p95, max and
    mean of ``value``, plus the mean of each phase."""
    n = len(actions)
    keys = [tuple(actions[k][i] for k in by) for i in range(n)]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    rows: list[dict[str, Any]] = []
    status = actions["status"] if n else np.empty(0, dtype=object)
    for k, idx_list in groups.items():
        idx = np.array(idx_list)
        v = actions[value][idx]
        st = status[idx]
        rec: dict[str, Any] = {b: kv for b, kv in zip(by, k, strict=True)}
        rec.update({
            "count": len(idx),
            "ok": int(np.sum(st == "ok")),
            "errors": int(np.sum(st == "exception")),
            "cancelled": int(np.sum(st == "cancelled")),
            "unfinished": int(np.sum((st == "in flight") | (st == "orphaned"))),
            "p50_s": _pct(v, 50), "p95_s": _pct(v, 95),
            "max_s": float(np.nanmax(v)) if np.isfinite(v).any() else float("nan"),
            "mean_s": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
            "sum_s": float(np.nansum(v)),
        })
        for ph in ("queue_s", "exec_s", "reply_s"):
            pv = actions[ph][idx]
            rec["mean_" + ph] = float(np.nanmean(pv)) if np.isfinite(pv).any() else float("nan")
        rows.append(rec)
    rows.sort(key=lambda r: -r["sum_s"])
    cols = [*by, "count", "ok", "errors", "cancelled", "unfinished", "p50_s", "p95_s",
            "max_s", "mean_s", "sum_s", "mean_queue_s", "mean_exec_s", "mean_reply_s"]
    return Table({c: [r[c] for r in rows] if rows else np.empty(0) for c in cols},
                 name="action_stats")


def histogram(values: np.ndarray, bins: int = 12, log: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of durations (log-spaced bins by default, for latencies that
    span orders of magnitude)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:  # one bin holding them all, not a dozen empty ones
        return np.array([len(v)], dtype=np.int64), np.array([lo, hi])
    if log and lo > 0 and hi / lo > 10:
        edges = np.geomspace(lo, hi, bins + 1)
    else:
        edges = np.linspace(lo, hi, bins + 1)
    counts, edges = np.histogram(v, bins=edges)
    return counts, edges


def slowest(actions: Table, n: int = 10, by: str = "total_s") -> Table:
    """The ``n`` slowest actions by ``by`` (in-flight ones are not timed, see status)."""
    if not len(actions):
        return actions
    return actions.sort(by, descending=True).head(n)

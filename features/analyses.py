"""Analyses over things: where the time went (who waited on whom: :mod:`features.waits`),
how many at once, per-group statistics.

Every function takes tables from :mod:`features.things` (or events) and returns plain
data (dataclasses, numpy arrays, :class:`~features.table.Table`), so the CLI report, the
TUI and a notebook show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from features.table import Table
from features.waits import (
    Spans,
    agent_stalls,
    agent_startups,
    agent_waits,
    caller_summaries,
    process_kind,
)

__all__ = ["CATEGORIES", "CATEGORY_HELP", "CATEGORY_WORDS", "TimeBreakdown", "concurrency",
           "concurrency_stats", "group_stats", "histogram", "process_kind", "sample_steps",
           "slowest", "where_time_went"]

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
    ivs: dict[str, list[Spans]] = {c: [] for c in CATEGORIES}
    n = len(actions)
    callers: list[dict[str, Any]] = []
    startups: list[dict[str, Any]] = []
    stalls: list[dict[str, Any]] = []
    first_t = last_t = None
    if n:
        startup, stall, starts_any, ends_any = _call_intervals(actions, agents, t1, ivs)
        if np.isfinite(starts_any).any():
            first_t = float(np.nanmin(starts_any))
        if np.isfinite(ends_any).any():
            last_t = float(np.nanmax(ends_any))
        callers = caller_summaries(actions, starts_any, ends_any, ivs)
        if agents is not None and len(agents):
            startups = agent_startups(actions, agents, processes, *startup)
            stalls = agent_stalls(actions, agents, *stall)
    seconds = _attribute(ivs, t0, t1, first_t, last_t)
    notes = []
    if n == 0:
        notes.append("no actions in this run: all time is start-up or idle")
    return TimeBreakdown(t0, t1, wall, expected_s, seconds, _phase_sums(actions), n,
                         first_t, last_t, callers, notes, startups, stalls)


def _call_intervals(actions: Table, agents: Table | None, t1: float,
                    ivs: dict[str, list[Spans]]
                    ) -> tuple[Spans, Spans, np.ndarray, np.ndarray]:
    """Each call's intervals, added to ``ivs`` by category. Returns its waits for its agent
    to start and its stalls (told per agent afterwards), and when each call began and
    ended in any way (for the first and last call, and the gaps of its caller)."""
    ts = actions["t_start"]
    send = np.where(np.isnan(actions["t_sending"]), ts, actions["t_sending"])
    xs, xe, te = actions["t_exec_start"], actions["t_exec_end"], actions["t_end"]
    open_call = ~np.isnan(send) & np.isnan(te)
    call_end = np.where(np.isnan(te), t1, te)
    gone, startup, stall = agent_waits(actions, agents, send, xs, xe, call_end)
    ivs["agent_startup"].append(startup)
    ivs["stalled"].append(stall)
    ivs["queue"].append((send, np.where(np.isnan(xs), np.where(open_call, t1, np.nan),
                                        xs)))
    ivs["execution"].append((xs, xe))
    ivs["reply"].append((xe, te))
    # An execution still open ends with the run, or where its agent stopped answering.
    exec_open = ~np.isnan(xs) & np.isnan(xe)
    ivs["execution"].append((np.where(exec_open, xs, np.nan),
                             np.where(exec_open, np.fmin(
                                 t1, np.where(np.isnan(gone), np.inf, gone)), np.nan)))
    starts_any = np.fmin(np.fmin(ts, send), xs)
    ends_any = np.fmax(np.fmax(te, xe), np.where(open_call, t1, np.nan))
    return startup, stall, starts_any, ends_any


def _phase_sums(actions: Table) -> dict[str, float]:
    """Sum over actions of each phase duration (overlapping calls counted each)."""
    n = len(actions)
    return {
        "queue": float(np.nansum(actions["queue_s"])) if n else 0.0,
        "execution": float(np.nansum(actions["exec_s"])) if n else 0.0,
        "reply": float(np.nansum(actions["reply_s"])) if n else 0.0,
    }


def _attribute(ivs: dict[str, list[Spans]], t0: float, t1: float,
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
    keys = list(zip(*(actions[k].tolist() for k in by), strict=True)) if n else []
    # Groups in order of first appearance, found at C level (a row at a time in Python
    # this took 0.67 s of a 10M-record run's 715k calls, in every analysis of it).
    firsts = {k: g for g, k in enumerate(dict.fromkeys(keys))}
    code = np.fromiter(map(firsts.__getitem__, keys), np.int64, n)
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(firsts) + 1))
    groups = {k: order[bounds[g]:bounds[g + 1]] for k, g in firsts.items()}
    rows: list[dict[str, Any]] = []
    status = actions["status"] if n else np.empty(0, dtype=object)
    for k, idx in groups.items():
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
    return actions.sort(by, descending=True, limit=n)

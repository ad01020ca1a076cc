"""The timeline's numbers: lanes, their intervals, and cell rasters at a zoom level.

Pure numpy over the analysis tables, so the widget's ``render_line`` only slices arrays.
Every drawable thing (a lifecycle phase, a caller's wait, an action's execution, an end
marker) becomes one interval ``(lane, t0, t1, code)``; a raster is the highest code per
cell, and codes are numbered in paint priority, so layering is a maximum.

Times here are relative seconds since the run start (the first event).

This module builds the lanes and lays them out. The codes and lane types are in
:mod:`tui.widgets.timeline_model`, the rasters in :mod:`tui.widgets.timeline_raster`,
what a cell holds in :mod:`tui.widgets.timeline_lookup` and the ruler and sparklines in
:mod:`tui.widgets.timeline_axis`; their names are re-exported here, so the widget and the
tests keep one name for all of it (``td``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from features.table import Table
from tui.widgets.timeline_axis import SPARK, fmt_t, nice_step, ruler, sparkline
from tui.widgets.timeline_lookup import (
    actions_at,
    describe,
    judged,
    mark_at,
    next_start,
    pick_action,
    steering_at,
)
from tui.widgets.timeline_model import (
    ALIVE,
    BAR_CODES,
    CANCELLED,
    CRASH,
    EMPTY,
    END,
    EXCEPTION,
    HUNG,
    INFLIGHT,
    JUDGED,
    NCODES,
    OK,
    SLOW,
    STARTUP,
    STATUS_CODE,
    STATUS_WORD,
    STEER,
    WAIT,
    Lane,
    Lanes,
    short_id,
)
from tui.widgets.timeline_raster import (
    CHUNK,
    Rasters,
    cell_span,
    concurrency_cells,
    raster,
    series_cells,
)

__all__ = [
    "ALIVE", "BAR_CODES", "CANCELLED", "CHUNK", "CRASH", "EMPTY", "END", "EXCEPTION", "HUNG",
    "INFLIGHT", "JUDGED", "NCODES", "OK", "SLOW", "SPARK", "STARTUP", "STATUS_CODE",
    "STATUS_WORD", "STEER", "WAIT", "Lane", "Lanes", "Rasters", "actions_at", "build_lanes",
    "cell_span", "concurrency_cells", "describe", "fmt_t", "judge", "judged", "layout_rows",
    "mark_at", "next_start", "nice_step", "pick_action", "raster", "ruler", "series_cells",
    "short_id", "sparkline", "steering_at",
]


def _lookup(values: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """Each value's lane in ``index`` (-1 for none), looked up at C level: a generator
    took ~25 ms of the UI thread for a 1M-record run's 71k actions, twice."""
    try:
        return np.fromiter(map(index.get, values.tolist(), repeat(-1)), np.int64,
                           len(values))
    except TypeError:  # an unhashable value (not a text: no lane)
        return np.fromiter((index.get(v, -1) if isinstance(v, str) else -1
                            for v in values), np.int64, len(values))


def judge(actions: Table, flags: Table | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align the detector's per-call ``flags`` (``features.detect``) with ``actions`` by
    tag: per action row the flag (``""`` when not judged), the ratio to its group's
    median and the incident id (0: none). Flags of an older snapshot fit: calls they do
    not know are simply not judged yet."""
    n = len(actions)
    flag = np.full(n, "", dtype=object)
    ratio = np.full(n, np.nan)
    incident = np.zeros(n, dtype=np.int64)
    if flags is None or not len(flags) or not n:
        return flag, ratio, incident
    # Vectorised: this runs on the UI thread, and a big run has 10^5 actions.
    marked = np.flatnonzero(np.isin(flags["flag"], list(JUDGED)))
    if not len(marked):
        return flag, ratio, incident
    tags = np.asarray(actions["tag"], dtype=str)
    want = np.asarray(flags["tag"][marked], dtype=str)
    order = np.argsort(tags, kind="stable")
    at = order[np.minimum(np.searchsorted(tags, want, sorter=order), n - 1)]
    hit = tags[at] == want
    j, i = at[hit], marked[hit]
    flag[j], ratio[j], incident[j] = flags["flag"][i], flags["ratio"][i], flags["incident"][i]
    return flag, ratio, incident


def build_lanes(agents: Table, actions: Table, concurrency: tuple[np.ndarray, np.ndarray],
                t0: float, t1: float, created: np.ndarray | None = None,
                flags: Table | None = None, marks: Table | None = None,
                infra: Table | None = None) -> Lanes:
    """Lanes in launch order (non-agent callers first) and their intervals.

    Unfinished things (an agent still alive, an action in flight) extend to ``t1``,
    the run's current end. ``created`` (event times) dates a crash from its record.
    ``flags`` (the detector's, optional) mark slow and possibly hung executions."""
    end = t1 - t0
    order = np.argsort(np.fmin(np.fmin(agents["t_launched"], agents["t_starting"]),
                               agents["t_running"]), kind="stable")  # NaN sorts last
    ag = agents.take(order)
    lanes, index = _lanes_in_order(ag, actions)
    infra_lanes = _infra_lanes(infra, lanes, t0) if infra is not None and len(infra) else []
    first_infra = len(lanes)
    lanes.extend(ln for ln, _ in infra_lanes)

    iv = _Intervals(end)
    if len(ag):
        _add_lifecycle(iv, ag, index, t0)
    flag, ratio, incident = judge(actions, flags)
    if len(actions):
        _add_executions(iv, agents, actions, index, flag, t0)
    # Blocks and managers: submitted (start-up shade), running (alive line), an end mark.
    for k, (_, spans) in enumerate(infra_lanes):
        lane_k = np.array([first_infra + k], dtype=np.int64)
        for s, e, code in spans:
            iv.add(lane_k, np.array([s]), np.array([e]), code)
    lane_marks = None
    if marks is not None and len(marks):
        lane_marks = _add_marks(iv, marks, index, t0)
    lane_a, s_a, e_a, c_a, a_a = iv.joined()
    times, counts = concurrency
    return Lanes(lanes, lane_a.astype(np.int64), s_a, e_a, c_a.astype(np.uint8),
                 a_a.astype(np.int64), max(end, 0.0), np.asarray(times, dtype=np.float64) - t0,
                 np.asarray(counts, dtype=np.int64), ratio, incident, lane_marks)


def _lanes_in_order(ag: Table, actions: Table) -> tuple[list[Lane], dict[str, int]]:
    """The lanes of callers that are not agents, then of the agents (``ag``, in launch
    order), then of agents called but never seen starting; and each key's lane index."""
    lanes: list[Lane] = []
    index: dict[str, int] = {}
    callers = [c for c in dict.fromkeys(actions["caller"]) if isinstance(c, str)]
    known = {a for a in ag["agent_id"] if isinstance(a, str)}
    for c in callers:
        if c not in known:  # the user/driver, or an agent whose lifecycle was not logged
            index[c] = len(lanes)
            lanes.append(Lane(c, "caller"))
    for i in range(len(ag)):
        aid = ag["agent_id"][i]
        f, pid = ag["file"][i], int(ag["pid"][i])
        group = f"{str(f)[:8]} {pid}" if f is not None else "unknown process"
        index[aid] = len(lanes)
        lanes.append(Lane(aid, "agent", str(ag["class"][i] or ""), group,
                          bool(ag["crashed"][i])))
    for a in dict.fromkeys(actions["agent_id"]):
        if isinstance(a, str) and a not in index:  # called, but never seen starting
            index[a] = len(lanes)
            lanes.append(Lane(a, "agent", "", "unknown process"))
    return lanes, index


@dataclass
class _Intervals:
    """The intervals of :func:`build_lanes`, gathered a kind at a time (the order they are
    added is the order of the arrays) and joined once at the end."""

    end: float
    """Where an unfinished interval ends: the run's current end, since its start."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = \
        field(default_factory=list)

    def add(self, lane: np.ndarray, s: np.ndarray, e: np.ndarray, code: np.ndarray | int,
            action: np.ndarray | None = None) -> None:
        """Intervals ``[s, e]`` in ``lane`` (those with no lane or no start are left out;
        no end: the run's end)."""
        ok = (lane >= 0) & np.isfinite(s)
        e = np.where(np.isfinite(e), e, self.end)
        n = int(ok.sum())
        codes = np.broadcast_to(np.asarray(code, dtype=np.uint8), lane.shape)[ok]
        acts = action[ok] if action is not None else np.full(n, -1, dtype=np.int64)
        self.parts.append((lane[ok], s[ok], np.maximum(e[ok], s[ok]), codes, acts))

    def joined(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lane, start, end, code and action row of every interval added."""
        if self.parts:
            lane_a, s_a, e_a, c_a, a_a = (np.concatenate(x)
                                          for x in zip(*self.parts, strict=True))
        else:
            lane_a = a_a = np.empty(0, dtype=np.int64)
            s_a = e_a = np.empty(0)
            c_a = np.empty(0, dtype=np.uint8)
        return lane_a, s_a, e_a, c_a, a_a


def _add_lifecycle(iv: _Intervals, ag: Table, index: dict[str, int], t0: float) -> None:
    """Each agent's start-up shade, alive line, and an end marker one instant wide."""
    end = iv.end
    la = _lookup(ag["agent_id"], index)
    launched = np.fmin(ag["t_launched"], ag["t_starting"]) - t0
    running = ag["t_running"] - t0
    # The crash record's time; the shutdown request is the best guess when undated.
    crash_t = np.where(np.isfinite(ag["t_crash"]), ag["t_crash"],
                       ag["t_shutting_down"]) - t0
    stop = np.where(np.isfinite(ag["t_shutdown"]), ag["t_shutdown"] - t0,
                    np.where(ag["crashed"].astype(bool), crash_t, np.nan))
    iv.add(la, launched, np.where(np.isfinite(running), running, stop), STARTUP)
    iv.add(la, running, stop, ALIVE)
    crashed = ag["crashed"].astype(bool)
    marker = np.where(crashed, CRASH, END).astype(np.uint8)
    has_end = np.isfinite(stop) | crashed
    fin = np.where(np.isfinite(stop), stop, end)
    iv.add(np.where(has_end, la, -1), fin, fin, marker)


def _add_executions(iv: _Intervals, agents: Table, actions: Table, index: dict[str, int],
                    flag: np.ndarray, t0: float) -> None:
    """Executions in the target agent's lane, coloured by status (refined by the
    detector's ``flag``), and each caller's wait in its own lane."""
    n = len(actions)
    rows = np.arange(n, dtype=np.int64)
    st = np.fromiter(map(STATUS_CODE.get, actions["status"].tolist(), repeat(INFLIGHT)),
                     np.uint8, n)
    for f, (plain, marked) in JUDGED.items():
        st[(flag == f) & (st == plain)] = marked
    # An execution still open when its agent crashed or its process died ends there.
    gone: dict[Any, float] = {}
    if "t_gone" in agents.columns:
        gone = dict(zip(agents["agent_id"].tolist(), agents["t_gone"].tolist(),
                        strict=True))
    died = np.fromiter(map(gone.get, actions["agent_id"].tolist(), repeat(np.nan)),
                       np.float64, n) if gone else np.full(n, np.nan)
    xe = np.where(np.isnan(actions["t_exec_end"]) & ~np.isnan(died), died,
                  actions["t_exec_end"])
    iv.add(_lookup(actions["agent_id"], index), actions["t_exec_start"] - t0,
           xe - t0, st, rows)
    # The caller's wait, in its own lane (the driver's lane for user callers).
    iv.add(_lookup(actions["caller"], index), actions["t_start"] - t0,
           actions["t_end"] - t0, WAIT, rows)


def _add_marks(iv: _Intervals, marks: Table, index: dict[str, int], t0: float) -> Table:
    """Steering decisions: an instant in the steering agent's lane, above everything.
    Returns the decisions drawn, with their ``lane`` and ``t`` since the run start."""
    ml = _lookup(marks["agent_id"], index)
    order = np.argsort(marks["t"], kind="stable")
    keep = order[ml[order] >= 0]
    cols = {c: marks[c][keep] for c in marks.columns}
    cols["lane"], cols["t"] = ml[keep], marks["t"][keep] - t0
    lane_marks = Table(cols, name="steering")
    iv.add(cols["lane"], cols["t"], cols["t"], STEER)
    return lane_marks


def _infra_lanes(infra: Table, lanes: list[Lane], t0: float
                 ) -> list[tuple[Lane, list[tuple[float, float, int]]]]:
    """A lane per block and manager, in the group of the process it hosted, with its
    intervals (seconds since the run start; NaN ends extend to the run's end)."""
    group_of_pid: dict[str, str] = {}
    for ln in lanes:
        if ln.kind == "agent" and ln.group and ln.group != "unknown process":
            pid = ln.group.rsplit(" ", 1)[-1]
            group_of_pid.setdefault(pid, ln.group)
    out = []
    for i in range(len(infra)):
        pids = [p for p in str(infra["pids"][i] or "").split(",") if p]
        group = next((group_of_pid[p] for p in pids if p in group_of_pid), "Parsl")
        sub, run_t, end_t = (float(infra[c][i]) - t0 for c in ("t_submitted", "t_running",
                                                                "t_end"))
        kind, state = str(infra["kind"][i]), str(infra["state"][i])
        iv: list[tuple[float, float, int]] = []
        if kind == "block":
            iv.append((sub, run_t if math.isfinite(run_t) else end_t, STARTUP))
            note = (f"submitted +{sub:.3f} s, running "
                    + (f"+{run_t:.3f} s" if math.isfinite(run_t) else "not yet"))
        else:
            note = f"registered +{sub:.3f} s"
        iv.append((run_t, end_t, ALIVE))
        if math.isfinite(end_t):
            iv.append((end_t, end_t, END))
            note += f", {state.lower()} +{end_t:.3f} s"
        if pids:
            note += f"; hosted pid {', '.join(pids)}"
        out.append((Lane(str(infra["key"][i]), "infra", kind, group, state == "FAILED",
                         note), iv))
    return out


def layout_rows(lanes: list[Lane], grouped: bool) -> list[tuple[str, int, str]]:
    """The scrolling lines: ``("lane", index, "")``, callers first; grouped by process,
    each group led by ``("group", lanes in it, process)``. Blocks and managers lead the
    group of the process they hosted (ungrouped: after the callers)."""
    rows = [("lane", i, "") for i, ln in enumerate(lanes) if ln.kind == "caller"]
    infra = [i for i, ln in enumerate(lanes) if ln.kind == "infra"]
    agents = [i for i, ln in enumerate(lanes) if ln.kind == "agent"]
    if not grouped:
        return rows + [("lane", i, "") for i in infra + agents]
    groups: dict[str, list[int]] = {}
    for i in infra + agents:
        groups.setdefault(lanes[i].group, []).append(i)
    for name, members in groups.items():
        rows.append(("group", len(members), name))
        rows.extend(("lane", i, "") for i in members)
    return rows

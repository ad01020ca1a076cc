"""The timeline's numbers: lanes, their intervals, and cell rasters at a zoom level.

Pure numpy over the analysis tables, so the widget's ``render_line`` only slices arrays.
Every drawable thing (a lifecycle phase, a caller's wait, an action's execution, an end
marker) becomes one interval ``(lane, t0, t1, code)``; a raster is the highest code per
cell, and codes are numbered in paint priority, so layering is a maximum.

Times here are relative seconds since the run start (the first event).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features import analyses
from features.fmt import fmt_s
from features.query import And, Cmp, to_text
from features.safe import clean
from features.table import Table

# Cell codes, in paint priority (a higher code hides a lower one in the same cell).
(EMPTY, STARTUP, ALIVE, WAIT, END, OK, INFLIGHT, SLOW, HUNG, CANCELLED, CRASH,
 EXCEPTION, STEER) = range(13)
NCODES = 13
BAR_CODES = (OK, INFLIGHT, SLOW, HUNG, CANCELLED, EXCEPTION)
STATUS_CODE = {"ok": OK, "in flight": INFLIGHT, "orphaned": INFLIGHT,
               "cancelled": CANCELLED, "exception": EXCEPTION}
"""Worst status wins a cell: exception > cancelled > in flight > ok (the code order).
The detector's judgement ranks between: possibly hung > slow > in flight."""

STATUS_WORD = {OK: "ok", INFLIGHT: "unfinished", SLOW: "SLOW", HUNG: "POSSIBLY HUNG",
               CANCELLED: "cancelled", EXCEPTION: "EXCEPTION"}
JUDGED = {"slow": (OK, SLOW), "possibly hung": (INFLIGHT, HUNG)}
"""Detector flag -> (the status code it refines, the code painted instead): a slow call
that also failed stays a failure."""
_SHORT_ID = re.compile(r"^[A-Za-z]+<([^<>]*)>$")


def short_id(agent_id: str) -> str:
    """``"AgentId<39d362a2>"`` -> ``"39d362a2"`` (anything else unchanged)."""
    m = _SHORT_ID.match(agent_id)
    return m.group(1) if m else agent_id


@dataclass
class Lane:
    """One horizontal lane: an agent, or a caller that is not an agent (the driver)."""

    key: str
    """The agent or caller id (raw log text: clean it before painting)."""
    kind: str
    """``agent``, ``caller`` or ``infra`` (a Parsl block or manager: features.infra)."""
    cls: str = ""
    group: str = ""
    """Process of an agent: file prefix and pid (raw log text); for an infra lane, the
    group of the process it hosts (``Parsl`` when none of the run's is known)."""
    crashed: bool = False
    note: str = ""
    """What an infra lane's readout says (its states and times)."""


@dataclass
class Lanes:
    """Lanes and every interval drawn in them, for one analysis snapshot."""

    lanes: list[Lane]
    lane: np.ndarray
    """Lane index of each interval."""
    t0: np.ndarray
    t1: np.ndarray
    code: np.ndarray
    action: np.ndarray
    """Row in the actions table of exec/wait intervals; -1 for lifecycle ones."""
    duration: float
    """Seconds from the run's first to its last event so far."""
    conc_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    conc_c: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ratio: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Per action row: its duration against its group's median when the detector
    flagged it (slow or possibly hung), else NaN."""
    incident: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Per action row: the incident it belongs to (0: none)."""
    marks: Table | None = None
    """The steering agent's decisions (``tui.model.steering_marks``) with ``lane`` and
    ``t`` relative to the run start, in time order; drawn as :data:`STEER` instants."""

    @property
    def conc_max(self) -> int:
        return int(self.conc_c.max()) if len(self.conc_c) else 0


def _lookup(values: np.ndarray, index: dict[str, int]) -> np.ndarray:
    return np.fromiter((index.get(v, -1) if isinstance(v, str) else -1 for v in values),
                       np.int64, len(values))


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
    infra_lanes = _infra_lanes(infra, lanes, t0) if infra is not None and len(infra) else []
    first_infra = len(lanes)
    lanes.extend(ln for ln, _ in infra_lanes)

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(lane: np.ndarray, s: np.ndarray, e: np.ndarray, code: np.ndarray | int,
            action: np.ndarray | None = None) -> None:
        ok = (lane >= 0) & np.isfinite(s)
        e = np.where(np.isfinite(e), e, end)
        n = int(ok.sum())
        codes = np.broadcast_to(np.asarray(code, dtype=np.uint8), lane.shape)[ok]
        acts = action[ok] if action is not None else np.full(n, -1, dtype=np.int64)
        parts.append((lane[ok], s[ok], np.maximum(e[ok], s[ok]), codes, acts))

    # Lifecycle: start-up shade, alive line, and an end marker one instant wide.
    if len(ag):
        la = _lookup(ag["agent_id"], index)
        launched = np.fmin(ag["t_launched"], ag["t_starting"]) - t0
        running = ag["t_running"] - t0
        # The crash record's time; the shutdown request is the best guess when undated.
        crash_t = np.where(np.isfinite(ag["t_crash"]), ag["t_crash"],
                           ag["t_shutting_down"]) - t0
        stop = np.where(np.isfinite(ag["t_shutdown"]), ag["t_shutdown"] - t0,
                        np.where(ag["crashed"].astype(bool), crash_t, np.nan))
        add(la, launched, np.where(np.isfinite(running), running, stop), STARTUP)
        add(la, running, stop, ALIVE)
        crashed = ag["crashed"].astype(bool)
        marker = np.where(crashed, CRASH, END).astype(np.uint8)
        has_end = np.isfinite(stop) | crashed
        fin = np.where(np.isfinite(stop), stop, end)
        add(np.where(has_end, la, -1), fin, fin, marker)
    # Executions, in the target agent's lane, coloured by status.
    n = len(actions)
    flag, ratio, incident = judge(actions, flags)
    if n:
        rows = np.arange(n, dtype=np.int64)
        st = np.fromiter((STATUS_CODE.get(s, INFLIGHT) for s in actions["status"]), np.uint8, n)
        for f, (plain, marked) in JUDGED.items():
            st[(flag == f) & (st == plain)] = marked
        # An execution still open when its agent crashed or its process died ends there.
        gone: dict[Any, float] = {}
        if "t_gone" in agents.columns:
            gone = dict(zip(agents["agent_id"].tolist(), agents["t_gone"].tolist(),
                            strict=True))
        died = np.array([gone.get(a, np.nan) for a in actions["agent_id"].tolist()],
                        dtype=np.float64)
        xe = np.where(np.isnan(actions["t_exec_end"]) & ~np.isnan(died), died,
                      actions["t_exec_end"])
        add(_lookup(actions["agent_id"], index), actions["t_exec_start"] - t0,
            xe - t0, st, rows)
        # The caller's wait, in its own lane (the driver's lane for user callers).
        add(_lookup(actions["caller"], index), actions["t_start"] - t0,
            actions["t_end"] - t0, WAIT, rows)
    # Blocks and managers: submitted (start-up shade), running (alive line), an end mark.
    for k, (_, iv) in enumerate(infra_lanes):
        lane_k = np.array([first_infra + k], dtype=np.int64)
        for s, e, code in iv:
            add(lane_k, np.array([s]), np.array([e]), code)
    # Steering decisions: an instant in the steering agent's lane, above everything.
    lane_marks = None
    if marks is not None and len(marks):
        ml = _lookup(marks["agent_id"], index)
        order = np.argsort(marks["t"], kind="stable")
        keep = order[ml[order] >= 0]
        cols = {c: marks[c][keep] for c in marks.columns}
        cols["lane"], cols["t"] = ml[keep], marks["t"][keep] - t0
        lane_marks = Table(cols, name="steering")
        add(cols["lane"], cols["t"], cols["t"], STEER)
    if parts:
        lane_a, s_a, e_a, c_a, a_a = (np.concatenate(x) for x in zip(*parts, strict=True))
    else:
        lane_a = a_a = np.empty(0, dtype=np.int64)
        s_a = e_a = np.empty(0)
        c_a = np.empty(0, dtype=np.uint8)
    times, counts = concurrency
    return Lanes(lanes, lane_a.astype(np.int64), s_a, e_a, c_a.astype(np.uint8),
                 a_a.astype(np.int64), max(end, 0.0), np.asarray(times, dtype=np.float64) - t0,
                 np.asarray(counts, dtype=np.int64), ratio, incident, lane_marks)


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


def cell_span(t0: np.ndarray, t1: np.ndarray, spc: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last cell of each interval; an interval narrower than a cell gets one."""
    a = np.floor(t0 / spc).astype(np.int64)
    b = np.maximum(np.ceil(t1 / spc).astype(np.int64) - 1, a)
    return a, b


def raster(data: Lanes, spc: float, c0: int, width: int) -> np.ndarray:
    """Codes of cells ``[c0, c0 + width)`` of every lane: shape (lanes, width), uint8.

    Vectorised per code level: a difference array marks where intervals of that code
    open and close, a cumulative sum says which cells they cover, and the maximum over
    levels is the paint order."""
    nl = len(data.lanes)
    out = np.zeros((nl, width), dtype=np.uint8)
    if not nl or not len(data.t0):
        return out
    lo, hi = c0 * spc, (c0 + width) * spc
    hit = (data.t0 < hi) & (data.t1 >= lo)
    if not hit.any():
        return out
    a, b = cell_span(data.t0[hit], data.t1[hit], spc)
    keep = (a < c0 + width) & (b >= c0)
    a = np.clip(a[keep] - c0, 0, width - 1)
    b = np.clip(b[keep] - c0, 0, width - 1)
    lane = data.lane[hit][keep]
    code = data.code[hit][keep]
    stride = width + 1
    for level in np.unique(code):
        m = code == level
        size = nl * stride
        opened = np.bincount(lane[m] * stride + a[m], minlength=size)
        closed = np.bincount(lane[m] * stride + b[m] + 1, minlength=size)
        cover = np.cumsum((opened - closed).reshape(nl, stride), axis=1)[:, :width] > 0
        np.maximum(out, np.where(cover, level, 0).astype(np.uint8), out=out)
    return out


def concurrency_cells(data: Lanes, spc: float, c0: int, width: int) -> np.ndarray:
    """The most actions executing at once within each cell ``[c0, c0 + width)``, so
    a short peak still shows at a coarse zoom."""
    edges = (c0 + np.arange(width)) * spc
    out = analyses.sample_steps(data.conc_t, data.conc_c, edges).astype(np.int64)
    if len(data.conc_t):
        lo, hi = np.searchsorted(data.conc_t, [edges[0], (c0 + width) * spc])
        cells = np.floor(data.conc_t[lo:hi] / spc).astype(np.int64) - c0
        ok = (cells >= 0) & (cells < width)
        np.maximum.at(out, cells[ok], data.conc_c[lo:hi][ok])
    return out


def actions_at(data: Lanes, lane: int, ta: float, tb: float) -> tuple[np.ndarray, np.ndarray]:
    """Action rows executing (first) and waited on in ``lane`` during ``[ta, tb)``,
    each worst status first, then earliest."""
    m = (data.lane == lane) & (data.action >= 0) & (data.t0 < tb) & (data.t1 >= ta)
    idx = np.flatnonzero(m)
    order = np.lexsort((data.t0[idx], -data.code[idx].astype(np.int64)))
    idx = idx[order]
    bars = idx[data.code[idx] != WAIT]
    waits = idx[data.code[idx] == WAIT]
    return data.action[bars], data.action[waits]


def describe(data: Lanes, acts: Table, lane: int, ta: float, tb: float) -> list[str]:
    """What ``lane`` does during ``[ta, tb)``: its worst execution, its wait, or idle
    (log text cleaned, for the readout line)."""
    if data.lanes[lane].kind == "infra":
        return [f"{clean(data.lanes[lane].key, 40)}: {clean(data.lanes[lane].note, 200)}"]
    bars, waits = actions_at(data, lane, ta, tb)
    name = clean(short_id(data.lanes[lane].key), 40)
    parts = []
    if len(bars):
        b = int(bars[0])
        code = STATUS_CODE.get(acts["status"][b], INFLIGHT)
        word = STATUS_WORD[code]
        more = f" (+{len(bars) - 1} more)" if len(bars) > 1 else ""
        parts.append(f"{name}: {clean(acts['action'][b], 40)} {word} "
                     f"exec {fmt_s(float(acts['exec_s'][b]))}{more}{judged(data, b, code)}")
    elif not len(waits):
        parts.append(f"{name}: idle")
    if len(waits):
        w = int(waits[0])
        more = f" (+{len(waits) - 1} more)" if len(waits) > 1 else ""
        parts.append(f"{name} waits on {clean(acts['action'][w], 40)} "
                     f"{fmt_s(float(acts['total_s'][w]))}{more}")
    return parts


def steering_at(data: Lanes, lane: int, ta: float, tb: float) -> list[str]:
    """The steering decisions in ``lane`` during ``[ta, tb)`` (cleaned, for the
    readout): the first one's message, and how many more."""
    m = data.marks
    if m is None or not len(m):
        return []
    hit = np.flatnonzero((m["lane"] == lane) & (m["t"] >= ta) & (m["t"] < tb))
    if not len(hit):
        return []
    more = f" (+{len(hit) - 1} more)" if len(hit) > 1 else ""
    return [f"steering {clean(str(m['kind'][hit[0]]), 20)}: "
            f"{clean(str(m['message'][hit[0]]), 160)}{more}"]


def mark_at(data: Lanes, lane: int, cell: int, spc: float) -> tuple[str, int] | None:
    """``(filter, row)`` of the steering decision in ``lane`` at ``cell``: the filter
    shows every record of its suggestion (``steering.id``), or the record alone."""
    m = data.marks
    if m is None or not len(m):
        return None
    hit = np.flatnonzero((m["lane"] == lane) & (np.floor(m["t"] / spc) == cell))
    if not len(hit):
        return None
    i = int(hit[0])
    row = int(m["row"][i])
    sid, session = m["id"][i], m["session"][i]
    if isinstance(sid, str) and sid and isinstance(session, str) and session:
        return to_text(And((Cmp("steering.session", "=", session),
                            Cmp("steering.id", "=", sid)))), row
    return f"@row={row}", row


def judged(data: Lanes, row: int, code: int) -> str:
    """What the detector said about action ``row`` (``""`` when nothing)."""
    r = float(data.ratio[row]) if row < len(data.ratio) else math.nan
    if not math.isfinite(r):
        return ""
    inc = int(data.incident[row]) if row < len(data.incident) else 0
    what = "possibly hung" if code == INFLIGHT else "slow"
    return f", {what}: {r:.1f}x its median" + (f" (incident #{inc})" if inc else "")


def pick_action(data: Lanes, acts: Table, lane: int, cell: int, spc: float
                ) -> tuple[str, int] | None:
    """``(tag, row)`` of the action in ``lane`` at ``cell`` (its execution first, else a
    call it waits on; the nearest within a few cells when none is exactly there). The
    row is the execution's (or the call's start) record."""
    for reach in (0, 1, 3):
        bars, waits = actions_at(data, lane, (cell - reach) * spc, (cell + 1 + reach) * spc)
        if len(bars) or len(waits):
            break
    else:
        return None
    i = int(bars[0]) if len(bars) else int(waits[0])
    first, other = ("row_exec", "row_start") if len(bars) else ("row_start", "row_exec")
    row = int(acts[first][i]) if acts[first][i] >= 0 else int(acts[other][i])
    return str(acts["tag"][i]), row


def next_start(starts: np.ndarray, mask: np.ndarray, lo: float, hi: float,
               direction: int) -> int | None:
    """Index of the first start at or after ``hi`` (``direction`` > 0), or the last
    one before ``lo``, among ``mask``; None when there is none."""
    idx = np.flatnonzero(mask & ((starts >= hi) if direction > 0 else (starts < lo)))
    if not len(idx):
        return None
    k = np.argmin(starts[idx]) if direction > 0 else np.argmax(starts[idx])
    return int(idx[k])


def nice_step(spc: float, min_cells: int = 10) -> float:
    """A 1-2-5 tick spacing (seconds) at least ``min_cells`` cells apart."""
    target = spc * min_cells
    if target <= 0 or not math.isfinite(target):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(target))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * mag >= target:
            return m * mag
    return 10.0 * mag


def fmt_t(t: float, step: float) -> str:
    """A tick label with as many decimals as the spacing needs."""
    if step >= 60 and abs(t) >= 60:
        m, s = divmod(t, 60)
        return f"{int(m)}m{s:02.0f}" if step % 60 else f"{int(m)}m"
    digits = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{t:.{digits}f}s"


CHUNK = 1024
"""Cells rasterised at once: a pan within a chunk costs nothing."""


class Rasters:
    """Rasters of one ``Lanes`` at one zoom, built a chunk at a time on demand (a deep
    zoom of a long run has millions of virtual cells; only the visited ones are built)."""

    def __init__(self, data: Lanes, spc: float, keep: int = 64) -> None:
        self.data = data
        self.spc = spc
        self.keep = keep
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last: tuple[int, int, tuple[np.ndarray, np.ndarray]] | None = None
        """The last window: every line of one repaint asks for the same one."""

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._chunks.pop(k, None)
        if hit is None:
            hit = (raster(self.data, self.spc, k * CHUNK, CHUNK),
                   concurrency_cells(self.data, self.spc, k * CHUNK, CHUNK))
            if len(self._chunks) >= self.keep:
                self._chunks.pop(next(iter(self._chunks)))
        self._chunks[k] = hit  # most recently used last
        return hit

    def window(self, c0: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes (lanes, width) and concurrency (width,) of cells ``[c0, c0 + width)``."""
        c0 = max(c0, 0)
        if self._last is not None and self._last[:2] == (c0, width):
            return self._last[2]
        ks = range(c0 // CHUNK, (c0 + width - 1) // CHUNK + 1)
        parts = [self._chunk(k) for k in ks]
        codes = np.concatenate([p[0] for p in parts], axis=1)
        conc = np.concatenate([p[1] for p in parts])
        off = c0 - ks[0] * CHUNK
        out = codes[:, off:off + width], conc[off:off + width]
        self._last = (c0, width, out)
        return out


def ruler(c0: int, width: int, spc: float) -> str:
    """The time axis over cells ``[c0, c0 + width)``: a tick and its label every
    1-2-5 step, spaced so the labels never touch."""
    step = nice_step(spc, 12)
    chars = [" "] * width
    k = math.ceil(c0 * spc / step - 1e-9)
    while True:
        t = k * step
        c = math.floor(t / spc + 1e-9) - c0
        if c >= width:
            break
        text = "▏" + fmt_t(t, step)
        for i, ch in enumerate(text):
            if 0 <= c + i < width:
                chars[c + i] = ch
        k += 1
    return "".join(chars)


SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(conc: np.ndarray, top: int) -> str:
    """One block character per cell, scaled to ``top`` (the run's maximum)."""
    if top <= 0:
        return " " * len(conc)
    level = np.ceil(np.clip(conc, 0, top) / top * 8).astype(np.int64)
    return "".join(SPARK[v] for v in level)


def series_cells(t: np.ndarray, v: np.ndarray, spc: float, c0: int, width: int) -> np.ndarray:
    """A sampled series (times since the run start) per cell ``[c0, c0 + width)``: the
    largest sample in the cell, else the last one before it (a step), NaN before the
    first sample and after the last."""
    out = np.full(width, np.nan)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if not len(t):
        return out
    edges = (c0 + np.arange(width)) * spc
    i = np.searchsorted(t, edges, side="right") - 1
    inside = (i >= 0) & (edges <= t[-1])
    out[inside] = v[i[inside]]
    cells = np.floor(t / spc).astype(np.int64) - c0
    m = (cells >= 0) & (cells < width)
    if m.any():
        np.fmax.at(out, cells[m], v[m])
    return out

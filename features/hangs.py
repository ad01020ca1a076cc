"""Hangs: calls and shutdowns that waited far past what is normal, with their evidence.

- **in flight** past the group's limit: ``hung_factor`` (3) x the group's p99 total, at
  least ``hung_min_s`` (1 s) (:meth:`features.anomaly.SlowdownDetector.hung`);
- **cancelled** by its caller (``asyncio.wait_for`` timing out, the caller's status
  ``cancelled``) after waiting past the same limit; in a group with no baseline yet, past
  ``10 x hung_min_s``;
- **process stopped**: a finished run's process whose log just stops (no clean close:
  ``processes().end == "abrupt"``) while calls were executing in it;
- **shutdown**: an agent whose shutdown ('Shutting down agent' -> 'Shutdown agent', or
  to the end of the run when it never finished) took at least ``hung_min_s`` and either
  ``SHUTDOWN_FACTOR`` (10) times the other agents' median shutdown, or ran into an ERROR
  record with a ``TimeoutError`` (a manager's or a driver's wait giving up), or never
  finished in a finished run; and a run whose shutdown after its last call ran into such
  a ``TimeoutError`` after at least ``10 x hung_min_s`` or half the run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from features.baseline import jsonable
from features.incident import HUNG, Incident
from features.table import Table
from features.things import MSG_SHUTTING, msg_rows

if TYPE_CHECKING:
    from features.anomaly import SlowdownDetector
    from features.run import Run

HUNG_FLAG = "possibly hung"
"""The per-call flag of a hung call (the timeline marks these)."""
SHUTDOWN_FACTOR = 10.0


def limit(det: SlowdownDetector, group: tuple[str, str]) -> tuple[float, float]:
    """The group's hang limit and median total (NaN median without a baseline)."""
    b = getattr(det, "baselines_", {}).get(group)
    if b is None or not b.enough:
        return 10 * det.hung_min_s, math.nan
    p99 = b.p99.get("total_s", b.p99.get("exec_s", math.nan))
    med = b.median.get("total_s", b.median.get("exec_s", math.nan))
    return max(det.hung_factor * p99, det.hung_min_s), med


def mark(flags: Table, det: SlowdownDetector, run: Run | None) -> Table:
    """``flags`` with calls cancelled after a long wait, and calls executing in a process
    whose log stopped, flagged hung (``hung_how``, ``hung_file``, ``elapsed_s``,
    ``hung_threshold_s``)."""
    n = len(flags)
    flag = np.array(flags["flag"], dtype=object)
    if "hung_how" in flags:
        how = np.array(flags["hung_how"], dtype=object)
    else:
        how = np.full(n, None, dtype=object)
        how[flag == HUNG_FLAG] = "in flight"
    where = np.full(n, None, dtype=object)
    elapsed = np.array(flags["elapsed_s"], dtype=np.float64)
    thr = np.array(flags["hung_threshold_s"], dtype=np.float64)
    ratio = np.array(flags["ratio"], dtype=np.float64)
    base = np.array(flags["baseline_s"], dtype=np.float64)
    for i in np.flatnonzero(flags["status"] == "cancelled").tolist():
        waited = float(flags["total_s"][i])
        if not math.isfinite(waited):
            continue
        lim, med = limit(det, (str(flags["agent_class"][i]), str(flags["action"][i])))
        if waited >= lim:
            flag[i], how[i], elapsed[i], thr[i] = HUNG_FLAG, "cancelled", waited, lim
            ratio[i], base[i] = waited / med, med
    if run is not None and n:
        procs = run.processes()
        stopped = {str(f): float(t) for f, e, t in zip(procs["file"].tolist(),
                                                        procs["end"].tolist(),
                                                        procs["t_last"].tolist(),
                                                        strict=True) if e == "abrupt"}
        if stopped:
            acts = run.actions()
            file_of = dict(zip(acts["tag"].tolist(), acts["agent_file"].tolist(),
                               strict=True))
            open_ = dict(zip(acts["tag"].tolist(), np.isnan(acts["t_exec_end"]).tolist(),
                             strict=True))
            for i, tag in enumerate(flags["tag"].tolist()):
                f = file_of.get(tag)
                if f in stopped and open_.get(tag) and flags["status"][i] in (
                        "orphaned", "in flight"):
                    flag[i], how[i], where[i] = HUNG_FLAG, "process stopped", f
                    elapsed[i] = stopped[str(f)] - float(flags["t_start"][i])
    return (flags.with_column("flag", flag).with_column("hung_how", how)
            .with_column("hung_file", where).with_column("elapsed_s", elapsed)
            .with_column("hung_threshold_s", thr).with_column("ratio", ratio)
            .with_column("baseline_s", base))


def detail(flags: Table, rows: list[int], t0: float) -> dict[str, Any]:
    """The numbers of a hung incident of ``rows`` (one group, one way of hanging)."""
    idx = np.array(rows)
    how = str(flags["hung_how"][idx[0]])
    el = flags["elapsed_s"][idx]
    out: dict[str, Any] = {"how": how,
                           "waited_s": float(np.nanmax(el)) if np.isfinite(el).any() else None}
    thr = flags["hung_threshold_s"][idx]
    if np.isfinite(thr).any():
        out["limit_s"] = float(np.nanmin(thr))
    base = flags["baseline_s"][idx]
    if np.isfinite(base).any():
        out["median_s"] = float(np.nanmedian(base))
    if how == "process stopped":
        f = str(flags["hung_file"][idx[0]])
        out["file"] = f[:8]
        t_start = float(flags["t_start"][idx[0]])
        out["stopped_s"] = t_start + float(el[0]) - t0 if math.isfinite(el[0]) else None
    return jsonable(out)


def shutdowns(run: Run, now: float, live: bool, hung_min_s: float = 1.0) -> list[Incident]:
    """Agents (by class) whose shutdown hung, and a run whose shutdown ran into a
    TimeoutError; numbered 0. Needs no fitted detector (the run catalog asks it)."""
    ev = run.events()
    ag = run.agents()
    out: list[Incident] = []
    if not ev.n:
        return out
    wall = max(ev.t1 - ev.t0, 1e-9)
    tout = timeouts(run)
    t_out = ev.created[tout] if len(tout) else np.zeros(0)
    t_sd = np.asarray(ag["t_shutting_down"], dtype=np.float64) if len(ag) else np.zeros(0)
    t_end = np.asarray(ag["t_shutdown"], dtype=np.float64) if len(ag) else np.zeros(0)
    finished = np.isfinite(t_end)
    stop = np.where(finished, t_end, now if live else ev.t1)
    dur = np.where(np.isfinite(t_sd), stop - t_sd, np.nan)
    sd_row = _shutting_rows(run)
    hung: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i in np.flatnonzero(np.isfinite(dur)).tolist():
        d = float(dur[i])
        if d < hung_min_s:
            continue
        others = dur[np.isfinite(dur) & finished & (np.arange(len(dur)) != i)]
        med = float(np.median(others)) if len(others) else math.nan
        hit = np.flatnonzero((t_out >= t_sd[i]) & ((t_out <= t_end[i] + 1.0) | ~finished[i]))
        many = math.isfinite(med) and d >= SHUTDOWN_FACTOR * max(med, 1e-3)
        never = not finished[i] and not live
        if not (len(hit) or many or never):
            continue
        rows = [r for r in (sd_row.get(str(ag["agent_id"][i]), -1), int(ag["row_shutdown"][i]))
                if r >= 0] + [int(tout[j]) for j in hit[:1]]
        hung.setdefault(str(ag["class"][i]), []).append((i, {
            "how": "shutdown", "waited_s": d, "share": d / wall,
            "others_s": med if many else None, "timeout": bool(len(hit)),
            "finished": bool(finished[i]), "rows": rows}))
    for cls, items in hung.items():
        worst = max(items, key=lambda it: it[1]["waited_s"])[1]
        idx = [i for i, _ in items]
        rows = [r for _, it in sorted(items, key=lambda it: -it[1]["waited_s"])
                for r in it.pop("rows")]
        out.append(Incident(
            id=0, kind=HUNG, group=f"{cls} shutdown", agent_class=cls, action="shutdown",
            start=float(np.min(t_sd[idx])), end=float(np.max(stop[idx])), count=len(idx),
            max_ratio=math.nan, excess_s=float(np.sum(dur[idx])), severity="high",
            tags=[], agents=sorted(str(ag["agent_id"][i]) for i in idx), evidence_rows=rows,
            detail=jsonable({**worst, "agents": len(idx)})))
    if not out and len(tout):
        out += _run_shutdown(run, tout, wall)
    return out


def timeouts(run: Run) -> np.ndarray:
    """Rows of ERROR records (or worse) about a ``TimeoutError``, in time order: only the
    few error records are read, so a live watcher can ask on every poll."""
    ev = run.events()
    err = np.flatnonzero(ev.ints["levelno"] >= 40)
    if not len(err):
        return err
    recs = ev.records(err.tolist())
    hit = np.array([rec is not None and ("TimeoutError" in str(rec.get("exc_text", ""))
                                         or "TimeoutError" in str(rec.get("message", "")))
                    for rec in recs], dtype=bool)
    rows = err[hit]
    return rows[np.argsort(ev.created[rows], kind="stable")]


def _shutting_rows(run: Run) -> dict[str, int]:
    """Agent -> row of its first 'Shutting down agent' record."""
    ev = run.events()
    rows = msg_rows(ev, MSG_SHUTTING)
    codes, vals = ev.cat("academy.agent_id")
    out: dict[str, int] = {}
    for r in rows[np.argsort(ev.created[rows], kind="stable")].tolist():
        if codes[r] >= 0:
            out.setdefault(str(vals[codes[r]]), r)
    return out


def _run_shutdown(run: Run, tout: np.ndarray, wall: float) -> list[Incident]:
    """The run's shutdown, from its last call to a TimeoutError, when it took long."""
    ev = run.events()
    acts = run.actions()
    if not len(acts):
        return []
    ends = np.fmax(acts["t_end"], acts["t_exec_end"])
    if not np.isfinite(ends).any():
        return []
    last = float(np.nanmax(ends))
    after = tout[ev.created[tout] > last]
    if not len(after):
        return []
    r = int(after[0])
    d = float(ev.created[r]) - last
    if d < 10.0 and d < 0.5 * wall:
        return []
    return [Incident(
        id=0, kind=HUNG, group="run shutdown", agent_class="run", action="shutdown",
        start=last, end=float(ev.created[r]), count=1, max_ratio=math.nan, excess_s=d,
        severity="high", tags=[], agents=[], evidence_rows=[r],
        detail=jsonable({"how": "shutdown", "waited_s": d, "share": d / wall,
                         "timeout": True, "run": True}))]


__all__ = ["HUNG_FLAG", "detail", "limit", "mark", "shutdowns", "timeouts"]

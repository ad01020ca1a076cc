"""Judged calls grouped into incidents: a run of slow calls of one group is one slowdown,
and the hung calls of a group are one incident per way of hanging.

A slowdown incident is a run of slow calls of one group (agent class, action) in start
order, allowing ``max_gap`` (:data:`MAX_GAP`, 1) normal call between two slow ones: one
slowdown seen across two generators that interleave, or with one lucky call inside, is one
incident. Kept apart from :mod:`features.detect`, which decides what is slow or hung and
adds the level shifts, drift and shutdown hangs found elsewhere.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from features import hangs
from features.baseline import jsonable
from features.hangs import HUNG_FLAG
from features.incident import HUNG, Incident, severity

if TYPE_CHECKING:
    from features.table import Table

MAX_GAP = 1
"""Normal calls allowed between two slow calls of one slowdown incident."""


def incidents(flags: Table, max_gap: int = MAX_GAP, t0: float = math.nan
              ) -> list[Incident]:
    """Group the slow calls of ``flags`` (from :meth:`SlowdownDetector.assess`) into
    slowdown incidents, and the hung ones into one incident per group and way of hanging
    (in flight, cancelled, process stopped); numbered by start."""
    out: list[Incident] = []
    if not len(flags):
        return out
    order = np.argsort(np.nan_to_num(flags["t_start"], nan=np.inf), kind="stable")
    by_group: dict[str, list[int]] = {}
    for i in order.tolist():
        by_group.setdefault(flags["group"][i], []).append(i)
    how = flags["hung_how"] if "hung_how" in flags else np.full(len(flags), None)
    where = flags["hung_file"] if "hung_file" in flags else np.full(len(flags), None)
    runs: list[tuple[str, list[int]]] = []
    for rows in by_group.values():
        current: list[int] = []
        gap = 0
        for i in rows:
            f = flags["flag"][i]
            if f == "slow":
                current.append(i)
                gap = 0
            elif f == "ok" and current:
                gap += 1
                if gap > max_gap:
                    runs.append(("slowdown", current))
                    current, gap = [], 0
        if current:
            runs.append(("slowdown", current))
        hung: dict[tuple[Any, Any], list[int]] = {}
        for i in rows:
            if flags["flag"][i] == HUNG_FLAG:
                hung.setdefault((how[i] or "in flight", where[i]), []).append(i)
        runs += [(HUNG, r) for r in hung.values()]
    runs.sort(key=lambda r: float(flags["t_start"][r[1][0]]))
    for k, (kind, rows) in enumerate(runs, start=1):
        out.append(_incident(flags, k, kind, rows, t0))
    return out


def _incident(flags: Table, k: int, kind: str, rows: list[int], t0: float) -> Incident:
    idx = np.array(rows)
    ratio = flags["ratio"][idx]
    excess = flags["excess_s"][idx]
    ends = flags["t_done"][idx]
    end = float(np.nanmax(ends)) if np.isfinite(ends).any() else float(
        np.nanmax(flags["t_start"][idx] + np.nan_to_num(flags["elapsed_s"][idx]
                                                        if "elapsed_s" in flags else 0.0)))
    max_ratio = float(np.nanmax(ratio)) if np.isfinite(ratio).any() else math.nan
    ev_rows = sorted({int(r) for c in ("row_start", "row_exec", "row_end")
                      for r in flags[c][idx] if r >= 0})
    things = [{c: jsonable(flags[c][i]) if c in flags else None
               for c in ("tag", "agent_id", "status", "flag", "decided_on", "duration_s",
                         "baseline_s", "ratio", "z", "excess_s", "elapsed_s", "mv_score")}
              for i in rows]
    return Incident(
        id=k, kind=kind, group=str(flags["group"][rows[0]]),
        agent_class=str(flags["agent_class"][rows[0]]), action=str(flags["action"][rows[0]]),
        start=float(flags["t_start"][rows[0]]), end=end, count=len(rows),
        max_ratio=max_ratio, excess_s=float(np.nansum(excess)),
        severity="high" if kind == HUNG else severity(
            max_ratio if math.isfinite(max_ratio) else 0.0, len(rows)),
        tags=[str(t) for t in flags["tag"][idx]],
        agents=sorted({str(a) for a in flags["agent_id"][idx] if a is not None}),
        evidence_rows=ev_rows, things=things,
        detail=hangs.detail(flags, rows, t0) if kind == HUNG else {})

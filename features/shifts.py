"""Level shifts, speed-ups and drift as incidents, and each call judged against the level
of its own stretch of calls (:mod:`features.changepoint` on every series).

A *series* is the successful calls of one (agent class, action) on one agent, in start
order, judged on the duration the detector decides on (``exec_s``, else ``total_s``). A
group whose agents each have too few calls to cut (fewer than ``2 * MIN_SEG``) is one
series over all its agents (many short-lived agents).

Where a series changed, its calls are judged again against the baseline of their own
regime (the median and robust spread of the regime's calls, as
:class:`features.anomaly.SlowdownDetector` forms a group's; for a drift, the line): a run
that got faster half way is not a slowdown of its first half against the fast level, and
a spike on top of a new level is still a spike. Calls of a short excursion (a long burst
that came back) stay out of their regime's baseline and are judged against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.baseline import jsonable, robust
from features.changepoint import MIN_SEG, Analysis, Change, analyse
from features.incident import Incident, severity
from features.table import Table

if TYPE_CHECKING:
    from features.anomaly import SlowdownDetector

SeriesKey = tuple[str, str, "str | None"]
"""(agent class, action, agent id or None for a whole group)."""
JUDGED = ("ok", "slow")
"""Flags judged again against a regime (warm-up calls stay warm-up)."""


@dataclass
class Shift:
    """One change of one series."""

    key: SeriesKey
    change: Change
    rows: np.ndarray
    """Rows of the flags table of the series, in start order."""
    analysis: Analysis


def series(flags: Table) -> dict[SeriesKey, np.ndarray]:
    """Rows of ``flags`` per series, in start order (see the module docstring)."""
    if not len(flags) or "duration_s" not in flags:
        return {}
    ok = np.flatnonzero((flags["status"] == "ok") & np.isfinite(flags["duration_s"])
                        & np.isfinite(flags["t_start"]))
    by: dict[tuple[str, str], dict[Any, list[int]]] = {}
    for i, c, a, ag in zip(ok.tolist(), flags["agent_class"][ok].tolist(),
                           flags["action"][ok].tolist(), flags["agent_id"][ok].tolist(),
                           strict=True):
        by.setdefault((str(c), str(a)), {}).setdefault(ag, []).append(i)
    out: dict[SeriesKey, np.ndarray] = {}
    t = flags["t_start"]
    for (c, a), agents in by.items():
        long = {ag: rows for ag, rows in agents.items() if len(rows) >= 2 * MIN_SEG}
        if long:
            parts = {(c, a, None if ag is None else str(ag)): rows for ag, rows in long.items()}
        else:
            parts = {(c, a, None): [r for rows in agents.values() for r in rows]}
        for key, rows in parts.items():
            if len(rows) >= 2 * MIN_SEG:
                idx = np.array(rows, dtype=np.int64)
                out[key] = idx[np.argsort(t[idx], kind="stable")]
    return out


def analyse_flags(flags: Table) -> dict[SeriesKey, tuple[np.ndarray, Analysis]]:
    """Every series of ``flags`` and its analysis."""
    return {key: (rows, analyse(flags["duration_s"][rows]))
            for key, rows in series(flags).items()}


def _level(det: SlowdownDetector, x: np.ndarray) -> tuple[float, float]:
    """Median and spread of a regime, robustly (calls the first pass calls slow are left
    out, as in a group's baseline)."""
    med, scale, _, n = robust(x)
    if n >= MIN_SEG:
        slow = det._is_slow(x, med, scale)
        if (~slow).sum() >= MIN_SEG:
            med, scale, _, _ = robust(x[~slow])
    return med, scale


def rejudge(flags: Table, det: SlowdownDetector,
            analyses: dict[SeriesKey, tuple[np.ndarray, Analysis]]) -> Table:
    """``flags`` with the calls of every changed series judged against their regime."""
    cols = {c: np.array(flags[c], copy=True) for c in
            ("flag", "ratio", "z", "excess_s", "baseline_s", "scale_s")}
    for key, (rows, a) in analyses.items():
        if not a.changed:
            continue
        d = flags["duration_s"][rows]
        exp = np.full(len(rows), np.nan)
        scale = np.full(len(rows), np.nan)
        for r in np.unique(a.regime).tolist():
            mine = a.regime == r
            base = mine & ~a.excursion
            trend = a.trend_s[mine]
            if np.isfinite(trend).all():
                rel, sc, _, _ = robust(d[base] / a.trend_s[base])
                exp[mine] = a.trend_s[mine] * rel
                scale[mine] = np.maximum(sc * a.trend_s[mine], 1e-3)
            else:
                exp[mine], scale[mine] = _level(det, d[base])
        # Every judged call of the series' agent(s) and group, by where it started.
        who = (flags["agent_class"] == key[0]) & (flags["action"] == key[1])
        if key[2] is not None:
            who &= flags["agent_id"] == key[2]
        judge = np.flatnonzero(who & np.isin(flags["flag"], JUDGED)
                               & np.isfinite(flags["duration_s"]))
        pos = np.clip(np.searchsorted(flags["t_start"][rows], flags["t_start"][judge],
                                      side="right") - 1, 0, len(rows) - 1)
        x, e, s = flags["duration_s"][judge], exp[pos], scale[pos]
        cols["ratio"][judge] = x / e
        cols["z"][judge] = (x - e) / s
        cols["excess_s"][judge] = x - e
        cols["baseline_s"][judge] = e
        cols["scale_s"][judge] = s
        cols["flag"][judge] = np.where(det._is_slow(x, e, s), "slow", "ok")
    out = flags
    for c, v in cols.items():
        out = out.with_column(c, v)
    return out


def shifts(analyses: dict[SeriesKey, tuple[np.ndarray, Analysis]]) -> list[Shift]:
    """Every change of every series."""
    return [Shift(key, c, rows, a) for key, (rows, a) in analyses.items() for c in a.changes]


def _merge(found: list[Shift], flags: Table) -> list[list[Shift]]:
    """Changes of one group, one kind, at about the same time on several agents (one cause,
    seen on each) grouped together."""
    t = flags["t_start"]
    out: list[list[Shift]] = []
    for s in sorted(found, key=lambda s: float(t[s.rows[s.change.at]])):
        at = float(t[s.rows[s.change.at]])
        step = float(np.median(np.diff(t[s.rows]))) if len(s.rows) > 1 else 0.0
        for grp in out:
            g = grp[0]
            if (g.key[:2] == s.key[:2] and g.change.kind == s.change.kind
                    and s.key[2] not in {x.key[2] for x in grp}
                    and abs(float(t[g.rows[g.change.at]]) - at) <= 2 * step):
                grp.append(s)
                break
        else:
            out.append([s])
    return out


def incidents(flags: Table, found: list[Shift], t0: float
              ) -> list[tuple[Incident, list[Shift]]]:
    """One incident per change (or per change seen on several agents at once), numbered
    0, with the changes it is made of; ``t0`` is the run's start, for the words."""
    return [(_incident(flags, grp, t0), grp) for grp in _merge(found, flags)]


def _incident(flags: Table, grp: list[Shift], t0: float) -> Incident:
    first = grp[0]
    c = first.change
    tags: list[str] = []
    things: list[dict[str, Any]] = []
    excess = 0.0
    rows_after: list[int] = []
    for s in grp:
        idx = s.rows[s.change.at:s.change.until]
        rows_after += idx.tolist()
        x = flags["duration_s"][idx]
        ref = np.full(len(idx), s.change.before_s)
        excess += float(np.nansum(x - ref))
        for i, xi, r in zip(idx.tolist(), x.tolist(), ref.tolist(), strict=True):
            things.append({"tag": jsonable(flags["tag"][i]),
                           "agent_id": jsonable(flags["agent_id"][i]),
                           "status": jsonable(flags["status"][i]),
                           "flag": jsonable(flags["flag"][i]),
                           "duration_s": xi, "baseline_s": r, "ratio": xi / r,
                           "excess_s": xi - r})
    order = np.argsort(flags["t_start"][rows_after], kind="stable")
    rows_after = [rows_after[i] for i in order]
    things = [things[i] for i in order]
    tags = [str(flags["tag"][i]) for i in rows_after]
    lead = first.rows[c.at]
    before = first.rows[c.at - 1] if c.at > 0 else -1
    ev: list[int] = []
    for i in (lead, before):
        if i >= 0:
            ev += [int(r) for r in (flags["row_start"][i], flags["row_exec"][i],
                                    flags["row_end"][i]) if r >= 0]
    ratio = float(np.median([s.change.ratio for s in grp]))
    before_s = float(np.median([s.change.before_s for s in grp]))
    after_s = float(np.median([s.change.after_s for s in grp]))
    detail: dict[str, Any] = {
        "at_call": int(flags["call_index"][lead]),
        "at_s": float(flags["t_start"][lead]) - t0,
        "before_s": before_s, "after_s": after_s, "ratio": ratio,
        "calls": len(tags), "calls_before": int(c.at),
        "ended": bool(c.ended), "p_value": float(c.p_value),
        "series": [list(s.key) for s in grp],
    }
    if c.ended and c.until < len(first.rows):
        back = first.rows[c.until]
        detail["until_call"] = int(flags["call_index"][back])
        detail["until_s"] = float(flags["t_start"][back]) - t0
    sev = "info" if c.kind == "speedup" or (c.kind == "drift" and ratio < 1) else \
        severity(ratio, len(tags))
    ends = flags["t_done"][rows_after]
    return Incident(
        id=0, kind=c.kind, group=f"{first.key[0]}.{first.key[1]}",
        agent_class=first.key[0], action=first.key[1],
        start=float(flags["t_start"][lead]),
        end=float(np.nanmax(ends)) if np.isfinite(ends).any() else float(
            flags["t_start"][lead]),
        count=len(tags), max_ratio=ratio, excess_s=excess, severity=sev, tags=tags,
        agents=sorted({str(a) for a in flags["agent_id"][rows_after] if a is not None}),
        evidence_rows=ev, things=things, detail=jsonable(detail))


def before_after(flags: Table, s: Shift, k: int = 10) -> tuple[list[str], list[str]]:
    """Tags of up to ``k`` calls just before the change and ``k`` just after it."""
    c = s.change
    lo = max(0, c.at - k)
    hi = min(c.until, c.at + k)
    return ([str(t) for t in flags["tag"][s.rows[lo:c.at]]],
            [str(t) for t in flags["tag"][s.rows[c.at:hi]]])


def window(flags: Table, s: Shift) -> tuple[float, float]:
    """Times between which whatever caused the change happened: from the start of the
    call two before it to the end of its first call at the new level."""
    c = s.change
    lo_row = s.rows[max(0, c.at - 2)]
    lead = s.rows[c.at]
    t_end = flags["t_done"][lead]
    hi = float(t_end) if math.isfinite(t_end) else float(flags["t_start"][lead])
    return float(flags["t_start"][lo_row]), hi


__all__ = ["SeriesKey", "Shift", "analyse_flags", "before_after", "incidents", "rejudge",
           "series", "shifts", "window"]

"""Slowdown incidents of a run, finished or live, from :class:`SlowdownDetector` flags.

>>> from features.detect import detect
>>> result = detect(run)                 # fit on the whole run, judge every action
>>> for inc in result.incidents: print(inc.describe())
>>> result.as_dict()                     # JSON-ready

Live: ``live = LiveDetector()``; after each ``run.refresh()`` call ``live.update(run)``:
the actions that completed since are judged at once against the baseline learnt so far
(then join it if not slow); ``live.result(run)`` gives incidents and hung calls now.

An incident is a run of slow calls of one group (agent class, action) in start order,
allowing ``max_gap`` (1) normal call between two slow ones: one slowdown seen across two
generators that interleave, or with one lucky call inside, is one incident.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from features.anomaly import EMPTY_ACTIONS, SlowdownDetector
from features.baseline import group_name, jsonable
from features.featurize import DONE, ActionFeaturizer, Features, action_features
from features.table import Table

if TYPE_CHECKING:
    from features.baseline import GroupBaseline
    from features.run import Run

HUNG = "possibly hung"


@dataclass
class Incident:
    """Consecutive slow (or hung) calls of one group."""

    id: int
    kind: str
    """``slowdown`` or ``possibly hung``."""
    group: str
    agent_class: str
    action: str
    start: float
    """Start of the first call (seconds since the epoch)."""
    end: float
    """End of the last call (for hung calls: the time judged at)."""
    count: int
    max_ratio: float
    """Largest ratio of a call's duration (for hung calls: time in flight so far) to the
    group's median."""
    excess_s: float
    """Seconds the calls took beyond the group's median, summed."""
    severity: str
    """``high`` (5x or more, or 5+ calls), ``medium`` (3.5x, or 3+ calls) or ``low``."""
    tags: list[str]
    agents: list[str]
    evidence_rows: list[int]
    """Event rows of the calls' start, execute_start and end records."""
    things: list[dict[str, Any]] = field(default_factory=list)
    """Per call: tag, agent, status, duration, baseline, ratio, z, mv_score."""

    def describe(self) -> str:
        """One sentence for people."""
        what = "slow call" if self.kind == "slowdown" else "call possibly hung"
        plural = "s" if self.count > 1 and self.kind == "slowdown" else ""
        return (f"#{self.id} {self.severity}: {self.count} {what}{plural} of {self.group}, "
                f"up to {self.max_ratio:.1f}x its median, {self.excess_s:.3f}s extra "
                f"over {self.end - self.start:.3f}s")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        d = asdict(self)
        d["description"] = self.describe()
        return jsonable(d)


@dataclass
class DetectionResult:
    """What :func:`detect` (or :meth:`LiveDetector.result`) found."""

    incidents: list[Incident]
    baselines: list[GroupBaseline]
    flags: Table
    """Per action: flag (slow, ok, warm-up, not enough data, in flight, possibly hung,
    no duration), ratio, z, excess, per-duration ratios, mv_score, incident id."""
    notes: list[str]
    live: bool
    now: float

    @property
    def too_little_data(self) -> list[str]:
        """Groups that have no baseline yet (nothing in them is judged)."""
        return [b.group for b in self.baselines if not b.enough]

    def lines(self) -> list[str]:
        """A plain summary."""
        if not self.incidents:
            out = ["No slowdowns found."]
        else:
            out = [f"{len(self.incidents)} incident(s):"]
            out += ["  " + i.describe() for i in self.incidents]
        return out + [f"Note: {n}" for n in self.notes]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``orjson.dumps(result.as_dict())``)."""
        return {
            "incidents": [i.as_dict() for i in self.incidents],
            "baselines": [b.as_dict() for b in self.baselines],
            "flags": jsonable(self.flags.records()),
            "notes": list(self.notes),
            "too_little_data": self.too_little_data,
            "live": self.live,
            "now": jsonable(self.now),
        }


def _severity(max_ratio: float, count: int) -> str:
    if max_ratio >= 5 or count >= 5:
        return "high"
    if max_ratio >= 3.5 or count >= 3:
        return "medium"
    return "low"


def incidents(flags: Table, max_gap: int = 1) -> list[Incident]:
    """Group the slow calls of ``flags`` (from :meth:`SlowdownDetector.assess`) into
    incidents, and the possibly hung ones into one incident per group."""
    out: list[Incident] = []
    if not len(flags):
        return out
    order = np.argsort(np.nan_to_num(flags["t_start"], nan=np.inf), kind="stable")
    by_group: dict[str, list[int]] = {}
    for i in order.tolist():
        by_group.setdefault(flags["group"][i], []).append(i)
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
        hung = [i for i in rows if flags["flag"][i] == HUNG]
        if hung:
            runs.append((HUNG, hung))
    runs.sort(key=lambda r: float(flags["t_start"][r[1][0]]))
    for k, (kind, rows) in enumerate(runs, start=1):
        out.append(_incident(flags, k, kind, rows))
    return out


def _incident(flags: Table, k: int, kind: str, rows: list[int]) -> Incident:
    idx = np.array(rows)
    ratio = flags["ratio"][idx]
    excess = flags["excess_s"][idx]
    ends = flags["t_done"][idx]
    end = float(np.nanmax(ends)) if np.isfinite(ends).any() else float(
        np.nanmax(flags["t_start"][idx] + np.nan_to_num(flags["elapsed_s"][idx])))
    max_ratio = float(np.nanmax(ratio)) if np.isfinite(ratio).any() else math.nan
    ev_rows = sorted({int(r) for c in ("row_start", "row_exec", "row_end")
                      for r in flags[c][idx] if r >= 0})
    things = [{c: jsonable(flags[c][i]) for c in ("tag", "agent_id", "status", "flag",
                                                "decided_on", "baseline_s", "ratio", "z",
                                                "excess_s", "elapsed_s", "mv_score")}
              for i in rows]
    return Incident(
        id=k, kind=kind, group=str(flags["group"][rows[0]]),
        agent_class=str(flags["agent_class"][rows[0]]), action=str(flags["action"][rows[0]]),
        start=float(flags["t_start"][rows[0]]), end=end, count=len(rows),
        max_ratio=max_ratio, excess_s=float(np.nansum(excess)),
        severity=_severity(max_ratio if math.isfinite(max_ratio) else 0.0, len(rows)),
        tags=[str(t) for t in flags["tag"][idx]],
        agents=sorted({str(a) for a in flags["agent_id"][idx] if a is not None}),
        evidence_rows=ev_rows, things=things)


def _finish(det: SlowdownDetector, flags: Table, inflight: Features | None, now: float,
            live: bool, max_gap: int) -> DetectionResult:
    """Judge the ``inflight`` calls for hanging at ``now``, add them to ``flags``, group
    the incidents and write the notes."""
    notes: list[str] = []
    n_done = len(flags)
    if inflight is not None and len(inflight.table):
        extra = det.assess(inflight)
        hung, thr = det.hung(inflight, now)
        flag = np.array(extra["flag"], dtype=object)
        flag[hung] = HUNG
        elapsed = now - np.asarray(inflight.table["t_start"], dtype=np.float64)
        # How long it has been in flight, against the group's typical call.
        base = getattr(det, "baselines_", {})
        med = np.array([base[g].median.get("total_s", math.nan) if g in base else math.nan
                        for g in zip(extra["agent_class"], extra["action"], strict=True)])
        extra = extra.with_column("flag", flag).with_column("elapsed_s", elapsed) \
            .with_column("hung_threshold_s", thr) \
            .with_column("ratio", np.where(hung, elapsed / med, np.nan)) \
            .with_column("excess_s", np.where(hung, elapsed - med, np.nan)) \
            .with_column("baseline_s", np.where(hung, med, np.nan))
        if np.isnan(thr).any():
            notes.append(f"{int(np.isnan(thr).sum())} call(s) in flight in groups without "
                         "a baseline cannot be judged for hanging")
    else:
        extra = None
    flags = flags.with_column("elapsed_s", np.full(n_done, np.nan)) \
        .with_column("hung_threshold_s", np.full(n_done, np.nan))
    if extra is not None:
        flags = Table({c: np.concatenate([flags[c], extra[c]]) for c in flags.columns},
                      name=flags.name)
    found = incidents(flags, max_gap)
    inc_of = np.zeros(len(flags), dtype=np.int64)
    pos = {t: i for i, t in enumerate(flags["tag"].tolist())}
    for inc in found:
        for t in inc.tags:
            inc_of[pos[t]] = inc.id
    flags = flags.with_column("incident", inc_of)
    baselines = list(getattr(det, "baselines_", {}).values())
    for b in baselines:
        if not b.enough:
            notes.append(f"{b.group}: not enough data (n={b.n}: {b.n_baseline} usable "
                         f"past warm-up and errors, {det.min_n} needed)")
    notes.extend(getattr(det, "notes_", []))
    return DetectionResult(found, baselines, flags, notes, live, now)


def _split(feats: Features) -> tuple[Features, Features]:
    """(completed, in flight) rows of ``feats``."""
    st = feats.table["status"]
    done = np.flatnonzero(np.isin(st, DONE)) if len(st) else np.zeros(0, np.int64)
    fly = np.flatnonzero(st == "in flight") if len(st) else np.zeros(0, np.int64)
    return (Features(feats.table.take(done), feats.X[done], feats.names),
            Features(feats.table.take(fly), feats.X[fly], feats.names))


def _now(run: Run, now: float | None) -> tuple[float, bool]:
    live = run.live
    if now is not None:
        return now, live
    t1 = run.events().t1
    # A hung run writes nothing, so its last event stops moving: judge a live run by the
    # clock. A finished run is judged as of its last event.
    return (max(t1, time.time()) if live else t1), live


def detect(run: Run, detector: SlowdownDetector | None = None, now: float | None = None,
           max_gap: int = 1) -> DetectionResult:
    """Fit a detector (a clone of ``detector``, default settings otherwise) on all the
    completed actions of ``run`` and judge every action; in-flight calls are judged for
    hanging at ``now`` (default: the clock for a live run, the last event otherwise)."""
    done, inflight = _split(action_features(run))
    det = clone(detector) if detector is not None else SlowdownDetector()
    det.fit(done)
    now, live = _now(run, now)
    return _finish(det, det.assess(done), inflight, now, live, max_gap)


class LiveDetector:
    """Judge actions as they complete, against a baseline that keeps learning.

    ``detector`` may be fitted already (warm start from an earlier run of the same
    workflow); otherwise each group's baseline forms once it has ``min_n`` calls, and the
    calls seen before that are judged then, retroactively."""

    def __init__(self, detector: SlowdownDetector | None = None, max_gap: int = 1) -> None:
        self.detector = detector if detector is not None else SlowdownDetector()
        self.max_gap = max_gap
        self.featurizer = ActionFeaturizer()
        self.completed = 0
        """Calls judged so far."""
        self.position: dict[str, int] = {}
        """Tag -> how many calls had completed when it completed (itself included)."""
        self.flagged_at: dict[str, int] = {}
        """Tag -> how many calls had completed when it was first judged slow."""
        self._rows: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, list[Features]] = {}
        self._template: Table | None = None

    def update(self, run: Run) -> list[str]:
        """Judge the actions of ``run`` (refreshed by the caller) that completed since the
        last call; return the tags newly judged slow."""
        return self.update_features(self.featurizer.update(run))

    def update_features(self, feats: Features) -> list[str]:
        """Judge these completed calls (in completion order); return the tags newly
        judged slow (including earlier calls judged now that their group has a
        baseline)."""
        t = feats.table
        if not len(t):
            return []
        det = self.detector
        ready = {g for g, b in getattr(det, "baselines_", {}).items() if b.enough}
        flags = det.assess(feats)
        det.partial_fit(feats, flags=flags["flag"])
        newly: list[str] = []
        for i, tag in enumerate(t["tag"].tolist()):
            self.completed += 1
            self.position[tag] = self.completed
            self._keep(flags, i, newly)
            if flags["flag"][i] == "not enough data":
                self._pending.setdefault(flags["group"][i], []).append(
                    Features(t.take([i]), feats.X[[i]], feats.names))
        now_ready = {g for g, b in det.baselines_.items() if b.enough} - ready
        for g in now_ready:
            for one in self._pending.pop(group_name(g), []):
                self._keep(det.assess(one), 0, newly)
        return newly

    def _keep(self, flags: Table, i: int, newly: list[str]) -> None:
        if self._template is None:
            self._template = flags
        tag = flags["tag"][i]
        self._rows[tag] = {c: flags[c][i] for c in flags.columns}
        if flags["flag"][i] == "slow" and tag not in self.flagged_at:
            self.flagged_at[tag] = self.completed
            newly.append(tag)

    def flags(self) -> Table:
        """Every judged call so far, in completion order."""
        tpl = self._template
        if tpl is None:
            return self.detector.assess(Features(EMPTY_ACTIONS, np.empty((0, 0)), []))
        rows = list(self._rows.values())
        cols: dict[str, np.ndarray] = {}
        for c in tpl.columns:
            arr = np.empty(len(rows), dtype=tpl[c].dtype)
            arr[:] = [r[c] for r in rows]
            cols[c] = arr
        return Table(cols, name="action_flags")

    def result(self, run: Run | None = None, now: float | None = None) -> DetectionResult:
        """Incidents so far; with ``run``, also its in-flight calls judged for hanging."""
        inflight = None
        live = False
        when = time.time() if now is None else now
        if run is not None:
            when, live = _now(run, now)
            inflight = _split(action_features(run))[1]
        return _finish(self.detector, self.flags(), inflight, when, live, self.max_gap)


__all__ = ["DetectionResult", "Incident", "LiveDetector", "detect", "incidents"]

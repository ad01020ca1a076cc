"""The steering trail of a run, from verified records only (SECURITY.md R6, R8).

A steering agent writes one record per decision (``steering.*`` keys, logger
``academy_tui.steering``, see ``steering.audit``) and signs each with its session's secret
(:mod:`features.trust`). Anyone who can write into the pool can write records that look the
same, so the trail, the report, ``steer RUN`` and the app count a record only when it is
the steering agent's own (:mod:`features.trail_verify` checks it):

- its session (``steering.session``) has a session file of this user (the key),
- its signature matches its ``steering.*`` values, logger and message,
- its own time (``steering.t``) matches when it was written (``created``), so a copy moved
  in time does not count,
- it is the first record with its (session, ``steering.seq``), and in the same file as the
  session's other records (one steering agent writes one file).

Every other record with a ``steering.kind`` is *unverified*: listed apart with the reason,
never counted and never merged by id with verified ones. Suggestions are keyed by session
and id, so two steering agents' ``s1`` stay two suggestions.

A session that wrote no ``stop`` record is ``running`` while the run is live and it wrote
within :data:`LOST_AFTER_S`, else ``lost``; its pending suggestions are then ``expired``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from features.trail_verify import STEERING_LOGGER, check_records
from features.trail_verify import as_text as _s
from features.trust import Session, by_session, load_sessions

if TYPE_CHECKING:
    from features.run import Run

LOST_AFTER_S = 60.0
"""A steering agent without a stop record that wrote nothing this long is ``lost`` (it
writes an observation every 10 s while it runs)."""
KEYS = ("steering.kind", "steering.id", "steering.incident", "steering.action",
        "steering.args", "steering.target", "steering.target_uuid", "steering.phase",
        "steering.result", "steering.reason", "steering.summary", "steering.mode",
        "steering.exchange", "steering.session", "steering.seq")


@dataclass
class SessionState:
    """One steering agent as its verified records show it."""

    session: str
    agent: str = ""
    mode: str = ""
    exchange: str = ""
    """Where it said approvals reach it (signed by it; connect only to the session file's)."""
    file: int = -1
    first: float = math.nan
    last: float = math.nan
    """Epoch seconds of its first and last verified record."""
    stopped: bool = False
    state: str = "running"
    """running, stopped or lost."""
    why: str = ""

    @property
    def short(self) -> str:
        return self.session[:8]


@dataclass
class Suggestion:
    """One suggestion and what became of it."""

    key: str
    """``s1``, or ``<session[:8]>/s1`` when the run had several steering agents."""
    id: str
    session: str
    time: float
    """Seconds since the run start."""
    target: str = ""
    target_uuid: str = ""
    action: str = ""
    args: str = ""
    """The call's arguments as recorded (JSON)."""
    state: str = "suggested"
    """suggested (mode suggest), advice only (nothing declared to call), pending (mode
    confirm, waiting for a person), applying, approved, rejected, expired, applied: …,
    checked: …, reverted: …, escalated: …, denied: …"""
    summary: str = ""
    incident: str = ""
    records: list[tuple[int, float, str, str]] = field(default_factory=list)
    """(row, seconds since the run start, kind, message) of every record of it."""

    @property
    def pending(self) -> bool:
        return self.state == "pending"


@dataclass
class Trail:
    """The verified trail of one run, and what was left out."""

    events: int
    """Records in the run when it was read."""
    verified: np.ndarray
    """Rows of verified steering records, in time order."""
    unverified: list[tuple[int, str]]
    """(row, why) of every other record with a ``steering.kind``, in time order."""
    sessions: dict[str, SessionState]
    suggestions: dict[str, Suggestion]
    notes: list[str] = field(default_factory=list)
    kinds: dict[int, str] = field(default_factory=dict)
    """Row -> ``steering.kind`` of the verified rows."""
    calls: dict[str, int] = field(default_factory=lambda: {"applied": 0, "reverted": 0})
    """Calls really made (``apply``/``revert`` records of phase ``after``, result ``ok``)."""

    @property
    def records(self) -> int:
        return len(self.verified)

    def counts(self) -> dict[str, int]:
        """Verified decisions by kind, and calls that were really made."""
        ks = list(self.kinds.values())
        out = {k: ks.count(k) for k in ("incident", "suggestion", "approval", "rejection",
                                        "check", "escalation", "denied")}
        out.update(self.calls)
        out["unverified"] = len(self.unverified)
        return out


def read_trail(run: Run, sessions: list[Session] | None = None,
               now: float | None = None) -> Trail:
    """The run's verified steering trail (``sessions``: default this user's session files
    for the run's pool)."""
    ev = run.events()
    notes: list[str] = []
    if sessions is None:
        sessions, notes = load_sessions(run.path.name)
    keys = by_session(sessions)
    if "steering.kind" not in ev.store.key_shapes:
        return Trail(ev.n, np.empty(0, dtype=np.int64), [], {}, {}, notes)
    ok, unverified = check_records(ev, keys)
    trail = Trail(ev.n, np.array(ok, dtype=np.int64), unverified, {}, {}, notes)
    _fold(run, trail, now)
    return trail


def _fold(run: Run, trail: Trail, now: float | None) -> None:
    """Sessions and suggestions from the verified rows, in time order."""
    ev = run.events()
    rows = trail.verified
    if not len(rows):
        return
    cols = {k: (ev.column(k)[rows] if k in ev.store.key_shapes else [None] * len(rows))
            for k in KEYS}
    created = ev.created[rows]
    msgs = ev.column("message")[rows]
    agents = ev.column("academy.agent_id")[rows] if "academy.agent_id" in \
        ev.store.key_shapes else [None] * len(rows)
    several = len({_s(v).lower() for v in cols["steering.session"]}) > 1
    for i, row in enumerate(rows.tolist()):
        get = {k: _s(cols[k][i]) for k in KEYS}
        kind = get["steering.kind"]
        trail.kinds[row] = kind
        session = get["steering.session"].lower()
        st = trail.sessions.get(session)
        if st is None:
            st = trail.sessions[session] = SessionState(session, _s(agents[i]),
                                                        file=int(ev.file[row]),
                                                        first=float(created[i]))
        st.last = float(created[i])
        st.mode = get["steering.mode"] or st.mode
        if kind == "start":
            st.exchange = get["steering.exchange"]
        elif kind == "stop":
            st.stopped = True
            st.why = get["steering.reason"]
        sid = get["steering.id"]
        if sid:
            _suggestion(trail, session, sid, several, get, float(created[i]) - ev.t0,
                        (int(row), float(created[i]) - ev.t0, kind, _s(msgs[i])))
    _lifecycle(run, trail, now)


def _suggestion(trail: Trail, session: str, sid: str, several: bool, get: dict[str, str],
                t: float, record: tuple[int, float, str, str]) -> None:
    key = f"{session[:8]}/{sid}" if several else sid
    sug = trail.suggestions.get(key)
    if sug is None:
        sug = trail.suggestions[key] = Suggestion(key, sid, session, t)
    kind = get["steering.kind"]
    if kind == "suggestion":
        # What it proposed is fixed by its suggestion record; later records only add state.
        sug.target, sug.target_uuid = get["steering.target"], get["steering.target_uuid"]
        sug.action, sug.args = get["steering.action"], get["steering.args"]
        sug.summary, sug.incident = get["steering.summary"], get["steering.incident"]
        sug.state = ("advice only" if not get["steering.action"]
                     or get["steering.action"] == "none" else
                     {"confirm": "pending", "apply": "applying"}.get(
                         get["steering.mode"], "suggested"))
    result = get["steering.result"]
    reason = get["steering.reason"]
    if kind == "escalation":
        sug.state = "escalated" + (f": {reason}" if reason else "")
    elif kind == "approval":
        sug.state = "approved"
    elif kind == "rejection":
        sug.state = "rejected"
    elif kind == "expiry":
        sug.state = "expired"
    elif kind == "apply" and get["steering.phase"] != "before":
        sug.state = "applied" + (f": {result}" if result else "")
        trail.calls["applied"] += result == "ok"
    elif kind == "check":
        sug.state = "checked: " + (result or "?")
    elif kind == "revert" and get["steering.phase"] != "before":
        sug.state = "reverted" + (f": {result}" if result else "")
        trail.calls["reverted"] += result == "ok"
    sug.records.append(record)


def _lifecycle(run: Run, trail: Trail, now: float | None) -> None:
    now = time.time() if now is None else now
    live = run.live
    for st in trail.sessions.values():
        if st.stopped:
            st.state = "stopped"
        elif live and now - st.last <= LOST_AFTER_S:
            st.state = "running"
        else:
            st.state = "lost"
            st.why = ("its process ended without a stop record" if not live else
                      f"it wrote nothing for {now - st.last:.0f} s")
    for sug in trail.suggestions.values():
        owner = trail.sessions.get(sug.session)
        if sug.pending and owner is not None and owner.state != "running":
            sug.state = ("expired: the steering agent stopped" if owner.state == "stopped"
                         else "expired: the steering agent is gone (lost)")


@dataclass
class IncidentGroup:
    """The verified incident records about one agent's calls of one action (a steering
    agent writes one per stretch of slow calls: a slow worker makes dozens)."""

    agent: str
    """The slow agent (``AgentId<...>``), ``""`` when the records name none."""
    group: str
    """``Class.action``."""
    incidents: list[str] = field(default_factory=list)
    """Incident ids (``i1``...), in time order."""
    kinds: dict[str, int] = field(default_factory=dict)
    """Detector kind (slowdown, level_shift, drift, hung...) -> incidents."""
    first: float = math.nan
    last: float = math.nan
    """Seconds since the run start of its first and last incident record."""
    worst_ratio: float = math.nan
    """Largest ratio of a call to the usual duration (speed-ups left out)."""
    calls: int = 0
    """Slow calls the incidents counted, summed."""
    severity: str = ""
    """The highest severity among them."""
    suggestions: list[str] = field(default_factory=list)
    """Keys of the suggestions made for these incidents."""

    @property
    def count(self) -> int:
        return len(self.incidents)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None
        return {"agent": self.agent, "group": self.group, "count": self.count,
                "incidents": self.incidents, "kinds": self.kinds, "first_s": num(self.first),
                "last_s": num(self.last), "worst_ratio": num(self.worst_ratio),
                "calls": self.calls, "severity": self.severity,
                "suggestions": self.suggestions}


_SEVERITY = ("", "info", "low", "medium", "high")


def _rank(severity: str) -> int:
    return _SEVERITY.index(severity) if severity in _SEVERITY else 0


def _num(v: Any) -> float:
    try:
        return float(str(v))
    except ValueError:
        return math.nan


def _names(v: Any) -> list[str]:
    """``steering.agents`` (a JSON list as the pool holds it) as names."""
    text = _s(v)
    try:
        got = json.loads(text) if text else []
    except ValueError:
        return [text]
    return [str(a) for a in got] if isinstance(got, list) else [str(got)]


def incident_groups(run: Run, trail: Trail) -> list[IncidentGroup]:
    """The trail's verified incidents grouped per (slow agent, ``Class.action``): an
    incident about several agents counts for each; most incidents first."""
    ev = run.events()
    rows = [r for r, k in trail.kinds.items() if k == "incident"]
    if not rows:
        return []
    idx = np.array(sorted(rows), dtype=np.int64)
    shapes = ev.store.key_shapes
    cols = {k: ev.column(k)[idx] if k in shapes else [None] * len(idx)
            for k in ("steering.incident", "steering.group", "steering.agents",
                      "steering.incident_kind", "steering.max_ratio", "steering.count",
                      "steering.severity", "steering.change")}
    by_incident: dict[tuple[str, str], list[str]] = {}
    for sug in trail.suggestions.values():
        if sug.incident:
            by_incident.setdefault((sug.session, sug.incident), []).append(sug.key)
    sessions = ev.column("steering.session")[idx] if "steering.session" in shapes \
        else [None] * len(idx)
    groups: dict[tuple[str, str], IncidentGroup] = {}
    for i, row in enumerate(idx.tolist()):
        t = float(ev.created[row]) - ev.t0
        # A level shift or drift is steered as a slowdown; its record keeps the change.
        kind = _s(cols["steering.change"][i]) or _s(cols["steering.incident_kind"][i]) \
            or "slowdown"
        ratio = _num(cols["steering.max_ratio"][i])
        n = _num(cols["steering.count"][i])
        sev = _s(cols["steering.severity"][i])
        inc = _s(cols["steering.incident"][i])
        made = by_incident.get((_s(sessions[i]).lower(), inc), [])
        for agent in _names(cols["steering.agents"][i]) or [""]:
            key = (agent, _s(cols["steering.group"][i]))
            g = groups.get(key)
            if g is None:
                g = groups[key] = IncidentGroup(agent, key[1], first=t)
            g.incidents.append(inc)
            g.kinds[kind] = g.kinds.get(kind, 0) + 1
            g.last = t
            if kind != "speedup" and math.isfinite(ratio) and \
                    (math.isnan(g.worst_ratio) or ratio > g.worst_ratio):
                g.worst_ratio = ratio
            g.calls += int(n) if math.isfinite(n) else 0
            if _rank(sev) > _rank(g.severity):
                g.severity = sev
            g.suggestions.extend(k for k in made if k not in g.suggestions)
    return sorted(groups.values(), key=lambda g: (-g.count, g.first))


def verified_rows(run: Run) -> np.ndarray:
    """Rows of the run's verified steering records, in time order."""
    return read_trail(run).verified


__all__ = ["LOST_AFTER_S", "STEERING_LOGGER", "IncidentGroup", "SessionState", "Suggestion",
           "Trail", "incident_groups", "read_trail", "verified_rows"]

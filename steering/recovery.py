"""Changes an earlier steering agent of this run applied and never checked: it was killed,
or lost its process, between the call and the check. A new steering agent of the same run
finds them in the run's verified trail (:mod:`features.trail`: records signed with this
user's session secrets, kept outside the pool; a forged record counts for nothing) and
checks each like one of its own, reverting it when it did not help.

Pure data (no Academy): :class:`steering.steerer.Steerer` adopts what :func:`orphans`
returns once its targets are known.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["Orphan", "orphans"]


@dataclass(frozen=True)
class Orphan:
    """One applied change whose check never came."""

    session: str
    """The steering agent that made it (its uuid)."""
    id: str
    """Its suggestion id in that session (``s1``)."""
    t_apply: float
    """Epoch seconds of the call's ``after`` record."""
    target_uuid: str
    action: str
    args: dict[str, Any]
    previous: float | None
    knob: str
    about: str | None
    incident: dict[str, Any]
    """The incident's record: group, agents, since, baseline, ratios."""

    @property
    def key(self) -> str:
        return f"{self.session[:8]}/{self.id}"


def _json(v: Any, default: Any) -> Any:
    if not isinstance(v, str):
        return default if v is None else v
    try:
        return json.loads(v)
    except ValueError:
        return default


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


def orphans(run: Run, own_session: str) -> list[Orphan]:
    """Applied changes of other steering agents of ``run`` that are gone (stopped, lost,
    or their process on this host has exited, as their session file says) with no
    ``check`` or ``revert`` after them, oldest first."""
    from features.trail import read_trail
    from features.trust import load_sessions

    sessions, _ = load_sessions(run.path.name)
    here = socket.gethostname()
    exited = {s.agent_uuid.lower() for s in sessions
              if s.host == here and s.pid and s.pid != os.getpid() and _dead(s.pid)}
    trail = read_trail(run, sessions)
    if not len(trail.verified):
        return []
    ev = run.events()
    recs = ev.records(trail.verified.tolist())
    created = ev.created[trail.verified]
    incidents: dict[tuple[str, str], dict[str, Any]] = {}
    applied: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
    closed: set[tuple[str, str]] = set()
    for rec, t in zip(recs, created.tolist(), strict=True):
        if rec is None:
            continue
        session = str(rec.get("steering.session", "")).lower()
        if session == own_session.lower():
            continue
        kind = rec.get("steering.kind")
        sid = str(rec.get("steering.id") or "")
        if kind == "incident":
            incidents[(session, str(rec.get("steering.incident")))] = rec
        elif kind == "apply" and rec.get("steering.phase") == "after" \
                and rec.get("steering.result") == "ok" and sid:
            applied[(session, sid)] = (float(t), rec)
        elif kind in ("check", "revert") and sid:
            closed.add((session, sid))
    out = []
    for (session, sid), (t, rec) in sorted(applied.items(), key=lambda kv: kv[1][0]):
        st = trail.sessions.get(session)
        if (session, sid) in closed or st is None or \
                (st.state == "running" and session not in exited):
            continue
        args = _json(rec.get("steering.args"), {})
        inc = incidents.get((session, str(rec.get("steering.incident"))))
        if not isinstance(args, dict) or inc is None:
            continue
        about = rec.get("steering.about")
        out.append(Orphan(session, sid, t, str(rec.get("steering.target_uuid", "")).lower(),
                          str(rec.get("steering.action", "")), args,
                          _float(rec.get("steering.previous")),
                          str(rec.get("steering.knob") or ""),
                          str(about) if about not in (None, "None", "") else None, inc))
    return out


def incident_fields(o: Orphan) -> dict[str, Any]:
    """What :class:`steering.watch.SteerIncident` needs, from the incident's record."""
    inc = o.incident
    group = str(inc.get("steering.group", "."))
    cls, _, action = group.rpartition(".")
    agents = [str(a) for a in _json(inc.get("steering.agents"), []) if a]
    since = _float(inc.get("steering.since")) or o.t_apply
    ratio = _float(inc.get("steering.max_ratio")) or math.nan
    return {"id": f"{o.session[:8]}/{inc.get('steering.incident')}", "kind": "slowdown",
            "agent_class": cls, "action": action, "agents": agents, "agent_uuids": {},
            "start": since, "end": since, "count": int(_float(inc.get("steering.count")) or 0),
            "max_ratio": ratio, "excess_s": _float(inc.get("steering.excess_s")) or 0.0,
            "severity": str(inc.get("steering.severity", "")),
            "description": str(inc.get("steering.description", ""))[:300], "tags": [],
            "evidence": [], "baseline_s": _float(inc.get("steering.baseline_s")),
            "median_ratio": ratio}

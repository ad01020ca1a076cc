"""``academy-tui steer RUN``: a run's steering trail, for a person or a program.

    academy-tui steer RUN                     # suggestions (pending first), incidents per
                                              # agent and action, the steering agents
    academy-tui steer RUN --records           # and every verified record, one line each
    academy-tui steer RUN --format json       # one JSON document

Only verified records count (:mod:`features.trail`); the rest are listed apart with the
reason. Listing imports neither Academy nor scikit-learn: it reads the pool and checks
signatures, nothing more, so it answers in well under a second on a small run.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from features.fmt import count
from features.run import Run
from features.trail import IncidentGroup, Suggestion, Trail, incident_groups, read_trail

NOTED = ("targets", "conflict", "escalation", "denied")
"""Kinds of record whose message a person needs beside the suggestions: what the steering
agent found to steer, contradicting launch records, what it could not remedy, refusals."""
UNVERIFIED_SHOWN = 20
KIND_WORDS = {"slowdown": "slowdown", "level_shift": "level shift", "drift": "drift",
              "speedup": "speed-up", "hung": "hang"}


def print_trail(path: Path, args: argparse.Namespace) -> int:
    """Print the trail of the run at ``path`` as ``args.format`` (text or json)."""
    run = Run(path)
    run.load()
    trail = read_trail(run)
    for note in trail.notes:
        sys.stderr.write(f"academy-tui: {note}\n")
    groups = incident_groups(run, trail)
    doc = _document(run, trail, groups, args)
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(_text(doc, groups)) + "\n")
    return 0


def command(path: Path, args: argparse.Namespace, verb: str, key: str) -> str:
    """The command line that approves or rejects ``key``, as the user can paste it: the
    pool's uuid when ``--home`` (or the default home) finds it, else its path."""
    from features.pools import logs_dir

    home = Path(args.home).expanduser() if getattr(args, "home", None) else None
    found = path.parent.resolve() == logs_dir(home).resolve()
    parts = ["academy-tui", *(["--home", str(home)] if home is not None else []), "steer",
             path.name if found else str(path), f"--{verb}", key]
    return shlex.join(parts)


def _order(s: Suggestion) -> tuple[int, float]:
    # Pending first (a person is awaited), then the rest in time order.
    return (0 if s.pending else 1, s.time)


def _call(s: Suggestion) -> str:
    if not s.action or s.action == "none":
        return "advice only (nothing declared to call)"
    try:
        args = json.loads(s.args) if s.args else {}
    except ValueError:
        args = s.args
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) \
        else str(args)
    return f"{s.action}({shown})" + (f" on {s.target}" if s.target else "")


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _document(run: Run, trail: Trail, groups: list[IncidentGroup],
              args: argparse.Namespace) -> dict[str, Any]:
    ev = run.events()
    sugs = sorted(trail.suggestions.values(), key=_order)
    suggestions = []
    for s in sugs:
        d: dict[str, Any] = {
            "key": s.key, "id": s.id, "state": s.state, "pending": s.pending,
            "time_s": _num(s.time), "incident": s.incident, "target": s.target,
            "target_uuid": s.target_uuid, "action": s.action, "call": _call(s),
            "summary": s.summary, "session": s.session}
        try:
            d["args"] = json.loads(s.args) if s.args else None
        except ValueError:
            d["args"] = s.args
        if s.pending:
            d["approve"] = command(run.path, args, "approve", s.key)
            d["reject"] = command(run.path, args, "reject", s.key)
        suggestions.append(d)
    msg = ev.column("message") if trail.records or trail.unverified else None
    noted = [{"time_s": _num(float(ev.created[r]) - ev.t0), "kind": k,
              "message": str(msg[r]) if msg is not None else ""}
             for r, k in sorted(trail.kinds.items()) if k in NOTED]
    sessions = [{"session": st.session, "agent": st.agent, "mode": st.mode,
                 "state": st.state, "why": st.why, "exchange": st.exchange,
                 "first_s": _num(st.first - ev.t0), "last_s": _num(st.last - ev.t0)}
                for st in trail.sessions.values()]
    kinds = ev.column("steering.kind") if trail.unverified else None
    unverified = [{"time_s": _num(float(ev.created[r]) - ev.t0),
                   "file": ev.file_names[ev.file[r]],
                   "line": int(ev.line[r]) if ev.line[r] > 0 else None,
                   "kind": str(kinds[r]) if kinds is not None else "", "why": why,
                   "message": str(msg[r]) if msg is not None else ""}
                  for r, why in trail.unverified]
    doc: dict[str, Any] = {
        "pool": run.uuid, "path": str(run.path), "records": trail.records,
        "counts": trail.counts(), "suggestions": suggestions,
        "incidents": [g.as_dict() for g in groups],
        "sessions": sessions, "noted": noted, "unverified": unverified,
        "notes": list(trail.notes)}
    if getattr(args, "records", False):
        doc["trail"] = [{"time_s": _num(float(ev.created[r]) - ev.t0), "kind": k,
                         "message": str(msg[r]) if msg is not None else ""}
                        for r, k in sorted(trail.kinds.items())]
    return doc


def _text(doc: dict[str, Any], groups: list[IncidentGroup]) -> list[str]:
    c = doc["counts"]
    sugs = doc["suggestions"]
    if not doc["records"] and not doc["unverified"]:
        return [f"no steering events in {doc['pool']}"]
    pending = sum(1 for s in sugs if s["pending"])
    out = [f"Steering trail of {doc['pool']} (verified records only): "
           f"{count(len(sugs), 'suggestion')}" + (f" ({pending} pending)" if pending else "")
           + f", {count(c['incident'], 'incident')}, {count(c['applied'], 'call')} applied"
           + (f", {c['reverted']} reverted" if c["reverted"] else "")]
    if sugs:
        out += ["", "Suggestions" + (", pending first" if pending else "")]
        width = max(len(s["state"]) for s in sugs)
        for s in sugs:
            out.append(f"  {s['state']:<{width}}  {s['key']}  +{s['time_s'] or 0:.3f} s  "
                       f"{s['call']}" + (f"  (incident {s['incident']})"
                                         if s["incident"] else ""))
            pad = " " * (width + 4)
            # A person deciding, or advice with nothing to call, needs the why.
            if s["summary"] and (s["pending"] or s["action"] in ("", "none")):
                out.append(f"{pad}{s['summary']}")
            if s["pending"]:
                out.append(f"{pad}approve: {s['approve']}")
                out.append(f"{pad}reject:  {s['reject']}")
    if groups:
        out += ["", "Incidents, per agent and action"]
        out.extend("  " + _group_line(g) for g in groups)
    if doc["sessions"]:
        out += ["", "Steering agents"]
        for st in doc["sessions"]:
            out.append(f"  {st['session'][:8]}  {st['state']}"
                       + (f" ({st['why']})" if st["why"] else "")
                       + (f", mode {st['mode']}" if st["mode"] else "")
                       + (f", exchange {st['exchange']}" if st["exchange"] else ""))
        out.extend(f"  +{n['time_s'] or 0:.3f} s  {n['kind']:<10}  {n['message']}"
                   for n in doc["noted"])
    if "trail" in doc:
        out += ["", "Every verified record"]
        out.extend(f"  +{r['time_s'] or 0:9.3f} s  {r['kind']:<12} {r['message']}"
                   for r in doc["trail"])
    if doc["unverified"]:
        un = doc["unverified"]
        out += ["", f"Not counted: {count(len(un), 'record')} with steering keys that are "
                    "not a steering agent's own"]
        out.extend(f"  +{u['time_s'] or 0:.3f} s  {u['kind']:<12} {u['why']} "
                   f"[{u['file'][:8]}:{u['line']}]: {u['message']}"
                   for u in un[:UNVERIFIED_SHOWN])
        if len(un) > UNVERIFIED_SHOWN:
            out.append(f"  ... {len(un) - UNVERIFIED_SHOWN} more (--format json lists all)")
    return out


def _group_line(g: IncidentGroup) -> str:
    kinds = ", ".join(count(n, KIND_WORDS.get(k, k.replace("_", " "))) for k, n in
                      sorted(g.kinds.items(), key=lambda kv: -kv[1]))
    when = (f"+{g.first:.3f} s" if g.count == 1 or g.first == g.last
            else f"+{g.first:.3f} s to +{g.last:.3f} s")
    worst = f", worst {g.worst_ratio:.1f}x" if math.isfinite(g.worst_ratio) else ""
    calls = f", {count(g.calls, 'slow call')}" if g.calls else ""
    made = (f"; suggestion{'s' if len(g.suggestions) > 1 else ''} "
            f"{', '.join(g.suggestions)}" if g.suggestions else "; no suggestion")
    return (f"{g.group} on {g.agent or 'no agent named'}: {count(g.count, 'incident')} "
            f"({kinds}), {when}{worst}{calls}{made}")


__all__ = ["command", "print_trail"]

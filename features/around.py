"""What happened around a change point, with evidence: the words of ``Incident.cause``.

For a level shift or a speed-up of an agent's calls, in the stretch from the start of the
call two before the change to the end of its first call at the new level:

- a verified steering change: an ``apply`` record (phase ``after``, result ``ok``) of a
  steering agent whose ``steering.target`` (or ``steering.target_uuid``) is the agent.
  Only records :func:`features.trail.read_trail` verified count: anyone can write a
  record that looks like one;
- an action of another group called on the same agent (``set_sleep``, ``set_param``),
  from the actions table;

and, between the calls just before and just after it:

- a user key of the calls' own records that held one value before and another after
  (``fib.delay_s 0.1 -> 0.01``: :func:`features.explain.value_changes`);
- a new process: the calls after it ran in another process (pool file) than those before.

For a drift, the user keys that moved with the durations
(:func:`features.explain.moved_keys`). Nothing here claims causation: it is what happened
next to the change.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from features.safe import clean
from features.shifts import Shift, before_after, window

if TYPE_CHECKING:
    from features.run import Run
    from features.table import Table

MAX_CAUSES = 4
_KW = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)':\s*")


def _cite(run: Run, row: int) -> str:
    return f" [{run.events().cite(row)}]" if row >= 0 else ""


def _call_args(rec: dict[str, Any] | None) -> str:
    """``(0.01,)`` and ``{'seconds': 0.01}`` as ``0.01`` and ``seconds=0.01``."""
    if rec is None:
        return ""
    args = str(rec.get("academy.action_args") or "").strip()
    kwargs = str(rec.get("academy.action_kwargs") or "").strip()
    parts = []
    if args not in ("", "()", "None"):
        parts.append(args[1:-1].rstrip(",") if args.startswith("(") else args)
    if kwargs not in ("", "{}", "None"):
        parts.append(_KW.sub(r"\1=", kwargs[1:-1] if kwargs.startswith("{") else kwargs))
    return clean(", ".join(p for p in parts if p), 60)


def _steering(run: Run, agents: set[str], uuids: set[str], lo: float, hi: float
              ) -> list[tuple[float, str, str, int]]:
    """``(time, action, sentence, row)`` of the verified steering changes of the agents."""
    ev = run.events()
    if "steering.kind" not in ev.store.key_shapes:
        return []
    from features.trail import read_trail

    trail = read_trail(run)
    rows = np.array([r for r, k in trail.kinds.items() if k == "apply"], dtype=np.int64)
    rows = rows[(ev.created[rows] > lo) & (ev.created[rows] <= hi)] if len(rows) else rows
    out = []
    for r, rec in zip(rows.tolist(), ev.records(rows.tolist()), strict=True):
        if rec is None or str(rec.get("steering.phase")) != "after" or \
                str(rec.get("steering.result")) != "ok":
            continue
        target = str(rec.get("steering.target", ""))
        tuid = str(rec.get("steering.target_uuid", "")).lower()
        if target not in agents and tuid not in uuids:
            continue
        action = str(rec.get("steering.action", "?"))
        try:
            a = json.loads(str(rec.get("steering.args", "{}")))
            args = ", ".join(f"{k}={v!r}" for k, v in a.items()) if isinstance(a, dict) \
                else str(a)
        except ValueError:
            args = str(rec.get("steering.args", ""))
        t = float(ev.created[r])
        out.append((t, action, f"steering {clean(rec.get('steering.id'), 12)} applied "
                    f"{clean(action, 40)}({clean(args, 60)}) on {clean(target, 40)} at "
                    f"+{t - ev.t0:.3f} s{_cite(run, r)}", r))
    return out


def _calls(run: Run, agents: set[str], group: tuple[str, str], lo: float, hi: float
           ) -> list[tuple[float, str, str, int]]:
    """``(time, action, sentence, row)`` of the calls of other actions on the agents."""
    acts = run.actions()
    if not len(acts):
        return []
    t = acts["t_start"]
    other = ~((acts["agent_class"] == group[0]) & (acts["action"] == group[1]))
    hit = np.flatnonzero(np.isin(acts["agent_id"].astype(object), list(agents)) & other
                         & (t > lo) & (t <= hi))
    ev = run.events()
    recs = ev.records([int(acts["row_start"][i]) for i in hit if acts["row_start"][i] >= 0])
    by_row = dict(zip([int(acts["row_start"][i]) for i in hit if acts["row_start"][i] >= 0],
                      recs, strict=True))
    out = []
    for i in hit.tolist():
        row = int(acts["row_start"][i])
        name = f"{acts['agent_class'][i]}.{acts['action'][i]}"
        out.append((float(t[i]), str(acts["action"][i]),
                    f"{clean(name, 60)}({_call_args(by_row.get(row))}) called on "
                    f"{clean(acts['agent_id'][i], 40)} at +{float(t[i]) - ev.t0:.3f} s "
                    f"({acts['status'][i]}){_cite(run, row)}", row))
    return out


def _value(v: Any) -> str:
    """A logged value as data: a number as a number, text in quotes (a sentence logged
    by someone must never read as this tool's own finding)."""
    if isinstance(v, float):
        return f"{v:.3f}" if 0.001 <= abs(v) < 1000 else f"{v:.3g}"
    if isinstance(v, str):
        return '"' + clean(v, 40).replace('"', "'") + '"'
    return clean(v, 40)


def _files(run: Run, tags: list[str]) -> set[str]:
    acts = run.actions()
    files = acts["agent_file"][np.isin(acts["tag"], tags)]
    return {str(f) for f in files if f is not None}


def causes(run: Run, flags: Table, grp: list[Shift]) -> tuple[list[str], list[int]]:
    """What happened around the change(s) ``grp`` (one change, seen on one or more agents
    of one group): sentences and their evidence rows."""
    first = grp[0]
    agents = {str(flags["agent_id"][s.rows[s.change.at]]) for s in grp}
    group = (first.key[0], first.key[1])
    out: list[str] = []
    rows: list[int] = []
    if first.change.kind == "drift":
        from features.explain import moved_keys

        tags = [str(t) for t in flags["tag"][first.rows]]
        for key, a, b in moved_keys(run, tags, flags["duration_s"][first.rows]):
            out.append(f"{clean(key, 60)} went from {_value(a)} to {_value(b)} with them")
        return out[:MAX_CAUSES], rows
    lo, hi = window(flags, first)
    for s in grp[1:]:
        a, b = window(flags, s)
        lo, hi = min(lo, a), max(hi, b)
    ag = run.agents()
    uuids = {str(u).lower() for a, u in zip(ag["agent_id"].tolist(), ag["uuid"].tolist(),
                                            strict=True) if a in agents and u}
    steered = _steering(run, agents, uuids, lo, hi)
    found = steered + [c for c in _calls(run, agents, group, lo, hi)
                       # the steering agent's own call is said once, as its change
                       if not any(c[1] == s[1] and abs(c[0] - s[0]) < 5.0 for s in steered)]
    for _, _, sentence, row in sorted(found)[:MAX_CAUSES]:
        out.append(sentence)
        rows.append(row)
    from features.explain import value_changes

    before, after = before_after(flags, first)
    for key, a, b in value_changes(run, before, after):
        out.append(f"{clean(key, 60)} was {_value(a)} on the calls before and {_value(b)} "
                   "after")
    fb, fa = _files(run, before), _files(run, after)
    if fb and fa and not fb & fa:
        out.append(f"the calls after it ran in another process (file "
                   f"{', '.join(sorted(f[:8] for f in fa))}, before "
                   f"{', '.join(sorted(f[:8] for f in fb))})")
    return out[:MAX_CAUSES + 3], [r for r in rows if r >= 0 and math.isfinite(r)]


__all__ = ["causes"]

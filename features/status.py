"""A run's status (finished, failed, live, unknown) and the rule that says why, from a
loaded run: used by the catalog, the report and ``ask``.
"""

from __future__ import annotations

import time
from typing import Any

from features.fmt import fmt_age, fmt_s
from features.pools import LIVE_WINDOW_S


def status_of(run: Any, last_write: float, now: float | None = None) -> tuple[str, str]:
    """Status and the rule used, from a loaded :class:`features.run.Run`."""
    now = time.time() if now is None else now
    age = now - last_write if last_write else float("inf")
    import numpy as np

    ev = run.events()
    procs = run.processes()
    side = steering_side(run) if ev.n else set()
    names = np.asarray(ev.file_names, dtype=object)
    ours = ~np.isin(names[ev.file], list(side)) if side else np.ones(ev.n, dtype=bool)
    acts, ags = run.actions(), run.agents()
    failed_actions = int(((acts["status"] == "exception")
                          & ~np.isin(acts["agent_file"], list(side))).sum()) if ev.n else 0
    errors = int(((ev.ints["levelno"] >= 40) & ours).sum()) if ev.n else 0
    crashed = int((ags["crashed"] & ~np.isin(ags["file"], list(side))).sum()) if ev.n else 0
    ends = [e for f, e in zip(procs["file"], procs["end"], strict=True) if f not in side] \
        if len(procs) else []
    all_closed = bool(ends) and all(e in ("clean", "empty", "source") for e in ends)
    if age < LIVE_WINDOW_S and not all_closed:
        return "live", f"a file was written {age:.0f} s ago (live window {LIVE_WINDOW_S:.0f} s)"
    if ev.n == 0:
        return "unknown", "no records"
    state, rule = _status(run, now, age, ends, all_closed, crashed, failed_actions, errors,
                          side)
    if side:
        noise = int(((ev.ints["levelno"] >= 40) & ~ours).sum())
        if noise:
            rule += (f"; the steering agent's own process logged {noise} ERROR "
                     f"record{'s' if noise != 1 else ''}, not counted as the workflow's")
    return state, rule


def steering_side(run: Any) -> set[str]:
    """Files of a steering agent attached from its own process: files holding verified
    steering records (signed with this user's session secret: a forged record counts
    for nothing) whose agents are all steering agents. What goes wrong there (its exchange
    closing when the workflow ends, its shutdown) is the observer's, not the run's."""
    import numpy as np

    from features.trail import read_trail

    ev = run.events()
    if "steering.kind" not in ev.store.key_shapes:
        return set()

    trail = read_trail(run)
    if not len(trail.verified):
        return set()
    files = {ev.file_names[int(f)] for f in np.unique(ev.file[trail.verified])}
    ags = run.agents()
    workflow = {str(f) for f, c in zip(ags["file"], ags["class"], strict=True)
                if c != "SteeringAgent"}
    return files - workflow


def _status(run: Any, now: float, age: float, ends: list[str], all_closed: bool,
            crashed: int, failed_actions: int, errors: int, side: set[str]
            ) -> tuple[str, str]:
    if crashed or failed_actions or errors:
        parts = _hangs(run, now, side)
        if crashed:
            parts.append(f"{crashed} agent(s) crashed")
        if failed_actions:
            parts.append(f"{failed_actions} action(s) raised")
        if errors:
            parts.append(f"{errors} ERROR record(s)")
        return "failed", ", ".join(parts)
    managers = len(run.msg_rows("Closed manager (%s)"))
    if all_closed:
        return "finished", f"every process closed cleanly ({managers} 'Closed manager' records)"
    abrupt = sum(1 for e in ends if e == "abrupt")
    if managers == 0:
        return "unknown", (f"no 'Closed manager' record and nothing written for "
                           f"{fmt_age(age)}: stopped or killed?")
    return "failed", f"{abrupt} process(es) stopped without closing (file just ends)"


def _hangs(run: Any, now: float, side: set[str] | None = None) -> list[str]:
    """What hung, first in a failed run's rule: shutdowns that took many times the others'
    or ran into a TimeoutError, and calls their callers gave up on after waiting long
    (cheap: no detector fit)."""
    import numpy as np

    from features.hangs import shutdowns

    ags = run.agents()
    observers = {str(a) for a, f in zip(ags["agent_id"], ags["file"], strict=True)
                 if f in (side or ())}
    out = []
    for inc in shutdowns(run, now, False):
        if inc.agents and set(inc.agents) <= observers:
            continue  # the steering agent's own shutdown: not the run's
        d = inc.detail or {}
        who = inc.agents[0] if inc.agents else "the run"
        out.append(f"shutdown of {who} hung {fmt_s(float(d.get('waited_s', inc.excess_s)))}"
                   + (" until a TimeoutError" if d.get("timeout") else ""))
    acts = run.actions()
    if len(acts):
        gave_up = (acts["status"] == "cancelled") & (acts["total_s"] >= 10.0)
        if gave_up.any():
            i = int(np.flatnonzero(gave_up)[np.argmax(acts["total_s"][gave_up])])
            out.append(f"{int(gave_up.sum())} call(s) cancelled after waiting "
                       f"(up to {fmt_s(float(acts['total_s'][i]))} for "
                       f"{acts['action'][i]})")
    return out



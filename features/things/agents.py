"""Agents: every record naming one ``academy.agent_id``, from launch to shutdown (or
crash), with who launched it and how its process ended."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from features.events import Events
from features.table import Table
from features.things.common import (
    _AGENT_REPR,
    MSG_AGENT_EXC,
    MSG_LAUNCHED,
    MSG_RUNNING,
    MSG_SHUTDOWN,
    MSG_SHUTTING,
    MSG_STARTING,
    MSG_WORKER_FAIL,
    _at,
    _decode,
    _first_by,
    class_name,
    msg_rows,
)


def agents(ev: Events) -> Table:
    """One row per agent: identity and lifecycle.

    Columns: ``agent_id`` (display id), ``uuid`` (from the ``Launched agent`` record's
    arguments, when logged), ``name``, ``class``, ``file`` and ``pid`` of the process it
    ran in (where ``Running agent`` was logged), ``launch_file`` (where it was launched
    from), ``t_launched``, ``t_starting``,
    ``t_running``, ``t_shutting_down``, ``t_shutdown``, ``t_crash`` (the crash record),
    ``expected_shutdown``,
    ``crashed``, ``status`` (launched | running | shut down | crashed) and the evidence
    rows ``row_launched``/``row_running``/``row_shutdown``/``row_crash``."""
    aid_codes, aids = ev.cat("academy.agent_id")
    n = len(aids)
    picks = _lifecycle_picks(ev, aid_codes, n)
    known = np.zeros(n, dtype=bool)
    for key in ("launched", "starting", "running", "shutdown", "crash"):
        known |= picks[key] >= 0
    idx = np.flatnonzero(known)
    p = {k: v[idx] for k, v in picks.items()}
    uuids, names = _launch_identities(ev, p["launched"])
    home_rows = np.where(p["running"] >= 0, p["running"], p["starting"])
    file_names = np.array([*ev.file_names, None], dtype=object)
    hf = np.where(home_rows >= 0, ev.file[np.maximum(home_rows, 0)], -1)
    pid = np.where(home_rows >= 0, ev.ints["process"][np.maximum(home_rows, 0)], -1)
    expected = _expected_shutdowns(ev, p["shutting_down"])
    crashed = (p["crash"] >= 0) | (expected == False)  # noqa: E712 (object array)
    lf = np.where(p["launched"] >= 0, ev.file[np.maximum(p["launched"], 0)], -1)
    return Table({
        "agent_id": np.asarray(aids, dtype=object)[idx] if n else np.empty(0, dtype=object),
        "uuid": uuids,
        "name": names,
        "class": _classes(ev, p),
        "file": file_names[hf],
        "launch_file": file_names[lf],
        "pid": pid,
        "t_launched": _at(ev.created, p["launched"]),
        "t_starting": _at(ev.created, p["starting"]),
        "t_running": _at(ev.created, p["running"]),
        "t_shutting_down": _at(ev.created, p["shutting_down"]),
        "t_shutdown": _at(ev.created, p["shutdown"]),
        "t_crash": _at(ev.created, p["crash"]),
        "expected_shutdown": expected,
        "crashed": crashed.astype(bool),
        "status": _status(p, crashed),
        "row_launched": p["launched"],
        "row_running": p["running"],
        "row_shutdown": p["shutdown"],
        "row_crash": p["crash"],
    }, name="agents")


_LIFECYCLE = {
    "launched": MSG_LAUNCHED, "starting": MSG_STARTING, "running": MSG_RUNNING,
    "shutting_down": MSG_SHUTTING, "shutdown": MSG_SHUTDOWN,
}
"""Lifecycle step -> the Academy record that marks it."""


def _lifecycle_picks(ev: Events, aid_codes: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per agent id code, the row of each lifecycle step and of its crash (-1: none): the
    first record of each, but the last ``Shutdown agent``. Apart from :func:`agents` so
    the table's assembly reads in one screen."""
    picks: dict[str, np.ndarray] = {}
    for key, tmpl in _LIFECYCLE.items():
        rows = msg_rows(ev, tmpl)
        rows = rows[aid_codes[rows] >= 0]
        picks[key] = _first_by(aid_codes, rows, ev.created, n, last=(key == "shutdown"))
    crash_rows = msg_rows(ev, MSG_AGENT_EXC, MSG_WORKER_FAIL)
    crash_rows = crash_rows[aid_codes[crash_rows] >= 0]
    picks["crash"] = _first_by(aid_codes, crash_rows, ev.created, n)
    return picks


def _classes(ev: Events, p: dict[str, np.ndarray]) -> np.ndarray:
    """Each agent's class name, from its launch record, else its running or starting one."""
    cls_rows = np.where(p["launched"] >= 0, p["launched"],
                        np.where(p["running"] >= 0, p["running"], p["starting"]))
    cls_raw = _decode(ev, "academy.agent", cls_rows)
    # Prefer the fully qualified class from any lifecycle record of the agent.
    run_raw = _decode(ev, "academy.agent", p["running"])
    return np.array([class_name(a or b) for a, b in zip(cls_raw, run_raw, strict=True)],
                    dtype=object)


def _launch_identities(ev: Events, launched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's uuid and name as its ``Launched agent`` record's arguments give them
    (None where not logged): the display id holds only 8 hex digits of the uuid."""
    uuids = np.empty(len(launched), dtype=object)
    names = np.empty(len(launched), dtype=object)
    got = _identities(ev, [int(r) for r in launched if r >= 0])
    for i, r in enumerate(launched):
        if r >= 0 and int(r) in got:
            uuids[i], names[i] = got[int(r)]
    return uuids, names


_READ: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], Any]] = \
    weakref.WeakKeyDictionary()
"""Store -> (what, row) -> what the record at that row said: an agent's identity from
its launch, whether its shutdown was expected. A store only grows and a row's record
never changes, so each is read once; the records themselves are not kept (16k agents'
launch records were 46 MB of dicts kept for two values each)."""


def _read_once(ev: Events, what: str, rows: list[int],
               take: Callable[[dict[str, Any]], Any]) -> dict[int, Any]:
    """Row -> ``take(record)`` for ``rows``, each record read from its file once per
    store; a record that cannot be read now is left out (it may be readable later)."""
    memo = _READ.setdefault(ev.store, {})
    todo = [r for r in dict.fromkeys(rows) if (what, r) not in memo]
    if todo:
        for r, rec in zip(todo, ev.records(todo), strict=True):
            if rec is not None:
                memo[what, r] = take(rec)
    return {r: memo[what, r] for r in rows if (what, r) in memo}


def _identity(rec: dict[str, Any]) -> tuple[str | None, str | None]:
    """The uuid and name a ``Launched agent`` record's arguments give (None, None
    when they do not)."""
    m = _AGENT_REPR.search(str(rec.get("args", "")))
    if not m:
        return None, None
    return m.group(1).lower(), None if m.group(2) == "None" else m.group(2).strip("'")


def _identities(ev: Events, rows: list[int]) -> dict[int, tuple[str | None, str | None]]:
    return _read_once(ev, "identity", rows, _identity)


def _expected_shutdowns(ev: Events, shutting: np.ndarray) -> np.ndarray:
    """Per agent, whether its ``Shutting down`` record says the shutdown was expected
    (None without one): an unexpected shutdown is a crash."""
    expected = np.empty(len(shutting), dtype=object)
    said = _read_once(ev, "expected", [int(r) for r in shutting if r >= 0],
                      lambda rec: rec.get("academy.expected"))
    for i, r in enumerate(shutting):
        v = said.get(int(r)) if r >= 0 else None
        if v is not None:
            expected[i] = str(v) == "True"
    return expected


def _status(p: dict[str, np.ndarray], crashed: np.ndarray) -> np.ndarray:
    """Each agent's furthest step: launched, running, shut down; crashed overrides all."""
    status = np.empty(len(crashed), dtype=object)
    status[:] = "launched"
    status[p["running"] >= 0] = "running"
    status[p["shutdown"] >= 0] = "shut down"
    status[crashed] = "crashed"
    return status


def mark_process_ends(agents_table: Table, procs: Table, live: bool) -> Table:
    """The agents table with what their processes say: an agent still ``launched`` or
    ``running`` whose process's file ended abruptly (no closing record, not written
    lately: a kill or a crash) is ``crashed`` from that file's last record on
    (``t_crash``, ``crash_reason``); in a finished run, an agent that was launched but never
    ran is ``never started``. Adds ``t_gone``: when the agent stopped being able to answer
    (shutdown, crash or its process's end; NaN while it may still)."""
    n = len(agents_table)
    status = np.array(agents_table["status"], dtype=object).copy()
    t_crash = np.array(agents_table["t_crash"], dtype=np.float64).copy()
    crashed = np.array(agents_table["crashed"], dtype=bool).copy()
    reason = np.empty(n, dtype=object)
    reason[crashed] = "it raised or its shutdown was not expected"
    ends = dict(zip(procs["file"].tolist(), zip(procs["end"].tolist(),
                                                 procs["t_last"].tolist(), strict=True),
                    strict=True))
    files = agents_table["file"].tolist()
    for i in range(n):
        if status[i] not in ("launched", "running", "crashed"):
            continue
        end, t_last = ends.get(files[i], (None, math.nan))
        if end == "abrupt":
            status[i] = "crashed"
            crashed[i] = True
            t_crash[i] = t_last if math.isnan(t_crash[i]) else t_crash[i]
            reason[i] = "its process's log stops without a closing record (killed or crashed)"
        elif not live and status[i] == "launched" and files[i] is None:
            status[i] = "never started"
            reason[i] = "no record of it running in any process"
    never_ran = crashed & np.isnan(np.array(agents_table["t_running"], dtype=np.float64))
    reason[never_ran] = "it never ran: it failed while starting"
    gone = np.fmin(np.array(agents_table["t_shutdown"], dtype=np.float64), t_crash)
    cols = {c: agents_table[c] for c in agents_table.columns}
    cols.update(status=status, t_crash=t_crash, crashed=crashed, crash_reason=reason,
                t_gone=gone)
    return Table(cols, name=agents_table.name)


def launch_claims(ev: Events) -> Table:
    """Every ``Launched agent`` record as a claim: ``agent_id`` (display id), ``uuid`` and
    ``name`` (from its arguments), ``class`` and ``row``. One row per record, where
    :func:`agents` keeps one per display id, so records that contradict each other show."""
    aid_codes, aids = ev.cat("academy.agent_id")
    rows = msg_rows(ev, MSG_LAUNCHED)
    rows = rows[aid_codes[rows] >= 0]
    got = _identities(ev, rows.tolist())
    uuids = np.empty(len(rows), dtype=object)
    names = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows.tolist()):
        if r in got:
            uuids[i], names[i] = got[r]
    classes = np.array([class_name(c) for c in _decode(ev, "academy.agent", rows)],
                       dtype=object)
    display = np.asarray(aids, dtype=object)[aid_codes[rows]] if len(rows) else \
        np.empty(0, dtype=object)
    return Table({"agent_id": display, "uuid": uuids, "name": names, "class": classes,
                  "row": rows.astype(np.int64)}, name="launch_claims")

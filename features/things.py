"""Things: rows of events related by their keys, not by a span hierarchy.

An action is every record carrying one ``academy.action_tag`` (caller side in one file,
agent side in another); an agent is every record naming one ``academy.agent_id``; a
process is a file; a message is one ``(academy.message_tag, src, dest)``. All joins are
vectorised over the event columns, so they stay fast on a million events.

Times are absolute seconds since the epoch (``created``); durations are seconds.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from features.events import Events
from features.table import Table

CALLER_STATES = ("start", "sending", "waiting", "success", "exception", "cancelled")
AGENT_STATES = ("execute_start", "execute_success", "execute_exception", "execute_cancelled")

MSG_LAUNCHED = "Launched agent (%s; %s)"
MSG_STARTING = "Starting agent... (%s; %s)"
MSG_RUNNING = "Running agent (%s; %s)"
MSG_SHUTTING = "Shutting down agent... (expected: %s; %s; %s)"
MSG_SHUTDOWN = "Shutdown agent (%s; %s)"
MSG_AGENT_EXC = "Received exception from %s"
MSG_WORKER_FAIL = "Failure running agent on worker (%s)"
MSG_CLOSED_MANAGER = "Closed manager (%s)"
MSG_CLOSED_CLIENT = "Closed exchange client for %s"
MSG_SENT = "Sent %s to %s"
MSG_RECEIVED = "Received %s from %s for %s"
LOOP_STARTS = ("Started %r loop for %s", "Started %r event loop for %s (event: %r)",
               "Started %r timer loop for %s (interval: %fs)")
LOOP_EXITS = ("Exited %r loop for %s", "Exited %r event loop for %s",
              "Exited %r timer loop for %s")
CLEAN_END_MSGS = (MSG_CLOSED_MANAGER, MSG_SHUTDOWN, MSG_CLOSED_CLIENT)
"""A process whose file holds one of these (and no ERROR after it) ended cleanly."""

_AGENT_REPR = re.compile(r"AgentId\(uid=UUID\('([0-9a-fA-F-]{36})'\), name=(None|'[^']*')\)")
_CLASS_RE = re.compile(r"^(?:<class '(?P<path>[^']+)'>|Agent<(?P<short>[^>]+)>)$")


def class_name(agent_repr: str | None) -> str | None:
    """``"<class 'pkg.mod.Cls'>"`` or ``"Agent<Cls>"`` -> ``"Cls"``."""
    if not agent_repr:
        return None
    m = _CLASS_RE.match(agent_repr)
    if not m:
        return agent_repr
    path = m.group("path") or m.group("short")
    return path.rsplit(".", 1)[-1]


def msg_rows(ev: Events, *templates: str) -> np.ndarray:
    """Rows whose ``msg`` template is one of ``templates`` (structured, never the text)."""
    codes, values = ev.cat("msg")
    wanted = [i for i, v in enumerate(values) if v in templates]
    if not wanted:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.isin(codes, wanted))


def _first_by(keys: np.ndarray, rows: np.ndarray, created: np.ndarray, size: int,
              last: bool = False) -> np.ndarray:
    """For each key value 0..size-1, the row (among ``rows``) with the earliest (or
    latest) time; -1 where none."""
    out = np.full(size, -1, dtype=np.int64)
    if len(rows) == 0:
        return out
    t = created[rows]
    order = np.argsort(t, kind="stable")
    if not last:
        order = order[::-1]  # assign latest first so the earliest write wins
    r = rows[order]
    out[keys[r]] = r
    return out


def _at(values: np.ndarray, rows: np.ndarray, fill: Any = np.nan) -> np.ndarray:
    """``values[rows]`` with ``fill`` where ``rows`` is -1."""
    hit = rows >= 0
    if values.dtype.kind == "f":
        out = np.full(len(rows), fill, dtype=np.float64)
    elif values.dtype.kind in "iu":
        out = np.full(len(rows), -1, dtype=values.dtype)
    else:
        out = np.empty(len(rows), dtype=object)
    out[hit] = values[rows[hit]]
    return out


def _decode(ev: Events, key: str, rows: np.ndarray) -> np.ndarray:
    codes, _ = ev.cat(key)
    vals = ev.store.cats[key].array()
    out = np.empty(len(rows), dtype=object)
    hit = rows >= 0
    out[hit] = vals[codes[rows[hit]]]
    return out


def actions(ev: Events, live: bool = False, agents_table: Table | None = None) -> Table:
    """One row per action invocation, caller and agent sides joined by the action tag.

    Columns: ``tag``, ``action``, ``status`` (ok | exception | cancelled | in flight |
    orphaned), ``caller``, ``agent_id``, ``agent_class``, ``caller_file``, ``agent_file``,
    the state times ``t_start`` ``t_sending`` ``t_waiting`` ``t_exec_start``
    ``t_exec_end`` ``t_end``, the phases ``queue_s`` (sending -> execute_start),
    ``exec_s``, ``reply_s`` (agent end -> caller end), ``total_s`` (start -> end), and
    ``row_start``/``row_exec``/``row_end`` (evidence rows; -1 when absent).

    ``live`` says whether the run may still be writing: an unfinished action is then
    ``in flight``; in a finished run it is ``orphaned``, as is an action seen only on the
    agent side (its caller's records are missing)."""
    return ActionIndex().table(ev, live, agents_table)


def _merge_first(cur: np.ndarray, keys: np.ndarray, rows: np.ndarray,
                 created: np.ndarray) -> None:
    """Fold ``rows`` into ``cur`` (key code -> earliest row, -1 for none) in place: a row
    wins over the one held when it is earlier (a time beats no time; ties keep the lower
    row), exactly as if all rows had been ranked at once."""
    if len(rows) == 0:
        return
    best = _first_by(keys, rows, created, len(cur))
    touched = np.unique(keys[rows])
    new, old = best[touched], cur[touched]
    tn, to = created[new], created[np.maximum(old, 0)]
    take = (old < 0) | (tn < to) | (np.isnan(to) & ~np.isnan(tn)) | (
        ((tn == to) | (np.isnan(tn) & np.isnan(to))) & (new < old))
    cur[touched[take]] = new[take]


class FoldedIndex:
    """What is kept up to date over a growing store by folding in, a snapshot at a time,
    the rows that arrived since the last one (the action join, the process table). A
    snapshot of another store starts it over; an older snapshot of its store is left to a
    fresh index, so this one is not disturbed. Thread-safe; saved without its lock
    (:mod:`features.cache`). Subclasses define ``_reset`` and ``_fold``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: object | None = None
        self.n = 0
        """Rows folded in so far."""
        self._reset(None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

    def _reset(self, store: object | None) -> None:
        raise NotImplementedError

    def _fold(self, ev: Events) -> None:
        raise NotImplementedError

    def fold(self, ev: Events) -> None:
        """Fold in the rows of snapshot ``ev`` not seen yet."""
        with self.lock:
            if ev.store is not self.store or ev.n < self.n:
                self._reset(ev.store)
            self._fold(ev)

    def _caught_up(self, ev: Events) -> bool:
        """Under :attr:`lock`: fold ``ev`` in and say True; False (and nothing changed)
        when ``ev`` is older than what was folded: the caller asks a fresh index."""
        if ev.store is not self.store or ev.n < self.n:
            if self.n and ev.store is self.store:
                return False
            self._reset(ev.store)
        self._fold(ev)
        return True


class ActionIndex(FoldedIndex):
    """The action join of :func:`actions`, kept up to date over a growing store.

    The store only ever appends rows and its codes never change meaning, so the earliest
    record of each (tag, state) is folded in from the rows that arrived since the last
    :meth:`table`: a live reader's join costs what arrived, plus a few vector operations
    over the actions (not the records). A snapshot older than the last one, or of another
    store, is joined from scratch without disturbing the index. Thread-safe."""

    STATES = CALLER_STATES + AGENT_STATES

    def __init__(self) -> None:
        self.pick: dict[str, np.ndarray] = {}
        """State -> (tag code -> earliest row in that state, -1 for none)."""
        self.named = np.empty(0, dtype=np.int64)
        """Tag code -> earliest row of the tag that carries ``academy.action``."""
        self.seen = np.zeros(0, dtype=bool)
        """Tag code -> some row has the tag and a state."""
        super().__init__()

    def _reset(self, store: object | None) -> None:
        self.store, self.n = store, 0
        self.pick = {s: np.empty(0, dtype=np.int64) for s in self.STATES}
        self.named = np.empty(0, dtype=np.int64)
        self.seen = np.zeros(0, dtype=bool)

    def _fold(self, ev: Events) -> None:
        tag_codes, tags = ev.cat("academy.action_tag")
        st_codes, st_values = ev.cat("academy.action_state")
        act_codes, _ = ev.cat("academy.action")
        ntag = len(tags)
        grow = ntag - len(self.seen)
        if grow > 0:
            pad = np.full(grow, -1, dtype=np.int64)
            self.pick = {s: np.concatenate([a, pad]) for s, a in self.pick.items()}
            self.named = np.concatenate([self.named, pad])
            self.seen = np.concatenate([self.seen, np.zeros(grow, dtype=bool)])
        lo = self.n
        rows = lo + np.flatnonzero((tag_codes[lo:] >= 0) & (st_codes[lo:] >= 0))
        code_of = {v: i for i, v in enumerate(st_values)}
        st = st_codes[rows]
        for s in self.STATES:
            c = code_of.get(s, -2)
            _merge_first(self.pick[s], tag_codes, rows[st == c], ev.created)
        self.seen[tag_codes[rows]] = True
        _merge_first(self.named, tag_codes, rows[act_codes[rows] >= 0], ev.created)
        self.n = ev.n

    def table(self, ev: Events, live: bool = False,
              agents_table: Table | None = None) -> Table:
        """The actions of snapshot ``ev`` (see :func:`actions`)."""
        with self.lock:
            if not self._caught_up(ev):
                return ActionIndex().table(ev, live, agents_table)  # an older snapshot
            idx = np.flatnonzero(self.seen)
            pick = {s: a[idx] for s, a in self.pick.items()}
            named = self.named[idx]
            tags = np.asarray(ev.cat("academy.action_tag")[1], dtype=object)
        return _actions_table(ev, live, agents_table, tags[idx] if len(tags) else
                              np.empty(0, dtype=object), pick, named)


def _actions_table(ev: Events, live: bool, agents_table: Table | None, tags: np.ndarray,
                   pick: dict[str, np.ndarray], any_row: np.ndarray) -> Table:
    def t(s: str) -> np.ndarray:
        return _at(ev.created, pick[s])

    t_start, t_sending, t_waiting = t("start"), t("sending"), t("waiting")
    t_ok, t_exc, t_can = t("success"), t("exception"), t("cancelled")
    t_xs = t("execute_start")
    t_xok, t_xexc, t_xcan = t("execute_success"), t("execute_exception"), t("execute_cancelled")
    t_end = np.fmin(np.fmin(t_ok, t_exc), t_can)
    t_xend = np.fmin(np.fmin(t_xok, t_xexc), t_xcan)
    row_end = np.where(pick["success"] >= 0, pick["success"],
                       np.where(pick["exception"] >= 0, pick["exception"], pick["cancelled"]))
    row_start = np.where(pick["start"] >= 0, pick["start"], pick["sending"])
    row_exec = pick["execute_start"]
    caller_seen = (row_start >= 0) | (row_end >= 0) | (pick["waiting"] >= 0)

    status = np.empty(len(tags), dtype=object)
    status[:] = "in flight" if live else "orphaned"
    status[~np.isnan(t_ok)] = "ok"
    status[~np.isnan(t_can) | (~np.isnan(t_xcan) & np.isnan(t_end))] = "cancelled"
    status[~np.isnan(t_exc) | (~np.isnan(t_xexc) & np.isnan(t_ok))] = "exception"
    status[~caller_seen & np.isnan(t_end)] = "orphaned"

    action = _decode(ev, "academy.action", any_row)
    caller = _decode(ev, "academy.src", pick["sending"])
    target, agent_class = _targets(ev, row_start, pick["sending"], agents_table)
    file_names = np.array([*ev.file_names, None], dtype=object)
    caller_file = file_names[np.where(row_start >= 0, ev.file[np.maximum(row_start, 0)], -1)]
    agent_file = file_names[np.where(row_exec >= 0, ev.file[np.maximum(row_exec, 0)], -1)]
    send_t = np.where(np.isnan(t_sending), t_start, t_sending)
    table = Table({
        "tag": tags,
        "action": action,
        "status": status,
        "caller": caller,
        "agent_id": target,
        "caller_file": caller_file,
        "agent_file": agent_file,
        "t_start": t_start,
        "t_sending": t_sending,
        "t_waiting": t_waiting,
        "t_exec_start": t_xs,
        "t_exec_end": t_xend,
        "t_end": t_end,
        "queue_s": t_xs - send_t,
        "exec_s": t_xend - t_xs,
        "reply_s": t_end - t_xend,
        "total_s": t_end - t_start,
        "row_start": row_start,
        "row_exec": row_exec,
        "row_end": row_end,
        "agent_class": agent_class,
    }, name="actions")
    order = np.argsort(np.where(np.isnan(t_start), np.fmin(t_xs, t_end), t_start),
                       kind="stable")
    return table.take(order)


def _targets(ev: Events, row_start: np.ndarray, row_sending: np.ndarray,
             agents_table: Table | None) -> tuple[np.ndarray, np.ndarray]:
    """Each action's target agent (``academy.agent_id`` of its start record, else the
    ``academy.dest`` it was sent to) and that agent's class (from ``agents_table``), worked
    out once per distinct target rather than once per action."""
    n = len(row_start)
    aid, aid_vals = ev.cat("academy.agent_id")
    dest, dest_vals = ev.cat("academy.dest")
    a = np.where(row_start >= 0, aid[np.maximum(row_start, 0)], -1).astype(np.int64)
    d = np.where(row_sending >= 0, dest[np.maximum(row_sending, 0)], -1).astype(np.int64)
    # One integer per distinct target: agent-id codes, then dest codes after them.
    key = np.where(a >= 0, a, np.where(d >= 0, len(aid_vals) + d, -1))
    uniq, inv = np.unique(key, return_inverse=True)
    vals = np.empty(len(uniq), dtype=object)
    for i, k in enumerate(uniq.tolist()):
        vals[i] = None if k < 0 else aid_vals[k] if k < len(aid_vals) else \
            dest_vals[k - len(aid_vals)]
    ag = agents_table if agents_table is not None else agents(ev)
    classes: dict[Any, Any] = {}
    for v, c in zip(ag["agent_id"].tolist(), ag["class"].tolist(), strict=True):
        if v is not None and v not in classes:
            classes[v] = c
    cls = np.empty(len(uniq), dtype=object)
    cls[:] = [classes.get(v) if v is not None else None for v in vals.tolist()]
    if n == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    return vals[inv.reshape(-1)], cls[inv.reshape(-1)]


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
    lifecycle = {
        "launched": MSG_LAUNCHED, "starting": MSG_STARTING, "running": MSG_RUNNING,
        "shutting_down": MSG_SHUTTING, "shutdown": MSG_SHUTDOWN,
    }
    picks: dict[str, np.ndarray] = {}
    for key, tmpl in lifecycle.items():
        rows = msg_rows(ev, tmpl)
        rows = rows[aid_codes[rows] >= 0]
        picks[key] = _first_by(aid_codes, rows, ev.created, n, last=(key == "shutdown"))
    crash_rows = msg_rows(ev, MSG_AGENT_EXC, MSG_WORKER_FAIL)
    crash_rows = crash_rows[aid_codes[crash_rows] >= 0]
    picks["crash"] = _first_by(aid_codes, crash_rows, ev.created, n)
    known = np.zeros(n, dtype=bool)
    for key in ("launched", "starting", "running", "shutdown", "crash"):
        known |= picks[key] >= 0
    idx = np.flatnonzero(known)
    p = {k: v[idx] for k, v in picks.items()}
    cls_rows = np.where(p["launched"] >= 0, p["launched"],
                        np.where(p["running"] >= 0, p["running"], p["starting"]))
    cls_raw = _decode(ev, "academy.agent", cls_rows)
    # Prefer the fully qualified class from any lifecycle record of the agent.
    run_raw = _decode(ev, "academy.agent", p["running"])
    classes = np.array([class_name(a or b) for a, b in zip(cls_raw, run_raw, strict=True)],
                       dtype=object)
    uuids = np.empty(len(idx), dtype=object)
    names = np.empty(len(idx), dtype=object)
    launch_rows = [int(r) for r in p["launched"] if r >= 0]
    args = dict(zip(launch_rows, ev.records(launch_rows, keep=True), strict=True)) \
        if launch_rows else {}
    for i, r in enumerate(p["launched"]):
        rec = args.get(int(r)) if r >= 0 else None
        m = _AGENT_REPR.search(str(rec.get("args", ""))) if rec else None
        if m:
            uuids[i] = m.group(1).lower()
            names[i] = None if m.group(2) == "None" else m.group(2).strip("'")
    home_rows = np.where(p["running"] >= 0, p["running"], p["starting"])
    file_names = np.array([*ev.file_names, None], dtype=object)
    hf = np.where(home_rows >= 0, ev.file[np.maximum(home_rows, 0)], -1)
    pid = np.where(home_rows >= 0, ev.ints["process"][np.maximum(home_rows, 0)], -1)
    expected = np.empty(len(idx), dtype=object)
    sd = [int(r) for r in p["shutting_down"] if r >= 0]
    sd_recs = dict(zip(sd, ev.records(sd, keep=True), strict=True)) if sd else {}
    for i, r in enumerate(p["shutting_down"]):
        rec = sd_recs.get(int(r)) if r >= 0 else None
        if rec is not None and rec.get("academy.expected") is not None:
            expected[i] = str(rec.get("academy.expected")) == "True"
    crashed = (p["crash"] >= 0) | (expected == False)  # noqa: E712 (object array)
    status = np.empty(len(idx), dtype=object)
    status[:] = "launched"
    status[p["running"] >= 0] = "running"
    status[p["shutdown"] >= 0] = "shut down"
    status[crashed] = "crashed"
    lf = np.where(p["launched"] >= 0, ev.file[np.maximum(p["launched"], 0)], -1)
    return Table({
        "agent_id": np.asarray(aids, dtype=object)[idx] if n else np.empty(0, dtype=object),
        "uuid": uuids,
        "name": names,
        "class": classes,
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
        "status": status,
        "row_launched": p["launched"],
        "row_running": p["running"],
        "row_shutdown": p["shutdown"],
        "row_crash": p["crash"],
    }, name="agents")


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
    recs = ev.records(rows.tolist(), keep=True) if len(rows) else []
    uuids = np.empty(len(rows), dtype=object)
    names = np.empty(len(rows), dtype=object)
    for i, rec in enumerate(recs):
        m = _AGENT_REPR.search(str(rec.get("args", ""))) if rec else None
        if m:
            uuids[i] = m.group(1).lower()
            names[i] = None if m.group(2) == "None" else m.group(2).strip("'")
    classes = np.array([class_name(c) for c in _decode(ev, "academy.agent", rows)],
                       dtype=object)
    display = np.asarray(aids, dtype=object)[aid_codes[rows]] if len(rows) else \
        np.empty(0, dtype=object)
    return Table({"agent_id": display, "uuid": uuids, "name": names, "class": classes,
                  "row": rows.astype(np.int64)}, name="launch_claims")


def processes(ev: Events, live_files: Sequence[bool] | None = None) -> Table:
    """One row per pool file (one process instance).

    ``end`` is ``clean`` when the file holds a closing record (``Closed manager``,
    ``Shutdown agent`` or ``Closed exchange client``) with no ERROR record after it,
    else ``live`` when the file was written recently (``live_files``), else
    ``abrupt`` (the file just stops: a crash, a kill, or a process that never closed);
    ``source`` for a file of another source's events (every record has a ``source`` key)."""
    return ProcessIndex().table(ev, live_files)


class ProcessIndex(FoldedIndex):
    """The process table of :func:`processes`, kept up to date over a growing store.

    Per file, what the table says is a fold of its records (counts, first and last times,
    errors, warnings, the last closing record and the last error, process ids, the first
    record): the rows that arrived since the last :meth:`table` are folded in, so a live
    reader's table costs what arrived plus a few vector operations over the files (a
    watcher's poll on a 1M-record run rebuilt it from every record: 28 ms). A snapshot
    older than the last one, or of another store, is computed from scratch. Thread-safe."""

    def _reset(self, store: object | None) -> None:
        self.store, self.n, self.nfiles = store, 0, 0
        z = np.zeros(0, dtype=np.int64)
        nan = np.zeros(0)
        self.counts, self.err, self.warn, self.src = z, z.copy(), z.copy(), z.copy()
        self.first, self.last, self.last_close, self.last_err = nan, nan.copy(), \
            nan.copy(), nan.copy()
        self.row0 = z.copy()
        """Per file: its first row (-1: none yet)."""
        self.nan_row = z.copy()
        """Per file: its first row without a time (-1: none)."""
        self.min_row = z.copy()
        """Per file: its row with the earliest time (the first of equals; -1: none)."""
        self.min_t = nan.copy()
        self.pids: list[dict[int, int]] = []
        self.names: dict[int, Any] = {}
        """First row -> its ``processName``, as read from the file."""
        self.bad_seen = 0
        self.bad = z.copy()

    def _grow(self, nfiles: int) -> None:
        k = nfiles - self.nfiles
        if k <= 0:
            return
        zi, nan, neg = np.zeros(k, dtype=np.int64), np.full(k, np.nan), \
            np.full(k, -1, dtype=np.int64)
        self.counts, self.err, self.warn, self.src, self.bad = (
            np.concatenate([a, zi]) for a in (self.counts, self.err, self.warn, self.src,
                                              self.bad))
        self.first, self.last, self.last_close, self.last_err, self.min_t = (
            np.concatenate([a, nan]) for a in (self.first, self.last, self.last_close,
                                               self.last_err, self.min_t))
        self.row0, self.nan_row, self.min_row = (
            np.concatenate([a, neg]) for a in (self.row0, self.nan_row, self.min_row))
        self.pids.extend({} for _ in range(k))
        self.nfiles = nfiles

    def _fold(self, ev: Events) -> None:
        lo, hi = self.n, ev.n
        nf = len(ev.file_names)
        self._grow(nf)
        f = ev.file[lo:hi].astype(np.int64)
        created = ev.created[lo:hi]
        rows = np.arange(lo, hi, dtype=np.int64)
        self.counts += np.bincount(f, minlength=nf)
        ok = np.isfinite(created)
        np.fmin.at(self.first, f[ok], created[ok])
        np.fmax.at(self.last, f[ok], created[ok])
        lv = ev.ints["levelno"][lo:hi]
        errs = lv >= 40
        self.err += np.bincount(f[errs], minlength=nf)
        self.warn += np.bincount(f[(lv >= 30) & (lv < 40)], minlength=nf)
        np.fmax.at(self.last_err, f[errs], created[errs])
        codes, values = ev.cat("msg")
        wanted = [i for i, v in enumerate(values) if v in CLEAN_END_MSGS]
        if wanted:
            close = np.isin(codes[lo:hi], wanted)
            np.fmax.at(self.last_close, f[close], created[close])
        pid = ev.ints["process"][lo:hi].astype(np.int64)
        if len(f):
            key, cnt = np.unique(f * (1 << 33) + (pid + (1 << 32)), return_counts=True)
            for k, c in zip(key.tolist(), cnt.tolist(), strict=True):
                d = self.pids[k >> 33]
                p = (k & ((1 << 33) - 1)) - (1 << 32)
                d[p] = d.get(p, 0) + c
            # Each file's first row, first row without a time, earliest row (new rows
            # come after the old: on equal times the old row stays).
            files, at = np.unique(f, return_index=True)
            fresh = self.row0[files] < 0
            self.row0[files[fresh]] = rows[at[fresh]]
            nan = np.isnan(created)
            if nan.any():
                files, at = np.unique(f[nan], return_index=True)
                fresh = self.nan_row[files] < 0
                self.nan_row[files[fresh]] = rows[nan][at[fresh]]
            good = ~nan
            if good.any():
                g_rows, g_t, g_f = rows[good], created[good], f[good]
                order = np.lexsort((g_rows, g_t))
                files, at = np.unique(g_f[order], return_index=True)
                best_r, best_t = g_rows[order][at], g_t[order][at]
                better = (self.min_row[files] < 0) | (best_t < self.min_t[files])
                self.min_row[files[better]] = best_r[better]
                self.min_t[files[better]] = best_t[better]
        src_rows = ev.store.rows_with_key("source", hi)
        src_rows = src_rows[np.searchsorted(src_rows, lo):]
        if len(src_rows):
            self.src += np.bincount(ev.file[src_rows], minlength=nf)
        bad = ev.store.bad
        for b in bad[self.bad_seen:]:
            if b.file < nf:
                self.bad[b.file] += 1
        self.bad_seen = len(bad)
        self.n = hi

    def table(self, ev: Events, live_files: Sequence[bool] | None = None) -> Table:
        """The processes of snapshot ``ev`` (see :func:`processes`)."""
        with self.lock:
            if not self._caught_up(ev):
                return ProcessIndex().table(ev, live_files)  # an older snapshot
            nf = len(ev.file_names)
            self._grow(nf)
            counts = self.counts[:nf].copy()
            main_pid = np.full(nf, -1, dtype=np.int64)
            pids = []
            for i in range(nf):
                d = self.pids[i]
                if d:
                    top = max(d.values())
                    main_pid[i] = min(p for p, c in d.items() if c == top)
                pids.append(",".join(str(p) for p in sorted(d) if p >= 0))
            # As processes() picks it: the earliest row, but the first row without a
            # time when the file has one (numpy's argmin stops at a NaN), and the file's
            # first row when none of its rows has a time.
            first_row = np.where(self.nan_row[:nf] >= 0, self.nan_row[:nf],
                                 self.min_row[:nf])
            first_row = np.where(self.min_row[:nf] >= 0, first_row, self.row0[:nf])
            todo = [int(r) for r in first_row if r >= 0 and int(r) not in self.names]
            if todo:
                for r, rec in zip(todo, ev.records(todo), strict=True):
                    self.names[r] = rec.get("processName") if rec is not None else None
            pnames = np.empty(nf, dtype=object)
            for i, r in enumerate(first_row.tolist()):
                pnames[i] = self.names.get(r) if r >= 0 else None
            first, last = self.first[:nf].copy(), self.last[:nf].copy()
            last_close, last_err = self.last_close[:nf].copy(), self.last_err[:nf].copy()
            src, bad = self.src[:nf].copy(), self.bad[:nf].copy()
            err, warn = self.err[:nf].copy(), self.warn[:nf].copy()
        end = np.empty(nf, dtype=object)
        with np.errstate(invalid="ignore"):
            clean = ~np.isnan(last_close) & ~(last_err > last_close)
        end[:] = "abrupt"
        if live_files is not None:
            end[np.asarray(live_files, dtype=bool)[:nf]] = "live"
        end[clean] = "clean"
        end[counts == 0] = "empty"
        end[(src == counts) & (counts > 0)] = "source"
        return Table({
            "file": np.array(ev.file_names, dtype=object),
            "pid": main_pid,
            "pids": np.array(pids, dtype=object),
            "processName": pnames,
            "records": counts.astype(np.int64),
            "errors": err,
            "warnings": warn,
            "bad_lines": bad,
            "t_first": first,
            "t_last": last,
            "duration_s": last - first,
            "end": end,
        }, name="processes")


def group(ev: Events, keys: Sequence[str], rows: np.ndarray | None = None) -> tuple[
        np.ndarray, list[tuple[Any, ...]], np.ndarray]:
    """Group rows by the values of ``keys`` (rows lacking any key are left out).

    Returns (rows, group key tuples, group index of each returned row)."""
    rows = np.arange(ev.n) if rows is None else np.asarray(rows, dtype=np.int64)
    parts: list[np.ndarray] = []
    decoders: list[Any] = []
    for k in keys:
        if k in ev.codes:
            c, vals = ev.cat(k)
            codes = c[rows].astype(np.int64)
            decoders.append(vals)
        else:
            col = ev.column(k)[rows]
            if col.dtype.kind == "f":
                present = ~np.isnan(col)
            elif col.dtype.kind in "iu" and k in ev.ints:
                present = col >= 0
            elif col.dtype.kind in "iub":
                present = np.ones(len(col), dtype=bool)
            else:
                present = np.fromiter((v is not None for v in col), bool, len(col))
            codes = np.full(len(rows), -1, dtype=np.int64)
            if present.any():
                vals_present = col[present]
                if col.dtype == object:
                    uniq_map: dict[Any, int] = {}
                    enc = [uniq_map.setdefault(v, len(uniq_map)) for v in vals_present]
                    codes[present] = enc
                    decoders.append(list(uniq_map))
                else:
                    u, inv = np.unique(vals_present, return_inverse=True)
                    codes[present] = inv
                    decoders.append(u.tolist())
            else:
                decoders.append([])
        parts.append(codes)
    keep = np.ones(len(rows), dtype=bool)
    for p_ in parts:
        keep &= p_ >= 0
    rows = rows[keep]
    parts = [p_[keep] for p_ in parts]
    if not len(rows):
        return rows, [], np.empty(0, dtype=np.int64)
    stacked = np.stack(parts, axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    key_tuples = [tuple(decoders[j][int(u[j])] for j in range(len(keys))) for u in uniq]
    return rows, key_tuples, inv


def things(ev: Events, keys: Sequence[str], rows: np.ndarray | None = None,
           name: str = "things") -> Table:
    """The generic thing: any set of key fields defines one. For each distinct value
    combination: first and last time, duration, count and the first row as evidence."""
    rows, key_tuples, inv = group(ev, keys, rows)
    g = len(key_tuples)
    t = ev.created[rows]
    first = np.full(g, np.nan)
    last = np.full(g, np.nan)
    if g:
        np.fmin.at(first, inv, t)
        np.fmax.at(last, inv, t)
    count = np.bincount(inv, minlength=g) if g else np.zeros(0, dtype=np.int64)
    first_row = np.full(g, -1, dtype=np.int64)
    if g:
        order = np.lexsort((t, inv))[::-1]
        first_row[inv[order]] = rows[order]
    cols: dict[str, Any] = {}
    for j, k in enumerate(keys):
        col = np.empty(g, dtype=object)
        col[:] = [kt[j] for kt in key_tuples]
        cols[k] = col
    cols.update({"t_first": first, "t_last": last, "duration_s": last - first,
                 "count": count.astype(np.int64), "row_first": first_row})
    table = Table(cols, name=name)
    return table.sort("t_first")


def messages(ev: Events) -> Table:
    """One row per message: ``(academy.message_tag, src, dest)`` (a response reuses its
    request's tag, in the other direction). ``type`` comes from the sender's record (on
    Redis and HTTP exchanges the receiver logs ``dict``)."""
    tag_codes, _ = ev.cat("academy.message_tag")
    rows = np.flatnonzero(tag_codes >= 0)
    table = things(ev, ["academy.message_tag", "academy.src", "academy.dest"], rows,
                   name="messages")
    mt_codes, mt_vals = ev.cat("academy.message_type")
    r2, key_tuples, inv = group(ev, ["academy.message_tag", "academy.src", "academy.dest"],
                                rows)
    types = np.empty(len(key_tuples), dtype=object)
    codes = mt_codes[r2]
    for gi, c in zip(inv.tolist(), codes.tolist(), strict=True):
        if c >= 0 and mt_vals[c] != "dict" and types[gi] is None:
            types[gi] = mt_vals[c]
    # things() sorted its rows by time; realign types through the key columns.
    pos = {kt: i for i, kt in enumerate(key_tuples)}
    keyed = zip(table["academy.message_tag"], table["academy.src"], table["academy.dest"],
                strict=True)
    aligned = np.array([types[pos[k]] for k in keyed], dtype=object)
    table = table.with_column("type", aligned)
    return table.with_column("latency_s", table["duration_s"])


def loops(ev: Events) -> Table:
    """One row per agent loop run: started/exited records keyed by ``academy.self``,
    ``academy.method`` and file. ``running`` is true when no exit was logged."""
    starts = msg_rows(ev, *LOOP_STARTS)
    exits = msg_rows(ev, *LOOP_EXITS)
    rows = np.concatenate([starts, exits])
    if not len(rows):
        return Table({"agent": [], "method": [], "file": [], "t_started": [],
                      "t_exited": [], "duration_s": [], "running": []}, name="loops")
    self_vals = ev.column("academy.self")
    method_vals = ev.column("academy.method")
    file_names = ev.file_names
    out: dict[tuple[Any, Any, int], dict[str, Any]] = {}
    exit_set = set(exits.tolist())
    for r in sorted(rows.tolist(), key=lambda r: ev.created[r]):
        key = (self_vals[r], method_vals[r], int(ev.file[r]))
        ent = out.setdefault(key, {"t_started": np.nan, "t_exited": np.nan})
        if r in exit_set:
            ent["t_exited"] = float(ev.created[r])
        elif np.isnan(ent["t_started"]):
            ent["t_started"] = float(ev.created[r])
    keys = list(out)
    started = np.array([out[k]["t_started"] for k in keys])
    exited = np.array([out[k]["t_exited"] for k in keys])
    return Table({
        "agent": [k[0] for k in keys] or np.empty(0, dtype=object),
        "method": [k[1] for k in keys] or np.empty(0, dtype=object),
        "file": [file_names[k[2]] for k in keys] or np.empty(0, dtype=object),
        "t_started": started,
        "t_exited": exited,
        "duration_s": exited - started,
        "running": np.isnan(exited),
    }, name="loops")

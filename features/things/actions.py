"""Actions: every record carrying one ``academy.action_tag``, caller side in one file and
agent side in another, joined into one row per call (folded forward as records arrive)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from features.events import Events
from features.table import Table
from features.things.agents import agents
from features.things.common import (
    AGENT_STATES,
    CALLER_STATES,
    MSG_LAUNCHED,
    MSG_RUNNING,
    MSG_STARTING,
    FoldedIndex,
    _at,
    _decode,
    _first_by,
    _merge_first,
    class_name,
    msg_rows,
)

ClassOf = Callable[[Events, list[Any]], dict[Any, Any]]
"""Agent ids -> their classes, in a snapshot."""


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
        self._folded(ev, lo, tag_codes[rows])

    def _folded(self, ev: Events, lo: int, codes: np.ndarray) -> None:
        """After a fold of rows ``lo:`` of ``ev``, whose state records carry the tag
        ``codes``: for an index that follows what changed."""

    def subset(self, ev: Events, codes: np.ndarray
               ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``(tags, picks, named)`` of the tag ``codes`` as folded (under the lock)."""
        with self.lock:
            pick = {s: a[codes] for s, a in self.pick.items()}
            named = self.named[codes]
        values = ev.cat("academy.action_tag")[1]
        tags = np.empty(len(codes), dtype=object)
        tags[:] = [values[c] for c in codes.tolist()]
        return tags, pick, named

    def target_rows(self, ev: Events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per tag code of snapshot ``ev``: the row whose ``academy.agent_id`` names the
        call's target (its start record, else its sending one), its sending row (whose
        ``academy.dest`` names it otherwise), -1 where none, and whether the tag is an
        action's (some record has it and a state): what the table's ``agent_id`` is read
        from (:func:`_targets`), without making the table."""
        with self.lock:
            if not self._caught_up(ev):
                return ActionIndex().target_rows(ev)
            start, sending = self.pick["start"], self.pick["sending"]
            return np.where(start >= 0, start, sending), sending.copy(), self.seen.copy()

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
                   pick: dict[str, np.ndarray], any_row: np.ndarray,
                   class_of: ClassOf | None = None, in_order: bool = True) -> Table:
    """The actions table of these tags and their picks; agent classes from ``class_of``
    instead of the agents table when given; in start order unless ``in_order`` is False
    (then in the order given)."""
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
    status = _status(len(tags), live, caller_seen, t_end, (t_ok, t_exc, t_can),
                     (t_xexc, t_xcan))
    action = _decode(ev, "academy.action", any_row)
    caller = _decode(ev, "academy.src", pick["sending"])
    target, agent_class = _targets(ev, row_start, pick["sending"], agents_table, class_of)
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
    if not in_order:
        return table
    return table.take(np.argsort(start_key(table), kind="stable"))


def _status(n: int, live: bool, caller_seen: np.ndarray, t_end: np.ndarray,
            caller_ends: tuple[np.ndarray, np.ndarray, np.ndarray],
            agent_ends: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each call's status from the ends seen (``caller_ends``: success, exception,
    cancelled; ``agent_ends``: execute_exception, execute_cancelled). Later assignments
    win, so exception outranks cancelled, which outranks ok; the agent's cancel counts
    while the caller has no end, its exception while the caller has no success. A call
    with no caller record and no end is orphaned even in a live run (seen only on the
    agent side)."""
    t_ok, t_exc, t_can = caller_ends
    t_xexc, t_xcan = agent_ends
    status = np.empty(n, dtype=object)
    status[:] = "in flight" if live else "orphaned"
    status[~np.isnan(t_ok)] = "ok"
    status[~np.isnan(t_can) | (~np.isnan(t_xcan) & np.isnan(t_end))] = "cancelled"
    status[~np.isnan(t_exc) | (~np.isnan(t_xexc) & np.isnan(t_ok))] = "exception"
    status[~caller_seen & np.isnan(t_end)] = "orphaned"
    return status


def start_key(acts: Table) -> np.ndarray:
    """What actions are ordered by: the caller's start, else the first of the agent's
    execution start and the caller's end (NaN, ordered last, when none is known)."""
    t_start = acts["t_start"]
    return np.where(np.isnan(t_start), np.fmin(acts["t_exec_start"], acts["t_end"]), t_start)


def _targets(ev: Events, row_start: np.ndarray, row_sending: np.ndarray,
             agents_table: Table | None, class_of: ClassOf | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Each action's target agent (``academy.agent_id`` of its start record, else the
    ``academy.dest`` it was sent to) and that agent's class (from ``class_of``, else from
    ``agents_table``), worked out once per distinct target rather than once per action."""
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
    if class_of is not None:
        classes = class_of(ev, [v for v in vals.tolist() if v is not None])
    else:
        ag = agents_table if agents_table is not None else agents(ev)
        classes = {}
        for v, c in zip(ag["agent_id"].tolist(), ag["class"].tolist(), strict=True):
            if v is not None and v not in classes:
                classes[v] = c
    cls = np.empty(len(uniq), dtype=object)
    cls[:] = [classes.get(v) if v is not None else None for v in vals.tolist()]
    if n == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    return vals[inv.reshape(-1)], cls[inv.reshape(-1)]


def agent_classes(ev: Events, ids: list[Any]) -> dict[Any, Any]:
    """The class of each of the agents ``ids`` (agent-id values), as :func:`agents` says
    it (from the first ``Launched``, else ``Running``, else ``Starting`` record, the
    ``Running`` one's when that names no class), reading only those agents' lifecycle
    records: a live featurizer's few new calls need a few agents, not the table."""
    aid_codes, aids = ev.cat("academy.agent_id")
    cat, lim = ev.store.cats["academy.agent_id"], len(aids)
    want = {v: c for v in dict.fromkeys(ids)
            if 0 <= (c := cat.lookup(v)) < lim}
    if not want:
        return {}
    codes = np.fromiter(want.values(), dtype=np.int64, count=len(want))
    picks = {}
    for name, tmpl in (("launched", MSG_LAUNCHED), ("starting", MSG_STARTING),
                       ("running", MSG_RUNNING)):
        rows = msg_rows(ev, tmpl)
        rows = rows[np.isin(aid_codes[rows], codes)]
        picks[name] = _first_by(aid_codes, rows, ev.created, lim)[codes]
    cls_rows = np.where(picks["launched"] >= 0, picks["launched"],
                        np.where(picks["running"] >= 0, picks["running"], picks["starting"]))
    cls_raw = _decode(ev, "academy.agent", cls_rows)
    run_raw = _decode(ev, "academy.agent", picks["running"])
    return {v: class_name(a or b) for v, a, b in zip(want, cls_raw, run_raw, strict=True)}

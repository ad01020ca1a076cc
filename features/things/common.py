"""What the things share: Academy's message templates, class names from reprs, first
records by key, and the folded index a growing run keeps."""

from __future__ import annotations

import functools
import re
import threading
import weakref
from typing import Any

import numpy as np

from features.events import Events

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


@functools.lru_cache(maxsize=4096)
def class_name(agent_repr: str | None) -> str | None:
    """``"<class 'pkg.mod.Cls'>"`` or ``"Agent<Cls>"`` -> ``"Cls"`` (a run has a few
    classes and thousands of agents, each asked on every poll of a live run)."""
    if not agent_repr:
        return None
    m = _CLASS_RE.match(agent_repr)
    if not m:
        return agent_repr
    path = m.group("path") or m.group("short")
    return path.rsplit(".", 1)[-1]


_SCANS: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], tuple[int, list[int], np.ndarray]]] \
    = weakref.WeakKeyDictionary()
"""Store -> templates -> (rows scanned, the templates' codes, the rows found): a store
only grows and a row's codes never change, so a later snapshot scans its new rows alone
(a live run's agents table asked for six templates over every record on every poll)."""


def msg_rows(ev: Events, *templates: str) -> np.ndarray:
    """Rows whose ``msg`` template is one of ``templates`` (structured, never the text)."""
    codes, values = ev.cat("msg")
    wanted = [i for i, v in enumerate(values) if v in templates]
    if not wanted:
        return np.empty(0, dtype=np.int64)
    scans = _SCANS.setdefault(ev.store, {})
    seen, known, rows = scans.get(templates, (0, [], np.empty(0, dtype=np.int64)))
    if known != wanted:  # a template seen for the first time: from the start
        seen, rows = 0, np.empty(0, dtype=np.int64)
    if ev.n < seen:  # an older snapshot
        return rows[rows < ev.n]
    if ev.n > seen or not seen:
        more = np.flatnonzero(np.isin(codes[seen:], wanted)) + seen
        rows = np.concatenate([rows, more]) if len(rows) else more
        rows.flags.writeable = False  # shared by every caller
        scans[templates] = (ev.n, wanted, rows)
    return rows


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

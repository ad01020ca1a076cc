"""Which steering records are the steering agent's own: the checks :mod:`features.trail`
lists (SECURITY.md R6, R8), per record (logger, signature, time) and per session (its
sequence numbers, its file).

Apart from the trail so that reading one (sessions, suggestions, what became of them) is not
mixed with distrusting its records. A record's verdict is cached per store: rows never change
once read, and the app reads the trail again at every refresh.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import TYPE_CHECKING, Any

from features.query import select
from features.trust import TIME_SLACK_S, Session, record_ok

if TYPE_CHECKING:
    from features.events import Events

__all__ = ["STEERING_LOGGER", "as_text", "check_records"]

STEERING_LOGGER = "academy_tui.steering"
"""The logger a steering agent writes its ``steering.*`` records to."""


class _Verdicts:
    """Per-row signature and time checks of one store (rows never change once read)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_row: dict[int, tuple[str, str, int, str]] = {}
        """row -> (session, why-not or "", seq, kind)."""
        self.keys: frozenset[tuple[str, bytes]] = frozenset()


_CACHE: weakref.WeakKeyDictionary[Any, _Verdicts] = weakref.WeakKeyDictionary()


def as_text(v: Any) -> str:
    """A record value as text, ``""`` for a missing one (a column holds None or "None")."""
    return "" if v is None or v == "None" else str(v)


def _verdict(rec: dict[str, Any] | None, created: float, keys: dict[str, Session]
             ) -> tuple[str, str, int, str]:
    if rec is None:
        return "", "its line cannot be read", -1, ""
    session = as_text(rec.get("steering.session")).lower()
    kind = as_text(rec.get("steering.kind"))
    try:
        seq = int(str(rec.get("steering.seq")))
    except ValueError:
        seq = -1
    if as_text(rec.get("name")) != STEERING_LOGGER:
        return session, f"written by logger {as_text(rec.get('name'))[:60]!r}", seq, kind
    s = keys.get(session)
    if s is None:
        return session, "no session key for it on this machine", seq, kind
    if not record_ok(s.secret, rec):
        return session, "its signature does not match", seq, kind
    try:
        t = float(str(rec.get("steering.t")))
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and abs(t - created) <= TIME_SLACK_S):
        return session, "its time does not match when it was written", seq, kind
    return session, "", seq, kind


def check_records(ev: Events, keys: dict[str, Session]
                  ) -> tuple[list[int], list[tuple[int, str]]]:
    """The rows of ``ev``'s verified steering records, and (row, why) of every other
    record with a ``steering.kind``, both in time order (``keys``: session -> its key)."""
    # The same snapshot as ``ev``: the run may grow in another thread meanwhile (an app's
    # reader), and rows of a newer snapshot are past the end of this one.
    rows = select(ev, "has:steering.kind")
    cache = _CACHE.setdefault(ev.store, _Verdicts())
    sig = frozenset((k, s.secret) for k, s in keys.items())
    with cache.lock:
        if sig != cache.keys:
            cache.by_row.clear()
            cache.keys = sig
        todo = [int(r) for r in rows if int(r) not in cache.by_row]
        if todo:
            for r, rec in zip(todo, ev.records(todo), strict=True):
                cache.by_row[r] = _verdict(rec, float(ev.created[r]), keys)
        verdicts = [cache.by_row[int(r)] for r in rows]
    seen: set[tuple[str, int]] = set()
    files: dict[str, int] = {}
    ok: list[int] = []
    unverified: list[tuple[int, str]] = []
    for r, (session, why, seq, _) in zip(rows.tolist(), verdicts, strict=True):
        if not why:
            f = int(ev.file[r])
            if (session, seq) in seen:
                why = f"a copy of its session's record number {seq}"
            elif files.setdefault(session, f) != f:
                why = "in another file than its session's other records"
        if why:
            unverified.append((r, why))
            continue
        seen.add((session, seq))
        ok.append(r)
    return ok, unverified

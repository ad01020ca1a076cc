"""Events as a :class:`~features.table.Table`: one row per record, a column per key.

What :meth:`features.run.Run.events_table` shows (the CLI's ``events``, a notebook's first
look at a run): location first, then the standard keys, then every other key the rows
have, with values the integer columns could not hold put back as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from features.events import Events
from features.normalize import is_null, to_int
from features.record_keys import FLAG_RAW_INT, INT_KEYS
from features.table import Table
from features.typed import typed


def events_table(ev: Events, rows: np.ndarray | None = None,
                 keys: Sequence[str] | None = None) -> Table:
    """Events as a table: by default every key any of the rows has, plus location."""
    rows = ev.order if rows is None else np.asarray(rows, dtype=np.int64)
    if keys is None:
        keys = default_event_keys(ev, rows)
    cols: dict[str, Any] = {}
    for k in keys:
        col = ev.column(k)
        cols[k] = col[rows]
    line = cols.get("@line")
    if line is not None and len(line) and int(line.min()) <= 0:
        # Not known (a file's end read before the rest, never placed): missing, not a
        # number (Events.line_text).
        line = line.astype(object)
        line[line <= 0] = None
        cols["@line"] = line
    _raw_ints(ev, rows, cols)
    return Table(cols, name="events")


def _raw_ints(ev: Events, rows: np.ndarray, cols: dict[str, Any]) -> None:
    """Put back, as written, the values the integer columns could not hold (-1 there;
    :data:`~features.parse.FLAG_RAW_INT`): the rows keep them, not a made-up -1."""
    keys = [k for k in INT_KEYS if k in cols]
    if not keys or not len(rows):
        return
    pos = np.flatnonzero((ev.flags[rows] & FLAG_RAW_INT) != 0)
    if not len(pos):
        return
    recs = ev.records(rows[pos])
    for k in keys:
        col = cols[k].astype(object)
        for p, rec in zip(pos.tolist(), recs, strict=True):
            v = None if rec is None else rec.get(k)
            if col[p] == -1 and not is_null(v) and to_int(v) != -1:
                col[p] = typed(v)
        cols[k] = col


def default_event_keys(ev: Events, rows: np.ndarray) -> list[str]:
    """Location first, then the standard record keys, then every extra key present."""
    first = ["@file", "@line", "created", "@t", "levelname", "name", "process", "message"]
    shapes = np.unique(ev.shape[rows]) if len(rows) else np.empty(0, dtype=np.int64)
    present: list[str] = []
    seen = set(first)
    for s in shapes:
        for k in ev.store.shape_keys[int(s)]:
            if k not in seen:
                seen.add(k)
                present.append(k)
    return first + present

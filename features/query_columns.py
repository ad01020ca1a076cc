"""Where the filter evaluator (:mod:`features.query_eval`) gets the data it tests: each
key as a column (:class:`~features.query_values._Col`) built from the store's integer
columns, its category tables, the pseudo keys or the files; and the result of each test
on ``message``. Both are kept per store and extended as it grows, so repeating a filter,
or running it on a newer snapshot, reads and scans only what is new.

Kept apart from the evaluation of the nodes so each can be read on its own: this module
knows the store, the evaluator knows the query language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from features.events import Events
from features.normalize import scalar
from features.query_values import (
    _MSG_CACHE,
    _cache_for,
    _Col,
    _message_test,
    _substring,
    _tested,
    _value_floats,
)
from features.record_keys import FLAG_EXC, FLAG_MSG_CUT, FLAG_REPAIRED, INT_KEYS

LEVEL_NAMES = {0: "NOTSET", 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR",
               50: "CRITICAL"}
"""What ``levelname`` reads for a ``levelno`` (a level between them: ``Level 25``)."""


class Columns:
    """The columns and message tests of one snapshot (``events``), read on first use."""

    def __init__(self, events: Events) -> None:
        self.ev = events
        self.n = events.n
        self.cache = _cache_for(events.store)
        self.cols: dict[str, _Col] = {}

    def col(self, key: str) -> _Col:
        c = self.cols.get(key)
        if c is None:
            c = self.cols[key] = self._col(key)
        return c

    def _col(self, key: str) -> _Col:
        ev, n = self.ev, self.n
        if key in INT_KEYS or key in ("@line", "@offset", "@row"):
            raw = (ev.ints[key] if key in INT_KEYS else ev.line if key == "@line"
                   else ev.offset if key == "@offset" else np.arange(n))
            num = raw.astype(np.float64)
            if key in INT_KEYS:
                num[raw == -1] = np.nan
            return _Col(n, num=num, integral=True)
        if key == "created":
            return _Col(n, num=ev.created)
        if key == "@t":
            return _Col(n, num=ev.created - ev.t0)
        if key == "@repaired":
            codes = ((ev.flags & FLAG_REPAIRED) != 0).astype(np.int32)
            return _Col(n, codes=codes, values=[False, True])
        if key == "@file":
            return _Col(n, codes=ev.file, values=ev.file_names)
        if key == "levelname":
            lv = ev.ints["levelno"]
            uniq, inv = np.unique(lv, return_inverse=True)
            names = [LEVEL_NAMES.get(u, f"Level {u}") for u in uniq.tolist() if u != -1]
            codes = inv.astype(np.int32)
            if len(uniq) and uniq[0] == -1:
                codes -= 1  # -1 (missing) sorts first: its rows get code -1
            return _Col(n, codes=codes, values=names)
        if key in ev.codes:
            codes, values = ev.cat(key)
            cat = ev.store.cats[key]
            return _Col(n, codes=codes, values=values,
                        index=lambda s: cat.index.get(s),
                        floats=lambda: self.category_floats(key, values))
        return self.lazy(key)

    def category_floats(self, key: str, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        # Distinct values only ever grow: extend the cached per-value numbers.
        prev = self.cache.floats.get(key)
        k = len(values)
        if prev is not None and len(prev[0]) >= k:
            return prev
        start = 0 if prev is None else len(prev[0])
        out = _value_floats(values, start, prev)
        self.cache.floats[key] = out
        return out

    def lazy(self, key: str) -> _Col:
        """A key read from the files (cached per store; reused by shorter snapshots)."""
        ev, n, store = self.ev, self.n, self.ev.store
        cached = self.cache.lazy.get(key)
        if cached is not None and cached.n >= n:
            return cached.head(n)
        if key not in store.key_shapes:
            return _Col(n, codes=np.full(n, -1, dtype=np.int32), values=[])
        lz = store.lazy_get(key)
        if key == "exc_text" and (lz is None or lz.rows < n):
            # Only records flagged at parse time carry a traceback; the others hold a
            # null spelling. Reading just those beats reading every record.
            rows = np.flatnonzero((ev.flags & FLAG_EXC) != 0)
            vals = np.empty(len(rows), dtype=object)
            for i, rec in enumerate(ev.records(rows)):
                vals[i] = None if rec is None else scalar(rec.get(key))
        else:
            rows = store.rows_with_key(key, n)
            vals = ev.column(key)[rows]
        index: dict[tuple[type, Any], int] = {}
        values: list[Any] = []

        def code(v: Any) -> int:
            if v is None:
                return -1
            k = (v.__class__, v)  # 1, 1.0 and True are distinct values here
            c = index.get(k)
            if c is None:
                c = index[k] = len(values)
                values.append(v)
            return c

        codes = np.full(n, -1, dtype=np.int32)
        codes[rows] = np.fromiter(map(code, vals), dtype=np.int32, count=len(vals))
        col = _Col(n, codes=codes, values=values, index=lambda s: index.get((str, s)))
        self.cache.lazy[key] = col
        return col

    # -- message -------------------------------------------------------------------------

    def message(self, test: tuple[Any, ...], within: np.ndarray | None) -> np.ndarray:
        """Mask of a test on ``message``: ("text", needle), ("match", pattern) or
        ("cmp", op, literal)."""
        n = self.n
        cache = self.cache.msg
        hit = cache.get(test)
        if hit is not None and hit[0] >= n:
            cache.move_to_end(test)
            return hit[1][:n]
        start = 0 if hit is None else hit[0]
        fn = _message_test(test)
        msgs = self.ev.message
        if hit is None and within is not None:
            rows = np.flatnonzero(within)
            if len(rows) < n // 4:  # sparse: test only the rows that still matter
                out = np.zeros(n, dtype=bool)
                out[rows] = np.fromiter(fn([msgs[i] for i in rows.tolist()]), dtype=bool,
                                        count=len(rows))
                self.fix_cut(out, rows, fn)
                return out
        new = _tested(fn, msgs, start, n, _substring(test))
        out = new if hit is None else np.concatenate([hit[1][:start], new])
        self.fix_cut(out, np.flatnonzero(self.ev.flags[start:n] & FLAG_MSG_CUT) + start, fn)
        cache[test] = (n, out)
        cache.move_to_end(test)
        while len(cache) > _MSG_CACHE:
            cache.popitem(last=False)
        return out

    def fix_cut(self, out: np.ndarray, rows: np.ndarray, fn: Callable[[Iterable[str]],
                Iterator[bool]]) -> None:
        """Re-test rows whose in-memory message was cut, on the full text from the file."""
        cut = rows[(self.ev.flags[rows] & FLAG_MSG_CUT) != 0]
        if not len(cut):
            return
        full = []
        for rec in self.ev.records(cut):
            m = None if rec is None else rec.get("message")
            full.append(m if isinstance(m, str) else "" if m is None else str(m))
        out[cut] = np.fromiter(fn(full), dtype=bool, count=len(cut))

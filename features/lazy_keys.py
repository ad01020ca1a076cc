"""The keys the store holds no column for: which rows have one, and their values.

A record's core keys (``features.store.CORE_KEYS``) are columns; any other key (a wide
record's dozens, a user's ``extra=``) is found from the records' shapes, read from the
files when first asked for (:mod:`features.events`) and remembered here per key, or,
for short user values, kept as they were parsed (``features.parse.is_user_key``).
:class:`LazyKeys` is the part of :class:`features.store.EventStore` that holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.batch import Batch
from features.columns import Growable, Messages


@dataclass
class _LazyColumn:
    rows: int
    """How many store rows this column covers (rows appended later are not read yet)."""
    values: np.ndarray
    """Object array of normalised scalars (``None`` where the key is absent); it may be
    longer than ``rows`` (room for the rows a live run appends next)."""


@dataclass
class _NumericColumn:
    """A lazy key's values as floats for the first ``rows`` rows; ``values`` is None when
    the key is not numeric: a string was ``seen``, or (``seen`` False) no value yet."""

    rows: int
    values: np.ndarray | None
    seen: bool


class LazyKeys:
    """The store's keys beyond its columns (a mixin: the store's own attributes below are
    set by :class:`features.store.EventStore`)."""

    lock: Any
    shape: Growable
    shape_keys: list[tuple[str, ...]]
    key_shapes: dict[str, list[int]]

    def _init_lazy_keys(self) -> None:
        self._lazy: dict[str, _LazyColumn] = {}
        self._key_rows: dict[str, tuple[int, int, np.ndarray]] = {}
        """Key -> (rows scanned, shapes with the key then, rows that have it)."""
        self._numeric: dict[str, _NumericColumn] = {}
        self.kept_records: dict[int, Any] = {}
        """Row -> its record, as read for ``Events.records(keep=True)``."""
        self._user: dict[str, tuple[list[np.ndarray], list[Sequence[Any]]]] = {}
        """User key -> (row arrays, raw value lists) kept at ingest (see
        ``features.parse.is_user_key``); a saved reading's part of texts is frozen
        (:func:`_frozen`)."""
        self._user_partial: set[str] = set()
        """User keys not (all) kept: read from the files on use."""

    def _keep_user(self, batch: Batch, start: int) -> None:
        """Keep the user keys' values of ``batch`` (rows from ``start``); a key with a
        value the parser could not keep is read from the files from now on."""
        for key in batch.user_partial:
            self._user_partial.add(key)
            self._user.pop(key, None)
        for key, (rows, vals) in batch.user.items():
            if key not in self._user_partial:
                ent = self._user.setdefault(key, ([], []))
                ent[0].append(rows.astype(np.int64) + start)
                ent[1].append(vals)

    def _user_joined(self) -> dict[str, tuple[list[np.ndarray], list[Sequence[Any]]]]:
        """The user keys with each key's parts joined: one array, not one per batch read,
        and the values as one frozen block of texts when they are all texts (what a
        saved store holds: see :func:`_frozen`)."""
        return {k: ([np.concatenate(rows)] if len(rows) > 1 else rows,
                    [_frozen([v for part in vals for v in part])])
                for k, (rows, vals) in self._user.items()}

    def rows_with_key(self, key: str, n: int | None = None) -> np.ndarray:
        """Rows (among the first ``n``) whose record has ``key``, from the shapes alone.

        Remembered per key: a live run's next call scans only the rows appended since
        (while no new shape with the key appeared; then the whole store again)."""
        shapes = list(self.key_shapes.get(key, ()))  # appended to by other threads
        sh = self.shape.view(n)
        n = len(sh)
        if not shapes:
            return np.empty(0, dtype=np.int64)
        memo = self._key_rows.get(key)
        if memo is not None and memo[1] == len(shapes):
            done, _, rows = memo
            if n <= done:
                return rows[: np.searchsorted(rows, n)]
        else:
            done, rows = 0, np.empty(0, dtype=np.int64)
        has = np.zeros(len(self.shape_keys), dtype=bool)
        has[shapes] = True
        rows = np.concatenate([rows, done + np.flatnonzero(has[sh[done:]])])
        self._key_rows[key] = (n, len(shapes), rows)
        return rows

    def keys(self) -> list[str]:
        """Every key seen in any record, in first-seen order."""
        return list(self.key_shapes)

    def lazy_get(self, key: str) -> _LazyColumn | None:
        return self._lazy.get(key)

    def user_kept(self, key: str) -> bool:
        """Whether every value of ``key`` so far was kept at ingest (see
        :meth:`user_values`): reading it needs no file."""
        return key in self._user and key not in self._user_partial

    def user_values(self, key: str, start: int, n: int) -> tuple[np.ndarray, list[Any]] | None:
        """Rows in ``[start, n)`` that have the user key ``key`` and their raw values, as
        kept at ingest; None when the key was not kept (not a user key, or a value too
        long or nested)."""
        got = self.user_value_parts(key, start, n)
        return None if got is None else (got[0], got[1](0, len(got[0])))

    def user_value_parts(self, key: str, start: int, n: int
                         ) -> tuple[np.ndarray, Callable[[int, int], list[Any]]] | None:
        """:meth:`user_values` with the values not decoded yet: the rows, and
        ``values(i, j)`` giving the raw values of ``rows[i:j]`` (a caller going over a
        million of them decodes a few thousand at a time)."""
        with self.lock:
            if not self.user_kept(key):
                return None
            row_parts, val_parts = self._user[key]
            # Parts are in row order: a live reader asks for the newest rows only, so
            # only the parts from ``start`` on are joined (not the whole history).
            i = len(row_parts)
            while i > 0 and (not len(row_parts[i - 1]) or row_parts[i - 1][-1] >= start):
                i -= 1
            rows = np.concatenate(row_parts[i:]) if i < len(row_parts) else \
                np.empty(0, dtype=np.int64)
            parts = val_parts[i:]
            if len(row_parts) > 64 and i == 0:  # many small batches: keep them joined
                k = 0 if isinstance(val_parts[0], list) else 1  # a saved block stays one
                self._user[key] = ([*row_parts[:k], np.concatenate(row_parts[k:])],
                                   [*val_parts[:k], [v for p in val_parts[k:] for v in p]])
        lo, hi = (int(x) for x in np.searchsorted(rows, [start, n]))
        return rows[lo:hi], lambda i, j: _values(parts, lo + i, min(lo + j, hi))

    def numeric_get(self, key: str) -> _NumericColumn | None:
        return self._numeric.get(key)

    def numeric_put(self, key: str, col: _NumericColumn) -> None:
        with self.lock:
            cur = self._numeric.get(key)
            if cur is None or cur.rows <= col.rows:
                self._numeric[key] = col

    def lazy_put(self, key: str, col: _LazyColumn) -> None:
        with self.lock:
            cur = self._lazy.get(key)
            if cur is None or cur.rows <= col.rows:
                self._lazy[key] = col


def _frozen(vals: list[Any]) -> Sequence[Any]:
    """``vals`` as one block of UTF-8 texts when they are all texts (JSON pools write
    every value as one), else as they are. A saved reading maps the block and decodes
    the values a caller asks for: 10M records' four user keys were 4.3M string objects,
    380 MB unpickled on every open of the run, for the reports that never read them."""
    if not vals or set(map(type, vals)) != {str}:
        return vals
    block = Messages()
    block.extend(vals)
    return block


def _values(parts: Sequence[Sequence[Any]], lo: int, hi: int) -> list[Any]:
    """Values ``lo`` to ``hi`` of the parts taken one after another."""
    out: list[Any] = []
    at = 0
    for p in parts:
        end = at + len(p)
        if end > lo and at < hi:
            out.extend(p[max(lo - at, 0):min(hi, end) - at])
        at = end
    return out

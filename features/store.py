"""The event store: columns for the fields analyses use, everything else on demand.

Appends are cheap (one batch at a time, while tailing), the merged time order over all
files is kept incrementally, and a :class:`features.events.Events` snapshot taken at any
moment stays valid while more records arrive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.columns import Categorical, Growable
from features.normalize import canonical_id, canonical_str
from features.parse import COMBO_KEYS, ID_KEYS, INT_KEYS, TAG_KEYS, BadLine, Batch

CATEGORICAL_KEYS: tuple[str, ...] = tuple(k for k in COMBO_KEYS if k not in INT_KEYS) + TAG_KEYS
"""Keys stored dictionary-encoded."""

CORE_KEYS: frozenset[str] = frozenset(
    {"created", "message", "exc_text", *COMBO_KEYS, *TAG_KEYS}
)
"""Record keys held in memory; any other key is read from the files on demand."""


@dataclass
class FileInfo:
    """One pool file as the store knows it."""

    index: int
    path: str
    name: str
    status: str = "reading"
    """reading | live | ended | deleted | unreadable | replaced."""
    size: int = 0
    records: int = 0
    bad: int = 0
    blank: int = 0
    error: str | None = None


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


@dataclass
class StoreStats:
    records: int = 0
    bad_lines: int = 0
    recovered: int = 0
    blank_lines: int = 0
    files: int = 0
    other_files: int = 0
    unreadable: int = 0
    errors: list[str] = field(default_factory=list)


class EventStore:
    """Columnar, append-only storage of the events of one pool."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        """Held while the store changes; snapshots are taken under it."""
        self.files: list[FileInfo] = []
        self.bad: list[BadLine] = []
        self.stats = StoreStats()
        self.repaired: dict[int, bytes] = {}
        """Row -> JSON text of a record recovered from bad lines."""
        self.created = Growable(np.float64)
        self.time_fill: dict[int, float] = {}
        """Row -> sort time for the rare records without ``created`` (see _fill_times)."""
        self.file = Growable(np.int32)
        self.line = Growable(np.int32)
        self.offset = Growable(np.int64)
        self.length = Growable(np.int32)
        self.flags = Growable(np.uint8)
        self.ints = {k: Growable(np.int32) for k in INT_KEYS}
        self.codes = {k: Growable(np.int32) for k in CATEGORICAL_KEYS}
        self.cats: dict[str, Categorical] = {
            k: Categorical(canonical_id if k in ID_KEYS else canonical_str)
            for k in CATEGORICAL_KEYS
        }
        self.shape = Growable(np.int32)
        self.shape_keys: list[tuple[str, ...]] = []
        self._shape_index: dict[tuple[str, ...], int] = {}
        self.key_shapes: dict[str, list[int]] = {}
        """Key -> the shapes (distinct key sets) that contain it."""
        self.message: list[str] = []
        self.order = np.empty(0, dtype=np.int64)
        """Row numbers in merged time order."""
        self._sorted_t = np.empty(0, dtype=np.float64)
        self._ordered = 0
        """Rows merged into :attr:`order`; rows after it are merged by :meth:`sync_order`."""
        self._lazy: dict[str, _LazyColumn] = {}
        self._key_rows: dict[str, tuple[int, int, np.ndarray]] = {}
        """Key -> (rows scanned, shapes with the key then, rows that have it)."""
        self._numeric: dict[str, _NumericColumn] = {}
        self._user: dict[str, tuple[list[np.ndarray], list[list[Any]]]] = {}
        """User key -> (row arrays, raw value lists) kept at ingest (see
        ``features.parse.is_user_key``)."""
        self._user_partial: set[str] = set()
        """User keys not (all) kept: read from the files on use."""
        self.defer_order = False
        """While True (a bulk load), appends leave the time order to :meth:`sync_order`."""
        self.listeners: list[Callable[[int, int], None]] = []
        """Called as ``f(first_row, end_row)`` after each append, under the lock."""

    def __len__(self) -> int:
        return len(self.created)

    # -- files -------------------------------------------------------------------------

    def add_file(self, path: str, name: str) -> FileInfo:
        """Register a pool file and return its record."""
        with self.lock:
            info = FileInfo(index=len(self.files), path=path, name=name)
            self.files.append(info)
            self.stats.files = len(self.files)
            return info

    # -- appends -----------------------------------------------------------------------

    def append(self, batch: Batch) -> tuple[int, int]:
        """Add a parsed batch; returns the row range it occupies."""
        with self.lock:
            start = len(self.created)
            n = len(batch)
            info = self.files[batch.file]
            info.records += n
            info.bad += len(batch.bad)
            info.blank += batch.blank
            self.stats.bad_lines += len(batch.bad)
            self.stats.recovered += sum(b.recovered for b in batch.bad)
            self.stats.blank_lines += batch.blank
            self.bad.extend(batch.bad)
            if n == 0:
                return start, start
            self.created.extend(batch.created)
            self.file.extend(np.full(n, batch.file, dtype=np.int32))
            self.line.extend(batch.line)
            self.offset.extend(batch.offset)
            self.length.extend(batch.length)
            self.flags.extend(batch.flags)
            table = batch.combo_table  # values are normalised by the parser
            for j, key in enumerate(COMBO_KEYS):
                if key in INT_KEYS:
                    m = np.fromiter((t[j] for t in table), dtype=np.int64, count=len(table))
                    self.ints[key].extend(m[batch.combo])
                else:
                    m32 = self.cats[key].intern_all(t[j] for t in table)
                    self.codes[key].extend(m32[batch.combo])
            for key, codes, tab in zip(TAG_KEYS, batch.tags, batch.tag_tables, strict=True):
                m32 = np.append(self.cats[key].intern_all(tab), np.int32(-1))
                self.codes[key].extend(m32[codes])
            smap = np.fromiter(
                (self._shape_code(s) for s in batch.shape_table), dtype=np.int32
            )
            self.shape.extend(smap[batch.shape])
            self.message.extend(batch.message)
            for key in batch.user_partial:
                self._user_partial.add(key)
                self._user.pop(key, None)
            for key, (rows, vals) in batch.user.items():
                if key not in self._user_partial:
                    ent = self._user.setdefault(key, ([], []))
                    ent[0].append(rows.astype(np.int64) + start)
                    ent[1].append(vals)
            for i, raw in batch.repaired.items():
                self.repaired[start + i] = raw
            if np.isnan(batch.created).any():
                tk = _fill_times(batch.created, self._last_time())
                for k in np.flatnonzero(np.isnan(batch.created)).tolist():
                    self.time_fill[start + k] = float(tk[k])
            if not self.defer_order:
                self.sync_order()
            self.stats.records = len(self.created)
            end = start + n
            for f in self.listeners:
                f(start, end)
            return start, end

    def _last_time(self) -> float:
        """The latest known time, to place records that lack ``created``."""
        if len(self._sorted_t):
            return float(self._sorted_t[-1])
        return 0.0

    def _shape_code(self, keys: tuple[str, ...]) -> int:
        c = self._shape_index.get(keys)
        if c is None:
            c = self._shape_index[keys] = len(self.shape_keys)
            self.shape_keys.append(keys)
            for k in keys:
                self.key_shapes.setdefault(k, []).append(c)
        return c

    def ordered_rows(self) -> int:
        """Rows merged into :attr:`order` (all rows after :meth:`sync_order`)."""
        return self._ordered

    def reserve(self, rows: int) -> None:
        """Make room for about ``rows`` more rows (a bulk load knows roughly how many)."""
        with self.lock:
            for col in (self.created, self.file, self.line, self.offset,
                        self.length, self.flags, self.shape,
                        *self.ints.values(), *self.codes.values()):
                col.reserve(len(col) + rows)

    def sync_order(self) -> None:
        """Merge rows appended since the last call into the time order."""
        with self.lock:
            n = len(self.created)
            start = self._ordered
            if n == start:
                return
            tk = self.created.view()[start:n]
            if self.time_fill:
                tk = tk.copy()
                for r, t in self.time_fill.items():
                    if start <= r < n:
                        tk[r - start] = t
            local = np.argsort(tk, kind="stable")
            rows = local.astype(np.int64) + start
            ts = tk[local]
            if len(self.order) == 0 or ts[0] >= self._sorted_t[-1]:
                self.order = np.concatenate([self.order, rows])
                self._sorted_t = np.concatenate([self._sorted_t, ts])
            else:
                pos = np.searchsorted(self._sorted_t, ts, side="right")
                self.order = np.insert(self.order, pos, rows)
                self._sorted_t = np.insert(self._sorted_t, pos, ts)
            self._ordered = n

    # -- lazy wide keys ----------------------------------------------------------------

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
            vals = [v for part in val_parts[i:] for v in part]
            if len(row_parts) > 64 and i == 0:  # many small batches: keep them joined
                self._user[key] = ([rows], [vals])
        lo, hi = np.searchsorted(rows, [start, n])
        return rows[lo:hi], vals[lo:hi]

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


def _fill_times(created: np.ndarray, before: float) -> np.ndarray:
    """Sort keys: ``created``, with a missing time taken from the record before it in the
    same batch (or the latest time known), so such records stay near their neighbours."""
    bad = np.isnan(created)
    if not bad.any():
        return created
    tk = created.copy()
    idx = np.where(~bad, np.arange(len(tk)), 0)
    np.maximum.accumulate(idx, out=idx)
    first_good = ~bad[0]
    tk = tk[idx]
    if not first_good:
        lead = np.isnan(tk)
        tk[lead] = before
    return tk


"""A consistent snapshot of a store's events, and access to every key of every record.

:class:`Events` is what queries, things and analyses read. Taking one is cheap (views,
no copies) and it stays valid while the store keeps growing. Keys held in memory come
back as arrays at once; any other key (``fib.iteration``, ``academy.result``, ...) is
read from the files, but only for the records whose key set contains it, and cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from features.columns import FrozenValues
from features.file_values import _levelnames, _scalars, as_numbers, loads_object, read_lines
from features.fmt import short_file
from features.record_keys import FLAG_EXC, FLAG_MSG_CUT, FLAG_REPAIRED
from features.regular import open_regular
from features.store import (
    CATEGORICAL_KEYS,
    INT_KEYS,
    EventStore,
    _LazyColumn,
    _NumericColumn,
)
from features.typed import typed

PSEUDO_KEYS = ("@file", "@line", "@offset", "@row", "@t", "@repaired")
"""Keys every event has that are not in the record: its location and derived values."""

PROGRESS_ROWS = 20_000
"""Records read between two progress calls (at most)."""
NUMERIC_PART = 1 << 16
"""Values of a user key typed at a time by :meth:`Events.numeric_at`."""


def _room(cached: _LazyColumn | None, n: int) -> np.ndarray:
    """A lazy column's buffer with room for ``n`` rows, holding the rows already read.

    A live run extends its columns a poll at a time: the buffer is shared while it has
    room (rows below ``cached.rows`` are never written again, and a snapshot reads only
    its own first rows), and grows by half when it has not, so a poll does not copy the
    whole column. A first read is sized exactly."""
    if cached is None:
        return np.empty(n, dtype=object)
    if len(cached.values) >= n:
        return cached.values
    out = np.empty(n + n // 2, dtype=object)
    out[: cached.rows] = cached.values[: cached.rows]
    return out


class Events:
    """The first ``n`` events of a store, frozen."""

    def __init__(self, store: EventStore, sync: bool = True) -> None:
        """``sync=False`` (a UI thread) takes only the rows already merged into the time
        order, leaving the merge (O(rows)) to the thread that appends."""
        with store.lock:
            if sync:
                store.sync_order()
            self.store = store
            self.n = n = store.ordered_rows()
            self.created = store.created.view(n)
            self.file = store.file.view(n)
            self.line = store.line.view(n)
            self.offset = store.offset.view(n)
            self.length = store.length.view(n)
            self.flags = store.flags.view(n)
            self.shape = store.shape.view(n)
            self.order = store.time_order.rows()
            """Row numbers in merged time order."""
            self.sorted_t = store.time_order.times()
            """Sort time of each row of :attr:`order` (``created``, gaps filled)."""
            self._time_fill = dict(store.time_fill) if store.time_fill else None
            self.ints = {k: v.view(n) for k, v in store.ints.items()}
            self.codes = {k: v.view(n) for k, v in store.codes.items()}
            self.message = store.message
            self.file_names = [f.name for f in store.files]
            self.cat_n = {k: len(c.values) for k, c in store.cats.items()}
            """Distinct values per key at snapshot time (codes in the snapshot are below)."""
            self.file_paths = [f.path for f in store.files]
            # The sorted times give the span in a few steps from each end, past the
            # records whose time is left out (far from their file's neighbours, or none).
            t0, t1 = store.time_bounds(self.order[:n], self.sorted_t[:n], self.created)
        self.t0 = t0
        """The run's start, seconds since the epoch: the first event's time, not counting
        records whose time is far off (see :meth:`EventStore.time_flags`)."""
        self.t1 = t1
        """The run's end: the last event's time, on the same terms as :attr:`t0`."""

    def __len__(self) -> int:
        return self.n

    # -- columns -----------------------------------------------------------------------

    def has_column(self, key: str) -> bool:
        """True when ``key`` is held in memory (fast to filter on)."""
        return key in self.codes or key in self.ints or key in (
            "created", "message", "levelname", *PSEUDO_KEYS)

    def cat(self, key: str) -> tuple[np.ndarray, FrozenValues]:
        """Codes and values of a dictionary-encoded key (code -1 is null). The values are
        those known at snapshot time, a fixed-length view safe to use while the store
        grows in another thread."""
        return self.codes[key], FrozenValues(self.store.cats[key].values, self.cat_n[key])

    def strings(self, key: str) -> np.ndarray:
        """An object array of a categorical key's values (``None`` where missing)."""
        return self.store.cats[key].decode(self.codes[key])

    def values_at(self, key: str, rows: np.ndarray) -> np.ndarray:
        """``column(key)[rows]``, made for those rows only where the key is held in
        memory: a table of 1,000 events of a 10M-record run decoded four whole columns
        (80 MB of pointers each) to show them."""
        if key in self.codes:
            return self.store.cats[key].decode(self.codes[key][rows])
        if key == "levelname":
            return _levelnames(self.ints["levelno"][rows])
        if self.is_lazy(key):
            return self.lazy_at(key, rows)
        return self.column(key)[rows]

    def lazy_at(self, key: str, rows: np.ndarray) -> np.ndarray:
        """``lazy(key)[rows]``, reading the records of ``rows`` only (those whose key set
        has ``key``) unless the column is read already, or kept at ingest, or most rows
        are asked for: ``events --limit 1000`` of a 30M-record run read one key of
        millions of records to print a thousand."""
        rows = np.asarray(rows, dtype=np.int64)
        store = self.store
        cached = store.lazy_get(key)
        done = cached.rows if cached is not None else 0
        if done >= self.n or store.user_kept(key) or len(rows) * 8 > self.n:
            return self.lazy(key)[rows]
        out = np.full(len(rows), None, dtype=object)
        if cached is not None:
            old = np.flatnonzero(rows < done)
            out[old] = cached.values[rows[old]]
        has = np.zeros(len(store.shape_keys), dtype=bool)
        has[list(store.key_shapes.get(key, ()))] = True
        read = np.flatnonzero((rows >= done) & has[self.shape[rows]])
        if len(read):
            got = {row: typed(rec.get(key)) if rec is not None else None
                   for row, rec in self._iter_records(np.unique(rows[read]), None)}
            for i, row in zip(read.tolist(), rows[read].tolist(), strict=True):
                out[i] = got[row]
        return out

    def column(self, key: str, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The values of ``key`` for every event, normalised.

        Numeric keys give float arrays (NaN where missing) or int arrays for the integer
        core keys (-1 where missing); other keys give object arrays (``None`` where
        missing)."""
        if key == "created":
            return self.created
        if key in self.ints:
            return self.ints[key]
        if key in self.codes:
            return self.strings(key)
        if key == "message":
            arr = np.empty(self.n, dtype=object)
            arr[:] = self.message[: self.n]
            return arr
        if key == "levelname":
            return _levelnames(self.ints["levelno"])
        if key == "exc_text":
            return self.lazy("exc_text", progress)
        if key == "@file":
            names = np.array([*self.file_names, None], dtype=object)
            return names[self.file]
        if key == "@line":
            return self.line
        if key == "@offset":
            return self.offset
        if key == "@row":
            return np.arange(self.n)
        if key == "@t":
            return self.created - self.t0
        if key == "@repaired":
            return (self.flags & FLAG_REPAIRED) != 0
        return self.lazy(key, progress)

    def numeric(self, key: str) -> np.ndarray | None:
        """``key`` as floats (NaN where missing), or ``None`` when it is not numeric."""
        col = self.column(key)
        if col.dtype.kind in "fiub":
            out = col.astype(np.float64)
            if key in self.ints:
                out[col == -1] = np.nan
            return out
        # Converted once per row: a live run extends the cached floats with its new rows
        # only (the store's rows are append-only), so a poll costs what arrived.
        store = self.store
        cached = store.numeric_get(key)
        if cached is not None and cached.rows == self.n:
            return None if cached.values is None else cached.values.copy()
        start = cached.rows if cached is not None and cached.rows < self.n else 0
        if cached is not None and start and cached.values is None and cached.seen:
            return None  # a string among the first rows: never numeric
        part = col[start:]
        mask = np.fromiter((v is not None for v in part), dtype=bool, count=len(part))
        vals = part[mask].tolist()
        seen = bool(vals) or (cached is not None and start > 0 and cached.seen)
        nums = as_numbers(vals)  # an integer no int64 holds, kept as text, is a number
        if nums is None:
            store.numeric_put(key, _NumericColumn(self.n, None, True))
            return None
        vals = nums
        out = np.full(self.n, np.nan)
        if start and cached is not None and cached.values is not None:
            out[:start] = cached.values[:start]
        out[start:][mask] = np.asarray(vals, dtype=np.float64)
        store.numeric_put(key, _NumericColumn(self.n, out if seen else None, seen))
        return out.copy() if seen else None

    def numeric_at(self, key: str, rows: np.ndarray) -> np.ndarray | None:
        """``numeric(key)[rows]`` (the same decision on whether the key is numeric, made
        over every row that has it), without making or caching the whole column when
        the key's values were kept at ingest: 10M records' user keys were three float
        and three object columns of 80 MB each, for the few rows asked."""
        kept = self.store.user_value_parts(key, 0, self.n) if self.is_lazy(key) else None
        if kept is None:
            col = self.numeric(key)
            return None if col is None else col[rows]
        krows, values = kept
        floats = np.full(len(krows), np.nan)
        numeric = False
        # A few thousand values at a time (a key's values over a whole 10M-record run
        # were 1.2M strings and as many typed objects at once); the key is numeric when
        # every part's non-null values are numbers and one has a value.
        for a in range(0, len(krows), NUMERIC_PART):
            tv = _scalars(values(a, a + NUMERIC_PART))
            present = np.fromiter((v is not None for v in tv), dtype=bool, count=len(tv))
            vals = tv[present].tolist()
            if not vals:
                continue
            nums = as_numbers(vals)
            if nums is None:
                return None
            numeric = True
            floats[a:a + NUMERIC_PART][present] = np.asarray(nums, dtype=np.float64)
        if not numeric:
            return None
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(len(rows), np.nan)
        if len(krows):
            pos = np.minimum(np.searchsorted(krows, rows), len(krows) - 1)
            hit = krows[pos] == rows
            out[hit] = floats[pos[hit]]
        return out

    def has_key(self, key: str) -> np.ndarray:
        """Boolean mask: the record has ``key`` (with any value, including null)."""
        if key in PSEUDO_KEYS:
            return np.ones(self.n, dtype=bool)
        mask = np.zeros(self.n, dtype=bool)
        mask[self.store.rows_with_key(key, self.n)] = True
        return mask

    def keys(self) -> list[str]:
        """All keys present in any record of the snapshot, plus the pseudo keys."""
        return [*self.store.keys(), *PSEUDO_KEYS]

    def key_counts(self) -> dict[str, int]:
        """How many events carry each key."""
        counts = np.bincount(self.shape, minlength=len(self.store.shape_keys))
        out: dict[str, int] = {}
        for s, keys in enumerate(self.store.shape_keys):
            c = int(counts[s]) if s < len(counts) else 0
            if c:
                for k in keys:
                    out[k] = out.get(k, 0) + c
        return out

    def is_lazy(self, key: str) -> bool:
        """Whether ``key`` is read from the files on use (not a column in memory)."""
        return not (key in ("created", "message", "levelname") or key in self.ints
                    or key in self.codes or key in PSEUDO_KEYS)

    def prefetch(self, keys: Iterable[str],
                 progress: Callable[[int, int], None] | None = None) -> None:
        """Read several lazy keys in one pass over the files: each record that carries
        any of them is read once, instead of once per key (``column`` then finds them
        cached)."""
        store = self.store
        todo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key in dict.fromkeys(keys):
            if not self.is_lazy(key) or key not in store.key_shapes or store.user_kept(key):
                continue  # kept user keys are built from memory by ``column``
            cached = store.lazy_get(key)
            if cached is not None and cached.rows >= self.n:
                continue
            start = cached.rows if cached is not None else 0
            values = _room(cached, self.n)
            rows = store.rows_with_key(key, self.n)
            todo[key] = (values, rows[rows >= start])
        if len(todo) < 2:  # one key: the plain path does the same work
            for key in todo:
                self.lazy(key, progress)
            return
        union = np.unique(np.concatenate([rows for _, rows in todo.values()]))
        items = [(k, v) for k, (v, _) in todo.items()]
        for row, rec in self._iter_records(union, progress):
            if rec is None:
                continue
            for key, values in items:
                if key in rec:
                    values[row] = typed(rec[key])
        for key, (values, _) in todo.items():
            store.lazy_put(key, _LazyColumn(self.n, values))

    def lazy(self, key: str, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Read ``key`` from the files for the records that have it (cached)."""
        store = self.store
        cached = store.lazy_get(key)
        if cached is not None and cached.rows >= self.n:
            return cached.values[: self.n]
        start = cached.rows if cached is not None else 0
        values = _room(cached, self.n)
        kept = store.user_values(key, start, self.n)
        if kept is not None:  # a user key's short values, kept at ingest
            krows, kvals = kept
            values[krows] = _scalars(kvals)
            store.lazy_put(key, _LazyColumn(self.n, values))
            return values[: self.n]
        rows = store.rows_with_key(key, self.n)
        rows = rows[rows >= start]
        if len(rows):
            for row, rec in self._iter_records(rows, progress):
                values[row] = typed(rec.get(key)) if rec is not None else None
        store.lazy_put(key, _LazyColumn(self.n, values))
        return values[: self.n]

    # -- records -----------------------------------------------------------------------

    def record(self, row: int) -> dict[str, Any] | None:
        """The raw record of ``row`` exactly as written (``None`` if it cannot be read)."""
        for _, rec in self._iter_records(np.array([row]), None):
            return rec
        return None

    def raw(self, row: int) -> bytes | None:
        """The bytes of ``row``'s line in its file."""
        if row in self.store.repaired:
            return self.store.repaired[row]
        try:
            fd = open_regular(self.file_paths[self.file[row]])
        except OSError:
            return None
        try:
            return os.pread(fd, int(self.length[row]), int(self.offset[row]))
        finally:
            os.close(fd)

    def records(self, rows: Iterable[int], keep: bool = False) -> list[dict[str, Any] | None]:
        """Raw records for many rows, in the order given. ``keep``: remembered by the
        store (a row's record never changes), for the few records asked for again and
        again (each agent's launch and shutdown, on every poll of a live run: 5,000
        records read from the files per poll on 3M records); the dicts are shared, not to
        be changed."""
        rows = np.asarray(list(rows), dtype=np.int64)
        if not keep:
            out: dict[int, dict[str, Any] | None] = dict(self._iter_records(rows, None))
            return [out.get(int(r)) for r in rows]
        kept = self.store.kept_records
        todo = [r for r in rows.tolist() if r not in kept]
        if len(kept) + len(todo) > KEPT_RECORDS:
            kept.clear()
            todo = list(dict.fromkeys(rows.tolist()))
        if todo:
            for r, rec in self._iter_records(np.asarray(todo, dtype=np.int64), None):
                if rec is not None:  # an unreadable file may be readable again
                    kept[r] = rec
        return [kept.get(r) for r in rows.tolist()]

    def _iter_records(
        self, rows: np.ndarray, progress: Callable[[int, int], None] | None
    ) -> Iterable[tuple[int, dict[str, Any] | None]]:
        """Yield (row, record) for ``rows``, reading each file in offset order in spans."""
        repaired = self.store.repaired
        total = len(rows)
        done = 0
        files = self.file[rows]
        for f in np.unique(files):
            frows = rows[files == f]
            frows = frows[np.argsort(self.offset[frows], kind="stable")]
            for a in range(0, len(frows), PROGRESS_ROWS):  # progress a few times a file
                some = frows[a:a + PROGRESS_ROWS]
                lines = read_lines(self.file_paths[f], self.offset[some], self.length[some])
                for k, r in enumerate(some.tolist()):
                    if r in repaired:
                        yield r, loads_object(repaired[r])
                    else:
                        yield r, None if lines is None else loads_object(lines[k])
                done += len(some)
                if progress is not None:
                    progress(done, total)

    # -- helpers -----------------------------------------------------------------------

    def sort_key(self) -> np.ndarray:
        """Per row, the time it is sorted by: ``created``, or for a record without one
        the time of the record before it."""
        if not self._time_fill:
            return self.created
        key = np.array(self.created, copy=True)
        for r, t in self._time_fill.items():
            if r < self.n:
                key[r] = t
        return key

    def cite(self, row: int) -> str:
        """``file:line`` of a row (its file's uuid prefix), for citing it; ``-`` for no row."""
        if row < 0 or row >= self.n:
            return "-"
        return f"{short_file(self.file_names[self.file[row]])}:{self.line_text(row)}"

    def line_text(self, row: int) -> str:
        """A row's line number; ``?`` while it is not known (a file's end read before the
        rest of it, during a first load: :class:`features.reader.Ahead`)."""
        line = int(self.line[row])
        return str(line) if line > 0 else "?"

    def has_exc(self) -> np.ndarray:
        return (self.flags & FLAG_EXC) != 0

    def message_cut(self, row: int) -> bool:
        return bool(self.flags[row] & FLAG_MSG_CUT)


KEPT_RECORDS = 1 << 17
"""Records a store remembers for ``Events.records(keep=True)`` before it forgets them all."""


__all__ = ["CATEGORICAL_KEYS", "INT_KEYS", "PSEUDO_KEYS", "Events"]

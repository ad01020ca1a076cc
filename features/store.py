"""The event store: columns for the fields analyses use, everything else on demand.

Appends are cheap (one batch at a time, while tailing), the merged time order over all
files is kept incrementally, and a :class:`features.events.Events` snapshot taken at any
moment stays valid while more records arrive.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.batch import BadLine, Batch, Segment
from features.columns import Categorical, Growable, Messages
from features.normalize import canonical_id, canonical_str
from features.parse import COMBO_KEYS, ID_KEYS, INT_KEYS, TAG_KEYS
from features.time_order import TimeOrder

CATEGORICAL_KEYS: tuple[str, ...] = tuple(k for k in COMBO_KEYS if k not in INT_KEYS) + TAG_KEYS
"""Keys stored dictionary-encoded."""

CORE_KEYS: frozenset[str] = frozenset(
    {"created", "message", "exc_text", *COMBO_KEYS, *TAG_KEYS}
)
"""Record keys held in memory; any other key is read from the files on demand."""

OUTLIER_S = 3600.0
"""A record whose time is this far from the median of its neighbourhood in its own file
(itself and the two records before and after it) is an outlier: kept, shown, but left
out of the run's start and end. One file is one process (or forked children on one
host): one clock, written in order. Legitimate disorder inside a file is a record
waiting for the handler's lock or the GIL (milliseconds, a few seconds at worst) or an
NTP step (seconds to minutes, and every later record moves with it, which a median
follows); an hour is ~1000x that. Garbage times are years off (``0``, ``1.0``,
milliseconds written as seconds). A median of five ordered values is the middle one,
so records in order are never outliers, however sparse (a heartbeat every 3 hours)."""

FAR_S = 7 * 86400.0
"""A file's first and last two records have no neighbours on one side, and one that
is earlier than the records after it (later than those before it) is in order: a
process may log at start and then wait for hours. Such a record is an outlier only
when it is more than a week from the median of the file's first (last) five records:
runs last seconds to days, garbage is years off. The same bound judges the records of
files too small to judge alone (:data:`SMALL_FILE`), against the pool's median time."""

SMALL_FILE = 5
"""Files with fewer records with a time than this are judged against the pool."""

_CTX = 6
"""Records of a file kept to judge the next batch's records (see :meth:`_judge`)."""


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
    source: str | None = None
    """The kind of source whose events file this is (:mod:`features.sources`), or ``None``
    for a file of the pool (a process of the run)."""


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
    time_outliers: int = 0
    """Records left out of the run's start and end: a time far from the records around
    them in their file, or no usable time (see :meth:`EventStore.time_bounds`)."""
    errors: list[str] = field(default_factory=list)


@dataclass
class _FileTimes:
    """What a file's next batch is judged with: its last records with a time."""

    rows: np.ndarray
    times: np.ndarray
    count: int = 0
    """Records with a time the file has delivered."""


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
        self.message = Messages()
        self.time_order = TimeOrder()
        """Rows merged in time order with their sort times; rows appended later are
        merged by :meth:`sync_order`."""
        self._lazy: dict[str, _LazyColumn] = {}
        self._key_rows: dict[str, tuple[int, int, np.ndarray]] = {}
        """Key -> (rows scanned, shapes with the key then, rows that have it)."""
        self._numeric: dict[str, _NumericColumn] = {}
        self.kept_records: dict[int, Any] = {}
        """Row -> its record, as read for ``Events.records(keep=True)``."""
        self._user: dict[str, tuple[list[np.ndarray], list[list[Any]]]] = {}
        """User key -> (row arrays, raw value lists) kept at ingest (see
        ``features.parse.is_user_key``)."""
        self._user_partial: set[str] = set()
        """User keys not (all) kept: read from the files on use."""
        self.defer_order = False
        """While True (a bulk load), appends leave the time order to :meth:`sync_order`."""
        self.listeners: list[Callable[[int, int], None]] = []
        """Called as ``f(first_row, end_row)`` after each append, under the lock."""
        self.outliers: dict[int, str] = {}
        """Row -> why its time is left out of the run's start and end, for the files
        judged alone (records of small files are judged in :meth:`time_flags`)."""
        self.no_time: list[int] = []
        """Rows whose ``created`` is there but is no usable time (NaN in the column),
        in row order."""
        self._times: dict[int, _FileTimes] = {}
        self._small: set[int] = set()
        """Files with fewer than :data:`SMALL_FILE` records with a time."""
        self._flag_gen = 0
        """Counts changes of :attr:`outliers` and of the small files' records."""
        self._small_memo: tuple[np.ndarray, np.ndarray] | None = None
        self._flags_memo: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.created)

    _UNSAVED = ("lock", "listeners", "kept_records", "_lazy", "_key_rows", "_numeric",
                "_small_memo", "_flags_memo")
    """What a saved store (``features.cache``) leaves out: locks, callers' callbacks, and
    what is read from the files or derived again on use."""

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNSAVED}
        # A user key's parts joined: one array, not one per batch read.
        state["_user"] = {
            k: ([np.concatenate(rows)], [[v for part in vals for v in part]])
            if len(rows) > 1 else (rows, vals) for k, (rows, vals) in self._user.items()}
        # Each file's last few times as four arrays for all files, not two per file.
        ft = list(self._times.items())
        state["_times"] = (np.array([f for f, _ in ft], dtype=np.int64),
                           np.array([t.count for _, t in ft], dtype=np.int64),
                           np.array([len(t.rows) for _, t in ft], dtype=np.int64),
                           np.concatenate([t.rows for _, t in ft]) if ft else
                           np.empty(0, np.int64),
                           np.concatenate([t.times for _, t in ft]) if ft else np.empty(0))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        files, counts, sizes, rows, times = state["_times"]
        ends = np.cumsum(sizes).tolist()
        self._times = {f: _FileTimes(rows[e - k:e].copy(), times[e - k:e].copy(), c)
                       for f, c, k, e in zip(files.tolist(), counts.tolist(),
                                             sizes.tolist(), ends, strict=True)}
        self.lock = threading.RLock()
        self.listeners = []
        self._lazy, self._key_rows, self._numeric = {}, {}, {}
        self.kept_records = {}
        self._small_memo = self._flags_memo = None

    # -- files -------------------------------------------------------------------------

    def add_file(self, path: str, name: str, source: str | None = None) -> FileInfo:
        """Register a pool file (or a source's events file) and return its record."""
        with self.lock:
            info = FileInfo(index=len(self.files), path=path, name=name, source=source)
            self.files.append(info)
            self.stats.files = len(self.files)
            return info

    # -- appends -----------------------------------------------------------------------

    def append(self, batch: Batch) -> tuple[int, int]:
        """Add a parsed batch; returns the row range it occupies."""
        with self.lock:
            start = len(self.created)
            n = len(batch)
            parts = batch.parts()
            self._count(batch, parts)
            if n == 0:
                return start, start
            self.created.extend(batch.created)
            self.file.extend(np.full(n, batch.file, dtype=np.int32) if len(parts) == 1 else
                             np.repeat(np.array([p.file for p in parts], dtype=np.int32),
                                       [p.rows for p in parts]))
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
            self.no_time.extend(start + k for k in batch.odd_times)
            at = start
            for part in parts:
                self._judge(part.file, at, batch.created[at - start:at - start + part.rows])
                at += part.rows
            if not self.defer_order:
                self.sync_order()
            self.stats.records = len(self.created)
            end = start + n
            for f in self.listeners:
                f(start, end)
            return start, end

    def _count(self, batch: Batch, parts: list[Segment]) -> None:
        """Each file's records, bad and blank lines of ``batch`` (a merged batch holds
        several files' blocks), and the store's totals."""
        for part in parts:
            info = self.files[part.file]
            info.records += part.rows
            info.blank += part.blank
        for b in batch.bad:
            self.files[b.file].bad += 1
        self.stats.bad_lines += len(batch.bad)
        self.stats.recovered += sum(b.recovered for b in batch.bad)
        self.stats.blank_lines += batch.blank
        self.bad.extend(batch.bad)

    # -- the run's bounds ---------------------------------------------------------------

    def _judge(self, f: int, start: int, t: np.ndarray) -> None:
        """Judge the times of a batch of file ``f`` (rows from ``start``) against their
        neighbours in the file, with the file's last records before them; those are
        judged again, now that they have neighbours after them."""
        fin = np.isfinite(t)
        if fin.all():
            rows, tt = np.arange(start, start + len(t), dtype=np.int64), t
        else:
            idx = np.flatnonzero(fin)
            rows, tt = idx.astype(np.int64) + start, t[idx]
        if not len(tt):
            return
        ft = self._times.get(f)
        if ft is None:
            ft = self._times[f] = _FileTimes(np.empty(0, np.int64), np.empty(0))
        seq_t = np.concatenate([ft.times, tt])
        seq_r = np.concatenate([ft.rows, rows])
        before, total = ft.count, ft.count + len(tt)
        ft.count = total
        if total < SMALL_FILE or f in self._small:
            self._flag_gen += 1  # the small files' records change
            self._small_memo = None
        if total < SMALL_FILE:
            ft.rows, ft.times = seq_r, seq_t
            self._small.add(f)
            return
        self._small.discard(f)
        base = before - len(ft.times)  # the file position of seq_t[0]
        k0 = 0 if before < SMALL_FILE else max(0, len(ft.times) - 3)
        ft.rows, ft.times = seq_r[-_CTX:], seq_t[-_CTX:]
        if self.outliers:
            for r in seq_r[k0 : len(seq_r) - len(rows)].tolist():
                if self.outliers.get(r) == _FAR:
                    del self.outliers[r]
                    self._flag_gen += 1
        far = _outliers(seq_t, base, k0)
        if far is not None:
            self._flag_gen += 1
            for r in seq_r[k0:][far].tolist():
                self.outliers[r] = _FAR

    def time_flags(self) -> np.ndarray:
        """Rows whose (finite) time is left out of the run's start and end, sorted: the
        outliers of the files judged alone, and the records of small files more than
        :data:`FAR_S` from the pool's median time. (Records with no usable time have
        none to leave out: see :attr:`no_time`.)"""
        with self.lock:
            n = len(self.time_order)
            key = (n, self._flag_gen)
            if self._flags_memo is not None and self._flags_memo[0] == key:
                return self._flags_memo[1]
            rows = [r for r in self.outliers if r < n]
            if self._small and n:
                if self._small_memo is None:
                    fts = [self._times[f] for f in self._small]
                    self._small_memo = (np.concatenate([ft.rows for ft in fts]),
                                        np.concatenate([ft.times for ft in fts]))
                s_rows, s_times = self._small_memo
                mid = self.time_order.time_at(n // 2)
                rows.extend(s_rows[(np.abs(s_times - mid) > FAR_S) & (s_rows < n)].tolist())
            out = np.array(sorted(rows), dtype=np.int64)
            self._flags_memo = (key, out)
            self.stats.time_outliers = len(out) + bisect.bisect_left(self.no_time, n)
            return out

    def time_bounds(self, order: np.ndarray, sorted_t: np.ndarray,
                    created: np.ndarray) -> tuple[float, float]:
        """The run's start and end among rows ``order`` (time-sorted, sort times
        ``sorted_t``): the first and last times that are not left out (see
        :meth:`time_flags`) and are the record's own ``created`` (not a filled gap).
        Falls back to the plain span when no such record exists."""
        if not len(order):
            return 0.0, 0.0
        flagged = self.time_flags()
        src = [f.index for f in self.files if f.source is not None]
        if src and len(src) < len(self.files):
            # Other sources' events do not stretch the run: a Slurm queue of 12 h before
            # the pool's first record is the run's prehistory, said by its source, not
            # 12 h of the workflow's wall time.
            mine = ~np.isin(self.file.view()[order], src)
            if mine.any():
                order, sorted_t = order[mine], sorted_t[mine]
        lo = _first_good(order, created, flagged, 1)
        hi = _first_good(order, created, flagged, -1)
        if lo is None or hi is None:
            return float(sorted_t[0]), float(sorted_t[-1])
        return float(sorted_t[lo]), float(sorted_t[hi])

    def time_note(self) -> str | None:
        """A sentence naming the records left out of the run's bounds, or None."""
        flagged = self.time_flags()
        n = self.stats.time_outliers
        if not n:
            return None
        lines = self.line.view()
        names = [f.name for f in self.files]
        file_of = self.file.view()
        first = sorted([*flagged[:3].tolist(), *self.no_time[:3]])[:3]
        where = [f"{names[file_of[r]]}:{lines[r]}" for r in first]
        more = f" and {n - 3} more" if n > 3 else ""
        them, their, are = ("them", "their", "are") if n != 1 else ("it", "its", "is")
        return (f"{n} record{'s' if n != 1 else ''} with a time far from the records "
                f"around {them} in {their} file, or with no usable time, {are} left out of "
                f"the run's start and end: {', '.join(where)}{more}")

    def _last_time(self) -> float:
        """The latest known time, to place records that lack ``created``."""
        return self.time_order.time_at(-1) if len(self.time_order) else 0.0

    def _shape_code(self, keys: tuple[str, ...]) -> int:
        c = self._shape_index.get(keys)
        if c is None:
            c = self._shape_index[keys] = len(self.shape_keys)
            self.shape_keys.append(keys)
            for k in keys:
                self.key_shapes.setdefault(k, []).append(c)
        return c

    @property
    def order(self) -> np.ndarray:
        """Row numbers in merged time order, as a read-only view."""
        return self.time_order.rows()

    def ordered_rows(self) -> int:
        """Rows merged into :attr:`order` (all rows after :meth:`sync_order`)."""
        return len(self.time_order)

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
            start = len(self.time_order)
            if n == start:
                return
            tk = self.created.view()[start:n]
            if self.time_fill:
                tk = tk.copy()
                for r, t in self.time_fill.items():
                    if start <= r < n:
                        tk[r - start] = t
            local = np.argsort(tk, kind="stable")
            self.time_order.merge(local.astype(np.int64) + start, tk[local])

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


_FAR = "far from the records around it in its file"


def _outliers(t: np.ndarray, base: int, k0: int) -> np.ndarray | None:
    """Which of ``t[k0:]`` (times of one file in file order, ``t[0]`` at file position
    ``base``, at least :data:`SMALL_FILE` of them) are outliers; None when none is.

    A record is compared with the median of the five records centred on it. The first
    two and last two records of what is known have no such window: they are compared
    with the median of the first (last) five, by :data:`OUTLIER_S` when out of order
    (later than what follows, earlier than what precedes), else by :data:`FAR_S`.
    Records in order are never outliers. Usually one pass decides: no two records within
    four places of each other are :data:`OUTLIER_S` / 4 apart, so none is."""
    m = len(t)
    gaps = np.abs(np.diff(t[max(k0 - 4, 0):]))
    if not len(gaps) or gaps.max() <= OUTLIER_S / 4:
        return None
    pos = np.arange(k0, m)
    out = np.zeros(m - k0, dtype=bool)
    mid = (pos + base >= 2) & (pos <= m - 3)
    if mid.any():
        med = np.median(np.lib.stride_tricks.sliding_window_view(t, 5), axis=1)
        p = pos[mid]
        out[mid] = np.abs(t[p] - med[p - 2]) > OUTLIER_S
    head = pos + base < 2
    if head.any():  # base is 0: the file's first records
        late = t[pos[head]] - float(np.median(t[:5]))
        out[head] = (late > OUTLIER_S) | (-late > FAR_S)
    tail = ~mid & ~head
    if tail.any():
        early = float(np.median(t[m - 5 :])) - t[pos[tail]]
        out[tail] = (early > OUTLIER_S) | (-early > FAR_S)
    return out if out.any() else None


def _first_good(order: np.ndarray, created: np.ndarray, flagged: np.ndarray,
                step: int) -> int | None:
    """The first index into ``order`` (from the end when ``step`` is -1) whose row has
    its own finite time and is not flagged; a few steps, then one vectorised pass."""
    n = len(order)
    idx = range(n) if step > 0 else range(n - 1, -1, -1)
    for k, i in enumerate(idx):
        if k == 64:
            break
        r = order[i]
        t = created[r]
        if t == t and not (len(flagged) and _has(flagged, r)):
            return i
    else:
        return None
    good = ~np.isnan(created[order])
    if len(flagged):
        good &= ~np.isin(order, flagged)
    hits = np.flatnonzero(good)
    if not len(hits):
        return None
    return int(hits[0] if step > 0 else hits[-1])


def _has(sorted_rows: np.ndarray, r: int) -> bool:
    k = int(np.searchsorted(sorted_rows, r))
    return k < len(sorted_rows) and int(sorted_rows[k]) == r


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


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

from features import time_outliers
from features.batch import BadLine, Batch, Segment
from features.columns import Categorical, Growable, Messages
from features.lazy_keys import LazyKeys
from features.lazy_keys import _LazyColumn as _LazyColumn
from features.lazy_keys import _NumericColumn as _NumericColumn
from features.normalize import canonical_id, canonical_str
from features.parse import COMBO_KEYS, ID_KEYS, TAG_KEYS
from features.parse import INT_KEYS as INT_KEYS
from features.time_order import TimeOrder
from features.time_outliers import FAR_S as FAR_S
from features.time_outliers import OUTLIER_S as OUTLIER_S
from features.time_outliers import SMALL_FILE as SMALL_FILE
from features.time_outliers import _FileTimes as _FileTimes

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
    source: str | None = None
    """The kind of source whose events file this is (:mod:`features.sources`), or ``None``
    for a file of the pool (a process of the run)."""


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


class EventStore(LazyKeys):
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
        self.file = Growable(np.int8)
        """Index in :attr:`files` of each row's file, in the narrowest type the files'
        count allows (as the codes below; widen before arithmetic)."""
        self.line = Growable(np.int32)
        self.offset = Growable(np.int64)
        self.length = Growable(np.int32)
        self.flags = Growable(np.uint8)
        self.ints = {k: Growable(np.int8) for k in INT_KEYS}
        """Integer keys (-1 where missing) in the narrowest type their values allow."""
        self.codes = {k: Growable(np.int8) for k in CATEGORICAL_KEYS}
        """Codes of each categorical key in the narrowest type its values allow
        (:meth:`Growable.hold`): compare them, index with them, and widen them
        (``astype(np.int64)``) before arithmetic."""
        self.cats: dict[str, Categorical] = {
            k: Categorical(canonical_id if k in ID_KEYS else canonical_str)
            for k in CATEGORICAL_KEYS
        }
        self.shape = Growable(np.int8)
        """Index in :attr:`shape_keys` of each row's key set (narrowest type, as the
        codes)."""
        self.payload_rows = Growable(np.int64)
        """Rows (ascending) of the records that carry an action's arguments or result."""
        self.payload_args = Growable(np.int32)
        """Per row of :attr:`payload_rows`: the typed length of its arguments (-1 for
        none; a line is at most 256 MB): the action's ``args_len``."""
        self.payload_result = Growable(np.int32)
        """Likewise of its result: the action's ``result_len``."""
        self.shape_keys: list[tuple[str, ...]] = []
        self._shape_index: dict[tuple[str, ...], int] = {}
        self.key_shapes: dict[str, list[int]] = {}
        """Key -> the shapes (distinct key sets) that contain it."""
        self.message = Messages()
        self.time_order = TimeOrder()
        """Rows merged in time order with their sort times; rows appended later are
        merged by :meth:`sync_order`."""
        self._init_lazy_keys()  # the keys without a column (features.lazy_keys)
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
        """Files with fewer than :data:`~features.time_outliers.SMALL_FILE` records with
        a time."""
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
        state["_user"] = self._user_joined()
        state["_times"] = time_outliers.pack(self._times)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._times = time_outliers.unpack(state["_times"])
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

    def append(self, batch: Batch, judge: bool = True) -> tuple[int, int]:
        """Add a parsed batch; returns the row range it occupies. ``judge=False``: its
        times are judged against each other only, and in their file later
        (:meth:`judge_rows`): a block stored before the part of its file that comes
        before it (:class:`features.reader.Ahead`)."""
        with self.lock:
            start = len(self.created)
            n = len(batch)
            parts = batch.parts()
            self._count(batch, parts)
            if n == 0:
                return start, start
            self.created.extend(batch.created)
            self.file.hold(len(self.files))
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
                    if len(m):
                        self.ints[key].hold(int(m.max()), int(m.min()))
                    self.ints[key].extend(m[batch.combo])
                else:
                    m32 = self.cats[key].intern_all(t[j] for t in table)
                    self.codes[key].hold(len(self.cats[key].values))
                    self.codes[key].extend(m32[batch.combo])
            for key, codes, tab in zip(TAG_KEYS, batch.tags, batch.tag_tables, strict=True):
                m32 = np.append(self.cats[key].intern_all(tab), np.int32(-1))
                self.codes[key].hold(len(self.cats[key].values))
                self.codes[key].extend(m32[codes])
            smap = np.fromiter(
                (self._shape_code(s) for s in batch.shape_table), dtype=np.int32
            )
            self.shape.hold(len(self.shape_keys))
            self.shape.extend(smap[batch.shape])
            self.message.extend(batch.message)
            self._keep_user(batch, start)
            if batch.payload is not None:
                rows, args, result = batch.payload
                self.payload_rows.extend(rows.astype(np.int64) + start)
                self.payload_args.extend(_length_codes(args))
                self.payload_result.extend(_length_codes(result))
            for i, raw in batch.repaired.items():
                self.repaired[start + i] = raw
            if np.isnan(batch.created).any():
                tk = _fill_times(batch.created, self._last_time())
                for k in np.flatnonzero(np.isnan(batch.created)).tolist():
                    self.time_fill[start + k] = float(tk[k])
            self.no_time.extend(start + k for k in batch.odd_times)
            at = start
            for part in parts:
                t = batch.created[at - start:at - start + part.rows]
                if judge:
                    self._judge(part.file, at, t)
                else:
                    self._judge_alone(at, t)
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

    def judge_rows(self, f: int, start: int, n: int) -> None:
        """Judge the times of rows ``start``.. ``start + n`` of file ``f``, stored judged
        alone (``append(judge=False)``), now that the file's records before them are."""
        with self.lock:
            for r in range(start, start + n):
                if self.outliers.pop(r, None) is not None:
                    self._flag_gen += 1
            self._judge(f, start, self.created.view()[start:start + n])

    def _judge_alone(self, start: int, t: np.ndarray) -> None:
        """Judge a block's times against each other only (its file's records before it
        are not read yet): a garbage time in it must not stretch the run's bounds
        meanwhile. :meth:`judge_rows` judges it again in its place."""
        rows, tt = time_outliers.finite(start, t)
        if len(tt) < time_outliers.SMALL_FILE:
            return
        ft = _FileTimes(np.empty(0, np.int64), np.empty(0))
        changes, _ = time_outliers.judge(ft, rows, tt, self.outliers, False)
        self._flag_gen += changes

    def _judge(self, f: int, start: int, t: np.ndarray) -> None:
        """Judge the times of a batch of file ``f`` (rows from ``start``) against their
        neighbours in the file (:func:`features.time_outliers.judge`)."""
        rows, tt = time_outliers.finite(start, t)
        if not len(tt):
            return
        ft = self._times.get(f)
        if ft is None:
            ft = self._times[f] = _FileTimes(np.empty(0, np.int64), np.empty(0))
        was_small = f in self._small
        changes, small = time_outliers.judge(ft, rows, tt, self.outliers, was_small)
        self._flag_gen += changes
        if small or was_small:
            self._small_memo = None
        if small:
            self._small.add(f)
        else:
            self._small.discard(f)

    def time_flags(self) -> np.ndarray:
        """Rows whose (finite) time is left out of the run's start and end, sorted: the
        outliers of the files judged alone, and the records of small files more than
        :data:`~features.time_outliers.FAR_S` from the pool's median time. (Records
        with no usable time have none to leave out: see :attr:`no_time`.)"""
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
        lo = time_outliers.first_good(order, created, flagged, 1)
        hi = time_outliers.first_good(order, created, flagged, -1)
        if lo is None or hi is None:
            return float(sorted_t[0]), float(sorted_t[-1])
        return float(sorted_t[lo]), float(sorted_t[hi])

    def time_note(self) -> str | None:
        """A sentence naming the records left out of the run's bounds, or None."""
        flagged = self.time_flags()
        n = self.stats.time_outliers
        if not n:
            return None
        # Its examples are the first by file and line, whatever order the rows were
        # read in (a first load reads the end of some files first).
        rows = np.concatenate([flagged.astype(np.int64),
                               np.asarray(self.no_time, dtype=np.int64)])
        file, line = self.file.view(), self.line.view()
        key = (file[rows].astype(np.int64) << 32) + line[rows]
        if len(rows) > 3:  # a run of garbage times flags millions: no sort of them all
            pick = np.argpartition(key, 3)[:3]
            rows, key = rows[pick], key[pick]
        first = rows[np.argsort(key, kind="stable")].tolist()
        return time_outliers.note(n, first, [f.name for f in self.files], file, line)

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


def _length_codes(lengths: np.ndarray) -> np.ndarray:
    """Payload lengths as stored: int32, -1 for none (NaN)."""
    return np.where(np.isnan(lengths), -1, lengths).astype(np.int32)


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


"""Which records' times the run's start and end leave out: each file judged against itself.

A pool file is one process (or forked children on one host): one clock, written in order.
A record whose time is far from its neighbours in its file is an outlier: kept and
shown, but the run's bounds (:meth:`features.store.EventStore.time_bounds`) skip it, so
one garbage ``created`` cannot stretch a run of minutes over decades. The store judges
each batch as it is appended (:func:`judge`), with the few records of the file before it
(:class:`_FileTimes`); here is how, apart from the store's columns and appends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
"""Records of a file kept to judge the next batch's records (see :func:`judge`)."""

_FAR = "far from the records around it in its file"


@dataclass
class _FileTimes:
    """What a file's next batch is judged with: its last records with a time. (Never
    pickled itself: a saved store holds all files' as a few arrays, :func:`pack`.)"""

    rows: np.ndarray
    times: np.ndarray
    count: int = 0
    """Records with a time the file has delivered."""


def finite(start: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows (numbered from ``start``) of a batch's times ``t`` that are a time, and
    those times: the others have none to judge (see ``EventStore.no_time``)."""
    fin = np.isfinite(t)
    if fin.all():
        return np.arange(start, start + len(t), dtype=np.int64), t
    idx = np.flatnonzero(fin)
    return idx.astype(np.int64) + start, t[idx]


def judge(ft: _FileTimes, rows: np.ndarray, tt: np.ndarray, outliers: dict[int, str],
          small: bool) -> tuple[int, bool]:
    """Judge a file's new times ``tt`` (rows ``rows``) against their neighbours in the
    file, with its last records before them (``ft``, moved on past them); those are
    judged again, now that they have neighbours after them. ``outliers`` (row -> why)
    is updated in place; ``small``: the file was too small to judge alone.

    Returns how many times the flags changed (the store counts them to know when its
    memo of flagged rows is stale) and whether the file is (still) too small."""
    seq_t = np.concatenate([ft.times, tt])
    seq_r = np.concatenate([ft.rows, rows])
    before, total = ft.count, ft.count + len(tt)
    ft.count = total
    changes = int(total < SMALL_FILE or small)  # the small files' records change
    if total < SMALL_FILE:
        ft.rows, ft.times = seq_r, seq_t
        return changes, True
    base = before - len(ft.times)  # the file position of seq_t[0]
    k0 = 0 if before < SMALL_FILE else max(0, len(ft.times) - 3)
    ft.rows, ft.times = seq_r[-_CTX:], seq_t[-_CTX:]
    if outliers:
        for r in seq_r[k0 : len(seq_r) - len(rows)].tolist():
            if outliers.get(r) == _FAR:
                del outliers[r]
                changes += 1
    far = _outliers(seq_t, base, k0)
    if far is not None:
        changes += 1
        for r in seq_r[k0:][far].tolist():
            outliers[r] = _FAR
    return changes, False


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


def first_good(order: np.ndarray, created: np.ndarray, flagged: np.ndarray,
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


def note(n: int, first: Sequence[int], names: Sequence[str], file_of: np.ndarray,
         lines: np.ndarray) -> str:
    """The sentence naming ``n`` records left out of the run's bounds, the ``first``
    few (rows) by file and line, so a reader can go and look at them."""
    where = [f"{names[file_of[r]]}:{lines[r]}" for r in first]
    more = f" and {n - 3} more" if n > 3 else ""
    them, their, are = ("them", "their", "are") if n != 1 else ("it", "its", "is")
    return (f"{n} record{'s' if n != 1 else ''} with a time far from the records "
            f"around {them} in {their} file, or with no usable time, {are} left out of "
            f"the run's start and end: {', '.join(where)}{more}")


def pack(times: dict[int, _FileTimes]) -> tuple[np.ndarray, ...]:
    """Each file's last few times as five arrays for all files, not two per file: a
    saved store of thousands of files pickles (and maps again) a few arrays."""
    ft = list(times.items())
    return (np.array([f for f, _ in ft], dtype=np.int64),
            np.array([t.count for _, t in ft], dtype=np.int64),
            np.array([len(t.rows) for _, t in ft], dtype=np.int64),
            np.concatenate([t.rows for _, t in ft]) if ft else np.empty(0, np.int64),
            np.concatenate([t.times for _, t in ft]) if ft else np.empty(0))


def unpack(packed: tuple[np.ndarray, ...]) -> dict[int, _FileTimes]:
    """The files' times as :func:`pack` saved them, each file's its own copy (not a view
    that keeps the arrays of all files)."""
    files, counts, sizes, rows, times = packed
    ends = np.cumsum(sizes).tolist()
    return {f: _FileTimes(rows[e - k:e].copy(), times[e - k:e].copy(), c)
            for f, c, k, e in zip(files.tolist(), counts.tolist(), sizes.tolist(), ends,
                                  strict=True)}

"""The merged time order of a store's rows, kept as new rows arrive.

Two parallel arrays: row numbers in time order and their sort times. A snapshot
(:class:`features.events.Events`) takes views of them and must see the order as it was
when it was taken, however many rows are merged later. The simple way, a new pair of
arrays on every merge, copies the whole order each time: 160 MB, ~20 ms, at 10M rows,
the largest single cost of a live poll of a big run, although a poll's records land in
the last few thousand places.

So the arrays have room at their end and a merge writes into them in place when nobody
else can see them: no view of the buffers is alive (CPython's reference count of the
buffer is ours alone; every numpy view, and every view of a view, holds its owner).
Then appending costs the new rows and inserting costs the order from the first new
row's place on. While a snapshot holds a view, a merge builds new buffers, as before,
and the snapshot keeps the old ones. Buffers mapped read-only from a saved reading are
never written either: the first merge copies them into buffers of its own.
"""

from __future__ import annotations

import sys

import numpy as np

from features.columns import merge_into

_OWN_REFS = 2
"""References to a buffer when only its owner's slot holds it: the slot and
:func:`sys.getrefcount`'s argument. (An interpreter that counts fewer only makes the
test stricter; the tests check that an unwatched order is merged in place.)"""


class TimeOrder:
    """Row numbers sorted by time (stable: equal times keep row order), with the sort
    time of each, merged batch by batch."""

    __slots__ = ("_n", "_rows", "_times", "copies")

    def __init__(self) -> None:
        self._rows = np.empty(0, dtype=np.int64)
        self._times = np.empty(0, dtype=np.float64)
        self._n = 0
        self.copies = 0
        """Merges that built new buffers (a snapshot held the old, or they were full)."""

    def __len__(self) -> int:
        return self._n

    def rows(self) -> np.ndarray:
        """Row numbers in time order, as a read-only view (valid after later merges)."""
        v = self._rows[: self._n]
        v.flags.writeable = False
        return v

    def times(self) -> np.ndarray:
        """Sort time of each entry of :meth:`rows`, as a read-only view."""
        v = self._times[: self._n]
        v.flags.writeable = False
        return v

    def time_at(self, i: int) -> float:
        """The sort time at place ``i`` (negative counts from the end)."""
        return float(self._times[: self._n][i])

    def merge(self, rows: np.ndarray, ts: np.ndarray) -> None:
        """Merge ``rows`` (sorted by their times ``ts``, stably) after every entry with
        an equal or earlier time: rows merged later come after equal times."""
        k = len(rows)
        if not k:
            return
        n = self._n
        at = n if n == 0 or ts[0] >= self._times[n - 1] else \
            int(np.searchsorted(self._times[:n], ts[0], side="right"))
        # In place, the entries from ``at`` on are read twice (kept aside, written back
        # shifted); into new buffers, every entry once. Records of a live run land near
        # the end (in place costs what arrived); a file read late lands far back.
        if 2 * (n - at) <= n and self._writable(n + k):
            tail_r, tail_t = self._rows[at:n].copy(), self._times[at:n].copy()
            pos = np.searchsorted(tail_t, ts, side="right")
            merge_into(self._rows, at, tail_r, pos, rows)
            merge_into(self._times, at, tail_t, pos, ts)
            self._n = n + k
            return
        self.copies += 1
        cap = n + k + max(4096, (n + k) // 8)
        new_r = np.empty(cap, dtype=np.int64)
        new_t = np.empty(cap, dtype=np.float64)
        new_r[:at], new_t[:at] = self._rows[:at], self._times[:at]
        pos = np.searchsorted(self._times[at:n], ts, side="right")
        merge_into(new_r, at, self._rows[at:n], pos, rows)
        merge_into(new_t, at, self._times[at:n], pos, ts)
        self._rows, self._times, self._n = new_r, new_t, n + k

    def _writable(self, need: int) -> bool:
        """True when the buffers have room for ``need`` entries, may be written, and no
        view of them is alive anywhere (a snapshot would see the write)."""
        # No local names for the buffers here: each would count as one more reference.
        return (len(self._rows) >= need and self._rows.flags.writeable
                and self._times.flags.writeable
                and sys.getrefcount(self._rows) <= _OWN_REFS
                and sys.getrefcount(self._times) <= _OWN_REFS)

    def __getstate__(self) -> tuple[np.ndarray, np.ndarray, int]:
        # Saved with room, as the columns are (``features.columns.Growable``): a saved
        # reading is mapped copy-on-write, so a live run's first merges after an open
        # write into the map instead of copying the whole order.
        n = self._n
        keep = n + max(4096, n // 16)
        if len(self._rows) >= keep:
            return self._rows[:keep], self._times[:keep], n
        rows = np.zeros(keep, dtype=np.int64)
        times = np.zeros(keep, dtype=np.float64)
        rows[:n], times[:n] = self._rows[:n], self._times[:n]
        return rows, times, n

    def __setstate__(self, state: tuple[np.ndarray, np.ndarray, int]) -> None:
        self._rows, self._times, self._n = state
        self.copies = 0


__all__ = ["TimeOrder"]

"""Processes: one per pool file, with its first and last records and how it ended
(folded forward as records arrive)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from features.events import Events
from features.table import Table
from features.things.common import CLEAN_END_MSGS, FoldedIndex


def processes(ev: Events, live_files: Sequence[bool] | None = None) -> Table:
    """One row per pool file (one process instance).

    ``end`` is ``clean`` when the file holds a closing record (``Closed manager``,
    ``Shutdown agent`` or ``Closed exchange client``) with no ERROR record after it,
    else ``live`` when the file was written recently (``live_files``), else
    ``abrupt`` (the file just stops: a crash, a kill, or a process that never closed);
    ``source`` for a file of another source's events (every record has a ``source`` key)."""
    return ProcessIndex().table(ev, live_files)


class ProcessIndex(FoldedIndex):
    """The process table of :func:`processes`, kept up to date over a growing store.

    Per file, what the table says is a fold of its records (counts, first and last times,
    errors, warnings, the last closing record and the last error, process ids, the first
    record): the rows that arrived since the last :meth:`table` are folded in, so a live
    reader's table costs what arrived plus a few vector operations over the files (a
    watcher's poll on a 1M-record run rebuilt it from every record: 28 ms). A snapshot
    older than the last one, or of another store, is computed from scratch. Thread-safe."""

    def _reset(self, store: object | None) -> None:
        self.store, self.n, self.nfiles = store, 0, 0
        z = np.zeros(0, dtype=np.int64)
        nan = np.zeros(0)
        self.counts, self.err, self.warn, self.src = z, z.copy(), z.copy(), z.copy()
        self.first, self.last, self.last_close, self.last_err = nan, nan.copy(), \
            nan.copy(), nan.copy()
        self.row0 = z.copy()
        """Per file: its first row (-1: none yet)."""
        self.nan_row = z.copy()
        """Per file: its first row without a time (-1: none)."""
        self.min_row = z.copy()
        """Per file: its row with the earliest time (the first of equals; -1: none)."""
        self.min_t = nan.copy()
        self.pids: list[dict[int, int]] = []
        self.names: dict[int, Any] = {}
        """First row -> its ``processName``, as read from the file."""
        self.bad_seen = 0
        self.bad = z.copy()

    def _grow(self, nfiles: int) -> None:
        k = nfiles - self.nfiles
        if k <= 0:
            return
        zi, nan, neg = np.zeros(k, dtype=np.int64), np.full(k, np.nan), \
            np.full(k, -1, dtype=np.int64)
        self.counts, self.err, self.warn, self.src, self.bad = (
            np.concatenate([a, zi]) for a in (self.counts, self.err, self.warn, self.src,
                                              self.bad))
        self.first, self.last, self.last_close, self.last_err, self.min_t = (
            np.concatenate([a, nan]) for a in (self.first, self.last, self.last_close,
                                               self.last_err, self.min_t))
        self.row0, self.nan_row, self.min_row = (
            np.concatenate([a, neg]) for a in (self.row0, self.nan_row, self.min_row))
        self.pids.extend({} for _ in range(k))
        self.nfiles = nfiles

    def _fold(self, ev: Events) -> None:
        lo, hi = self.n, ev.n
        nf = len(ev.file_names)
        self._grow(nf)
        f = ev.file[lo:hi].astype(np.int64)
        created = ev.created[lo:hi]
        rows = np.arange(lo, hi, dtype=np.int64)
        self.counts += np.bincount(f, minlength=nf)
        ok = np.isfinite(created)
        np.fmin.at(self.first, f[ok], created[ok])
        np.fmax.at(self.last, f[ok], created[ok])
        lv = ev.ints["levelno"][lo:hi]
        errs = lv >= 40
        self.err += np.bincount(f[errs], minlength=nf)
        self.warn += np.bincount(f[(lv >= 30) & (lv < 40)], minlength=nf)
        np.fmax.at(self.last_err, f[errs], created[errs])
        codes, values = ev.cat("msg")
        wanted = [i for i, v in enumerate(values) if v in CLEAN_END_MSGS]
        if wanted:
            close = np.isin(codes[lo:hi], wanted)
            np.fmax.at(self.last_close, f[close], created[close])
        pid = ev.ints["process"][lo:hi].astype(np.int64)
        if len(f):
            key, cnt = np.unique(f * (1 << 33) + (pid + (1 << 32)), return_counts=True)
            for k, c in zip(key.tolist(), cnt.tolist(), strict=True):
                d = self.pids[k >> 33]
                p = (k & ((1 << 33) - 1)) - (1 << 32)
                d[p] = d.get(p, 0) + c
            # Each file's first row, first row without a time, earliest row (new rows
            # come after the old: on equal times the old row stays).
            files, at = np.unique(f, return_index=True)
            fresh = self.row0[files] < 0
            self.row0[files[fresh]] = rows[at[fresh]]
            nan = np.isnan(created)
            if nan.any():
                files, at = np.unique(f[nan], return_index=True)
                fresh = self.nan_row[files] < 0
                self.nan_row[files[fresh]] = rows[nan][at[fresh]]
            good = ~nan
            if good.any():
                g_rows, g_t, g_f = rows[good], created[good], f[good]
                order = np.lexsort((g_rows, g_t))
                files, at = np.unique(g_f[order], return_index=True)
                best_r, best_t = g_rows[order][at], g_t[order][at]
                better = (self.min_row[files] < 0) | (best_t < self.min_t[files])
                self.min_row[files[better]] = best_r[better]
                self.min_t[files[better]] = best_t[better]
        src_rows = ev.store.rows_with_key("source", hi)
        src_rows = src_rows[np.searchsorted(src_rows, lo):]
        if len(src_rows):
            self.src += np.bincount(ev.file[src_rows], minlength=nf)
        bad = ev.store.bad
        for b in bad[self.bad_seen:]:
            if b.file < nf:
                self.bad[b.file] += 1
        self.bad_seen = len(bad)
        self.n = hi

    def table(self, ev: Events, live_files: Sequence[bool] | None = None) -> Table:
        """The processes of snapshot ``ev`` (see :func:`processes`)."""
        with self.lock:
            if not self._caught_up(ev):
                return ProcessIndex().table(ev, live_files)  # an older snapshot
            nf = len(ev.file_names)
            self._grow(nf)
            counts = self.counts[:nf].copy()
            main_pid = np.full(nf, -1, dtype=np.int64)
            pids = []
            for i in range(nf):
                d = self.pids[i]
                named = {p: c for p, c in d.items() if p >= 0}  # -1: no process named
                if named:
                    top = max(named.values())
                    main_pid[i] = min(p for p, c in named.items() if c == top)
                pids.append(",".join(str(p) for p in sorted(d) if p >= 0))
            # As processes() picks it: the earliest row, but the first row without a
            # time when the file has one (numpy's argmin stops at a NaN), and the file's
            # first row when none of its rows has a time.
            first_row = np.where(self.nan_row[:nf] >= 0, self.nan_row[:nf],
                                 self.min_row[:nf])
            first_row = np.where(self.min_row[:nf] >= 0, first_row, self.row0[:nf])
            todo = [int(r) for r in first_row if r >= 0 and int(r) not in self.names]
            if todo:
                for r, rec in zip(todo, ev.records(todo), strict=True):
                    self.names[r] = rec.get("processName") if rec is not None else None
            pnames = np.empty(nf, dtype=object)
            for i, r in enumerate(first_row.tolist()):
                pnames[i] = self.names.get(r) if r >= 0 else None
            first, last = self.first[:nf].copy(), self.last[:nf].copy()
            last_close, last_err = self.last_close[:nf].copy(), self.last_err[:nf].copy()
            src, bad = self.src[:nf].copy(), self.bad[:nf].copy()
            err, warn = self.err[:nf].copy(), self.warn[:nf].copy()
        end = np.empty(nf, dtype=object)
        with np.errstate(invalid="ignore"):
            clean = ~np.isnan(last_close) & ~(last_err > last_close)
        end[:] = "abrupt"
        if live_files is not None:
            end[np.asarray(live_files, dtype=bool)[:nf]] = "live"
        end[clean] = "clean"
        end[counts == 0] = "empty"
        end[(src == counts) & (counts > 0)] = "source"
        return Table({
            "file": np.array(ev.file_names, dtype=object),
            "pid": main_pid,
            "pids": np.array(pids, dtype=object),
            "processName": pnames,
            "records": counts.astype(np.int64),
            "errors": err,
            "warnings": warn,
            "bad_lines": bad,
            "t_first": first,
            "t_last": last,
            "duration_s": last - first,
            "end": end,
        }, name="processes")

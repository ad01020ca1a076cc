"""Incremental, tail-safe reading of every ``*.jsonlog`` file of a pool.

One :class:`FileTail` per file remembers how far it has read. A poll reads only what
was appended; an unterminated last line is held until its newline arrives; a file that
shrinks or is replaced by another inode is re-read from the start, and the records it
still shares with what was read before are skipped, so nothing is lost or doubled.
Files are opened only while they are read, so a pool of 10,000 files needs no more
than one descriptor at a time.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.batch import BadLine, Batch, Payload, texts
from features.parse import FLAG_REPAIRED, MAX_LINE, parse_block
from features.regular import open_regular
from features.store import EventStore, FileInfo

READ_BLOCK = 16 * 1024 * 1024
QUIET_S = 10.0
"""A file not written for this long is quiet: in a pool of more than :data:`ROTATE_OVER`
files, a poll looks at the files written lately and at one in :data:`ROTATE` of the quiet
ones, in turn (a stat a file: a poll of a 8,196-file pool looked at every file, 0.1 s)."""
ROTATE_OVER = 256
ROTATE = 8
"""A quiet file written again is read within this many polls."""
"""Bytes read per call while catching up on a file."""

UNTERMINATED = "unterminated last line (its writer is gone)"
"""Why a file's last line without a newline, taken when the run is over, is a bad line."""


@dataclass
class PollResult:
    """What one poll of a pool found."""

    batches: int = 0
    records: int = 0
    bad: int = 0
    new_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Human-readable events: a file replaced, truncated, deleted or unreadable."""

    @property
    def changed(self) -> bool:
        return bool(self.records or self.bad or self.new_files or self.notes)

    def stored(self, batch: Batch) -> None:
        """Count a batch stored."""
        self.batches += 1
        self.records += len(batch)
        self.bad += len(batch.bad)

    def add(self, later: PollResult) -> None:
        """Count in what a later read of the same pool found."""
        self.batches += later.batches
        self.records += later.records
        self.bad += later.bad
        self.new_files.extend(later.new_files)
        self.notes.extend(later.notes)


@dataclass
class Ahead:
    """The end of a file, stored before the rest of it (:func:`features.loader.
    load_first`: a first screen shows what the run did last). Its rows' line numbers are
    stored as ``-k`` (the part's ``k``-th line: unknown until the lines before it are
    counted) and their times are judged against their file then (:meth:`FileTail.settle`),
    once the file's reading reaches :attr:`start`; it goes on from :attr:`end`."""

    start: int
    """Where the part starts in the file (a line's start)."""
    end: int
    """Just after its last newline."""
    first_row: int
    rows: int
    """Its rows in the store (consecutive)."""
    lines: int
    """Lines of the part (records, bad and blank lines)."""
    bad: list[BadLine] = field(default_factory=list)
    """Its bad lines, their line numbers counted likewise (``-k``)."""


class FileTail:
    """Reading state of one pool file."""

    skipping = False
    """Set for each tail in ``__init__``; this default serves the tails of a saved reading
    made before it existed (unpickled without it)."""
    ahead: Ahead | None = None
    """The file's end, stored before the part up to it is read (see :class:`Ahead`); a
    class default, so that tails saved before it existed have none."""

    def __init__(self, info: FileInfo) -> None:
        self.info = info
        self.offset = 0
        """Bytes consumed: everything before this is parsed (always at a line start)."""
        self.lines = 0
        """Lines consumed."""
        self.pending = b""
        """Bytes after ``offset`` already read but not yet ended by a newline."""
        self.ident: tuple[int, int] | None = None
        """(device, inode) of the file when it was last read."""
        self.mtime_ns = -1
        self.size = -1
        self.records = 0
        """Records this tail has delivered from the current content."""
        self.verify: list[tuple[float, int, int]] | None = None
        """After a replacement: (created, line length, line number) of the records read
        before, to skip them when they reappear at the start of the new content."""
        self.skipping = False
        """Inside a line already recorded as too long: what is left of it, up to its
        newline, is passed over (``offset`` moves), never held."""

    def poll(self, store: EventStore, result: PollResult) -> Iterator[Batch]:
        """Read what is new in the file and yield parsed batches (not yet stored)."""
        info = self.info
        st = self._stat(result)
        if st is None:
            return
        ident = (st.st_dev, st.st_ino)
        if self.ident is not None and (ident != self.ident or st.st_size < self.offset +
                                       len(self.pending)):
            why = "replaced by a new file" if ident != self.ident else "truncated"
            result.notes.append(f"{info.name}: {why}; re-reading it")
            self._restart(store)
        if st.st_size == self.size and st.st_mtime_ns == self.mtime_ns and ident == self.ident:
            return
        self.ident = ident
        try:
            fd = open_regular(info.path)  # a FIFO put in its place would block for good
        except OSError as e:
            self._unreadable(e, result)
            return
        try:
            if info.status in ("unreadable", "deleted"):
                info.status = "reading"
                info.error = None
            pos = yield from self._read_new(fd, result, store)
            if pos is None:
                return
            self.size = st.st_size
            self.mtime_ns = st.st_mtime_ns
            info.size = max(pos, st.st_size)
        finally:
            os.close(fd)

    def _stat(self, result: PollResult) -> os.stat_result | None:
        """The file's stat; None when it is gone (its records are kept, and said so once)
        or cannot be read."""
        info = self.info
        try:
            return os.stat(info.path)
        except FileNotFoundError:
            if info.status != "deleted":
                info.status = "deleted"
                if self.ahead is None:
                    result.notes.append(f"{info.name}: deleted; its {info.records} records "
                                        "are kept")
                else:  # its end was read first (Ahead), then it went before the rest
                    result.notes.append(
                        f"{info.name}: deleted before it was read whole; the {info.records} "
                        f"records read are kept (its last {self.ahead.rows} without line "
                        "numbers: the lines before them were never read)")
        except OSError as e:
            self._unreadable(e, result)
        return None

    def _read_new(self, fd: int, result: PollResult, store: EventStore
                  ) -> Generator[Batch, None, int | None]:
        """Parse the complete lines after what was read (from the open file ``fd``) and
        hold the unterminated rest; returns the position read to, or None when a read
        failed (the file is then unreadable, and its size is looked at again next poll)."""
        pos = self.offset + len(self.pending)
        while True:
            ahead = self.ahead
            if ahead is not None and pos >= ahead.start:
                # Up to the part stored ahead (the batches before it are stored: the
                # caller stores each one before this generator goes on).
                if self.pending:  # no line ends there: the file was rewritten in place
                    last = self.flush_partial()
                    if last is not None:
                        yield last
                self.settle(store)
                pos = self.offset
                continue
            size = READ_BLOCK if ahead is None else min(READ_BLOCK, ahead.start - pos)
            try:
                if self.skipping:
                    pos = self._skip_rest(fd, pos)
                    if self.skipping:  # the file ends inside the line
                        return pos
                    continue
                chunk = os.pread(fd, size, pos)
            except OSError as e:
                self._unreadable(e, result)
                return None
            if not chunk:
                return pos
            pos += len(chunk)
            data = self.pending + chunk if self.pending else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                self.pending = data
                if len(self.pending) > MAX_LINE:
                    yield self._too_long()
                continue
            yield self._parse_lines(data, cut)

    def settle(self, store: EventStore) -> None:
        """The file is read up to its part stored ahead: that part's line numbers are now
        known (they follow this tail's), its times are judged after the records before
        them, and the reading goes on after it."""
        ahead = self.ahead
        if ahead is None:
            return
        with store.lock:
            a, n = ahead.first_row, ahead.rows
            store.line.put(a, self.lines - store.line.view()[a:a + n])
            for bad in ahead.bad:
                bad.line = self.lines - bad.line
            store.judge_rows(self.info.index, ahead.first_row, ahead.rows)
            self.offset = ahead.end
            self.lines += ahead.lines
            self.records += ahead.rows
            self.ahead = None

    def _skip_rest(self, fd: int, pos: int) -> int:
        """Pass over the rest of a line too long to hold, from ``pos`` to just after its
        newline (or the file's end, still inside it): read a block at a time, and not at
        all where the file has a hole (a sparse file reads as NUL bytes: no newline).
        Returns where reading stopped."""
        while True:
            pos = _next_data(fd, pos)
            chunk = os.pread(fd, READ_BLOCK, pos)
            if not chunk:
                self.offset = pos
                return pos
            k = chunk.find(b"\n")
            if k < 0:
                pos += len(chunk)
                continue
            self.offset = pos + k + 1
            self.lines += 1
            self.skipping = False
            return self.offset

    def _parse_lines(self, data: bytes, cut: int) -> Batch:
        """Parse ``data`` up to its last newline (at ``cut``), holding the rest, and move
        past it; records read before a replacement are skipped (:meth:`_skip_known`)."""
        block = data[: cut + 1]
        self.pending = data[cut + 1 :]
        batch = parse_block(block, self.info.index, self.offset, self.lines)
        self.offset += len(block)
        self.lines += batch.lines
        if self.verify is not None:
            batch = self._skip_known(batch)
        self.records += len(batch)
        return batch

    def flush_partial(self) -> Batch | None:
        """Take a held unterminated last line, once: call when its writer is known to be
        gone (a live writer completes it). It is a bad line (file, line, why), and when
        it holds a whole record (only the newline missing), that record is recovered, as
        records are from other bad lines (``@repaired``)."""
        if not self.pending:
            return None
        block = self.pending
        info = self.info
        batch = parse_block(block, info.index, self.offset, self.lines)
        if len(batch) == 1 and not batch.bad:
            batch.flags[0] |= FLAG_REPAIRED
            batch.repaired[0] = block
            batch.bad.append(BadLine(info.index, int(batch.line[0]), self.offset, len(block),
                                     UNTERMINATED, block[:200].decode("utf-8", "replace"),
                                     recovered=1))
        else:
            for bad in batch.bad:
                bad.reason = f"{UNTERMINATED}: {bad.reason}"
        self.offset += len(block)
        self.lines += batch.lines
        self.pending = b""
        self.records += len(batch)
        return batch

    def _too_long(self) -> Batch:
        """A line past :data:`MAX_LINE` without a newline: record it and skip it."""
        info = self.info
        n = len(self.pending)
        bad = BadLine(info.index, self.lines + 1, self.offset, n,
                      f"line too long (over {MAX_LINE >> 20} MB: passed over to its end)",
                      self.pending[:200].decode("utf-8", "replace"))
        empty = parse_block(b"", info.index, self.offset, self.lines)
        empty.bad.append(bad)
        empty.lines = 0
        self.offset += n
        self.pending = b""
        self.skipping = True
        return empty

    def _unreadable(self, e: OSError, result: PollResult) -> None:
        info = self.info
        msg = e.strerror or type(e).__name__
        if info.status != "unreadable":
            info.status = "unreadable"
            info.error = msg
            result.notes.append(f"{info.name}: cannot read ({msg})")

    def _restart(self, store: EventStore) -> None:
        """Start the file over; remember what was read so shared records are skipped. A
        part stored ahead (:class:`Ahead`) whose place was not reached stays as it was
        read (its line numbers unknown), and is not skipped."""
        rows = np.flatnonzero(store.file.view() == self.info.index)
        if self.ahead is not None:
            a = self.ahead
            rows = rows[(rows < a.first_row) | (rows >= a.first_row + a.rows)]
            self.ahead = None
        # In the file's order: a file's end read first (Ahead) has rows before its start.
        rows = rows[np.argsort(store.offset.view()[rows], kind="stable")]
        created = store.created.view()[rows]
        lengths = store.length.view()[rows]
        lines = store.line.view()[rows]
        self.verify = list(zip(created.tolist(), lengths.tolist(), lines.tolist(),
                               strict=True))
        self.offset = 0
        self.lines = 0
        self.pending = b""
        self.skipping = False
        self.records = 0
        self.size = -1
        self.mtime_ns = -1

    def _skip_known(self, batch: Batch) -> Batch:
        """Drop records of ``batch`` that match, in order, the records read before the
        file was replaced; stop verifying at the first difference."""
        known = self.verify or []
        start = self.records
        n = len(batch)
        k = 0
        while k < n and start + k < len(known):
            c, ln, line = known[start + k]
            same_time = (c == batch.created[k]) or (c != c and batch.created[k] != batch.created[k])
            if not (same_time and ln == batch.length[k] and line == batch.line[k]):
                break
            k += 1
        if start + k < len(known) and k < n:
            self.verify = None  # content differs from here on: all of it is new
        elif start + k >= len(known):
            self.verify = None
        if k == 0:
            return batch
        self.records += k
        return _drop_head(batch, k)


def _next_data(fd: int, pos: int) -> int:
    """The first position at or after ``pos`` that is not in a hole of the file (its size
    when the rest is one); ``pos`` where holes cannot be found."""
    seek_data = getattr(os, "SEEK_DATA", None)
    if seek_data is None:
        return pos
    try:
        return os.lseek(fd, pos, seek_data)
    except OSError as e:
        if e.errno == errno.ENXIO:  # no data after pos: a hole to the end
            return max(pos, os.fstat(fd).st_size)
        return pos


def _drop_head(batch: Batch, k: int) -> Batch:
    keep = slice(k, None)
    return Batch(
        file=batch.file,
        created=batch.created[keep],
        line=batch.line[keep],
        offset=batch.offset[keep],
        length=batch.length[keep],
        flags=batch.flags[keep],
        combo=batch.combo[keep],
        combo_table=batch.combo_table,
        tags=[t[keep] for t in batch.tags],
        tag_tables=batch.tag_tables,
        shape=batch.shape[keep],
        shape_table=batch.shape_table,
        message=texts(batch.message)[k:],
        bad=[b for b in batch.bad if b.line > int(batch.line[k - 1])],
        repaired={i - k: v for i, v in batch.repaired.items() if i >= k},
        lines=batch.lines,
        blank=batch.blank,
        user=_user_from(batch.user, k),
        user_partial=batch.user_partial,
        odd_times=[i - k for i in batch.odd_times if i >= k],
        payload=_payload_from(batch.payload, k),
    )


def _payload_from(payload: Payload | None, k: int) -> Payload | None:
    """The payload sizes of a batch's records from row ``k`` on, their rows counted from
    there."""
    if payload is None:
        return None
    rows, args, result = payload
    keep = rows >= k
    return rows[keep] - k, args[keep], result[keep]


def _user_from(user: dict[str, tuple[np.ndarray, list[Any]]], k: int
               ) -> dict[str, tuple[np.ndarray, list[Any]]]:
    """The workflow keys' (rows, values) of a batch's records from row ``k`` on, their
    rows counted from there (dropped, the records after a replaced file's known head lost
    their keys' values: a filter on them missed those records)."""
    out: dict[str, tuple[np.ndarray, list[Any]]] = {}
    for key, (rows, vals) in user.items():
        keep = np.flatnonzero(rows >= k)
        if len(keep):
            out[key] = (rows[keep] - k, [vals[i] for i in keep.tolist()])
    return out


class PoolReader:
    """Reads one pool directory into an :class:`EventStore`, now and as it grows."""

    SUFFIX = ".jsonlog"
    _said_odd: frozenset[str] = frozenset()
    """Entries named like pool files that are not files, said once each (a class default:
    a reader saved before this existed is unpickled without it)."""

    def __init__(self, pool_dir: str, store: EventStore | None = None) -> None:
        self.pool_dir = os.fspath(pool_dir)
        self.store = store if store is not None else EventStore()
        self.tails: dict[str, FileTail] = {}
        self.other_files: list[str] = []
        self._dir_mtime_ns = -1
        self._turn = 0
        self.extra: list[tuple[str, str, str]] = []
        """(path, name, source kind) of files read beside the pool's (other sources'
        events, :mod:`features.sources`); read after the pool's files."""

    def add_extra(self, path: str, name: str, source: str) -> None:
        """Read ``path`` too, as file ``name`` (from the next scan on)."""
        if name not in self.tails and all(n != name for _, n, _ in self.extra):
            self.extra.append((path, name, source))

    def scan(self, result: PollResult | None = None) -> list[FileTail]:
        """Find pool files not seen before (sorted by name, so file ids are stable)."""
        result = result if result is not None else PollResult()
        new = self._scan_pool(result)
        for path, name, source in self.extra:
            if name not in self.tails:
                tail = FileTail(self.store.add_file(path, name, source))
                self.tails[name] = tail
                new.append(tail)
                result.new_files.append(name)
        return new

    def _scan_pool(self, result: PollResult) -> list[FileTail]:
        try:
            st = os.stat(self.pool_dir)
            if st.st_mtime_ns == self._dir_mtime_ns:
                return []
            entries = sorted(os.scandir(self.pool_dir), key=lambda e: e.name)
        except OSError as err:
            msg = f"pool directory {self.pool_dir}: {err.strerror or err}"
            if msg not in self.store.stats.errors:
                self.store.stats.errors.append(msg)
                result.notes.append(msg)
            return []
        self._dir_mtime_ns = st.st_mtime_ns
        new: list[FileTail] = []
        others = []
        for e in entries:
            if e.name in self.tails:
                continue
            try:
                is_file = e.is_file()
            except OSError:
                is_file = False
            if not (is_file and e.name.endswith(self.SUFFIX)):
                others.append(e.name)
                if e.name.endswith(self.SUFFIX) and e.name not in self._said_odd:
                    self._said_odd = self._said_odd | {e.name}
                    result.notes.append(f"{e.name}: not a regular file (a FIFO, a device, a "
                                        "socket or a directory): not read")
                continue
            info = self.store.add_file(e.path, e.name)
            tail = FileTail(info)
            self.tails[e.name] = tail
            new.append(tail)
            result.new_files.append(e.name)
        self.other_files = others
        self.store.stats.other_files = len(others)
        return new

    def poll(self, on_batch: Callable[[Batch], None] | None = None,
             full: bool = False) -> PollResult:
        """Scan for new files and read what was appended since the last poll: to every
        file (``full``, or a pool of at most :data:`ROTATE_OVER` files), else to those
        written lately and a turn of the quiet ones (:data:`QUIET_S`)."""
        result = PollResult()
        self.scan(result)
        store = self.store
        for tail in self._due(full):
            for batch in tail.poll(store, result):
                self._store(batch, result)
                if on_batch is not None:
                    on_batch(batch)
            if tail.pending and tail.info.status == "deleted":
                # Nothing will complete it for us: take what was read of it.
                last = tail.flush_partial()
                if last is not None:
                    self._store(last, result)
        store.stats.unreadable = sum(
            1 for t in self.tails.values() if t.info.status == "unreadable")
        return result

    def _due(self, full: bool) -> list[FileTail]:
        tails = list(self.tails.values())
        if full or len(tails) <= ROTATE_OVER:
            return tails
        since = time.time_ns() - int(QUIET_S * 1e9)
        turn, self._turn = self._turn, (self._turn + 1) % ROTATE
        return [t for i, t in enumerate(tails) if t.mtime_ns >= since or t.mtime_ns < 0
                or t.pending or t.info.status != "reading" or i % ROTATE == turn]

    def finish(self) -> PollResult:
        """Read what is new in every file, then take unterminated last lines too (see
        :meth:`FileTail.flush_partial`): call when the run is known to be over."""
        result = self.poll(full=True)
        for tail in self.tails.values():
            batch = tail.flush_partial()
            if batch is not None:
                self._store(batch, result)
        return result

    def _store(self, batch: Batch, result: PollResult) -> None:
        self.store.append(batch)
        result.stored(batch)

    def pending_bytes(self) -> int:
        """Bytes held in unterminated last lines (a live writer is mid-record)."""
        return sum(len(t.pending) for t in self.tails.values())

"""The first load of a big pool, on every core.

Files are cut into line-aligned ranges of about :data:`CHUNK` bytes; worker processes
parse ranges (the parse is the costly part) and the calling process stores the batches
in file order, so line numbers come out right and a progress callback sees the run fill
in from its start. When the load is done, each file's tail continues from where the
ranges ended, so live reading picks up exactly there.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import math
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import orjson

from features.batch import Batch, merge
from features.columns import pack_texts
from features.parse import parse_block
from features.reader import Ahead, FileTail, PollResult, PoolReader
from features.regular import open_regular
from features.store import EventStore

CHUNK = 8 * 1024 * 1024
"""Bytes per parse task."""

HEAD = 64 * 1024
"""Bytes of each file read first, in the calling process (see :func:`load`)."""

HEAD_FILES = 8
"""Files whose heads are read first (those whose next record is earliest)."""

PARALLEL_MIN_BYTES = 32 * 1024 * 1024
"""Below this much unread data one process is faster than starting workers."""


@dataclass(frozen=True)
class Chunk:
    """A line-aligned byte range of one pool file."""

    file: int
    path: str
    start: int
    end: int
    last: bool
    """The file's last chunk planned: it may end inside a line (an unterminated last
    line, or one too long to plan around, which the file's tail reader reads on)."""


Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; it may raise :class:`LoadStopped` to stop."""


class LoadStopped(Exception):
    """Raised by a load's progress callback to stop it (an app closing: a first load of
    millions of records held its ``q`` for as long as the load). What was stored stays,
    each file's tail just past its stored part, and the parse workers are stopped; a
    later read continues from there."""


BOUNDARY_MAX = 2 * CHUNK
"""Bytes looked through past a chunk's planned end for the end of its last line. A file
with a longer line (a forged file of NUL bytes, a sparse file of terabytes that costs no
disk) is planned up to it and left to its tail reader from there, which holds at most
:data:`~features.record_keys.MAX_LINE` of a line: one chunk held the whole file before
(2 GB of NUL bytes, no newline: 4.2 GB resident)."""


def _boundary(fd: int, pos: int, size: int) -> int | None:
    """The position after the first newline at or after ``pos``: ``size`` if the file
    ends first, None if there is none in the :data:`BOUNDARY_MAX` bytes from ``pos``."""
    step = 1 << 16
    stop = min(size, pos + BOUNDARY_MAX)
    while pos < stop:
        buf = os.pread(fd, min(step, stop - pos), pos)
        if not buf:
            return size
        k = buf.find(b"\n")
        if k >= 0:
            return pos + k + 1
        pos += len(buf)
        step = min(step * 4, 1 << 24)
    return size if pos >= size else None


def _starting_first(tails: list[FileTail], k: int) -> list[FileTail]:
    """The ``k`` tails whose next unread record is the earliest (by its ``created``, read
    from its first line); all of them when there are no more than ``k``."""
    if len(tails) <= k:
        return tails
    when = []
    for t in tails:
        created = math.inf
        try:
            fd = open_regular(t.info.path)
            try:
                data = os.pread(fd, 8192, t.offset)
            finally:
                os.close(fd)
            line = data[:data.find(b"\n")] if b"\n" in data else b""
            rec = orjson.loads(line) if line else None
            if isinstance(rec, dict):
                created = float(rec.get("created"))  # type: ignore[arg-type]
        except (OSError, ValueError, TypeError):
            pass  # unreadable or odd: read with the others
        when.append(created if math.isfinite(created) else math.inf)
    order = sorted(range(len(tails)), key=lambda i: (when[i], i))
    return [tails[i] for i in sorted(order[:k])]


def plan_after(tails: list[FileTail], heads: list[tuple[Batch, int]], chunk: int
               ) -> tuple[list[Chunk], dict[int, tuple]]:
    """Plan the rest of each file after its head chunk (parsed, not yet stored)."""
    saved = {t.info.index: t.offset for t in tails}
    by_index = {t.info.index: t for t in tails}
    for batch, consumed in heads:
        by_index[batch.file].offset += consumed
    try:
        return plan(tails, chunk)
    finally:
        for t in tails:
            t.offset = saved[t.info.index]


def plan(tails: list[FileTail], chunk: int = CHUNK, heads_only: bool = False
         ) -> tuple[list[Chunk], dict[int, tuple]]:
    """Cut the unread part of every file into chunks; also returns each file's stat
    (device, inode, size, mtime) as seen when planning. ``heads_only``: just the first
    chunk of each file."""
    chunks: list[Chunk] = []
    stats: dict[int, tuple] = {}
    per_file: list[list[Chunk]] = []
    for tail in tails:
        info = tail.info
        try:
            fd = open_regular(info.path)
            st = os.fstat(fd)
        except OSError:
            continue  # the tail's own poll reports it
        try:
            stats[info.index] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            mine = []
            pos = tail.offset
            # A file whose end is stored already (Ahead) is planned up to that part.
            stop = st.st_size if tail.ahead is None else min(st.st_size, tail.ahead.start)
            while pos < stop:
                end = _boundary(fd, pos + chunk, stop) if pos + chunk < stop else stop
                if end is None:  # a line too long to plan around: the rest is its tail's
                    mine.append(Chunk(info.index, info.path, pos, pos + chunk, True))
                    break
                mine.append(Chunk(info.index, info.path, pos, end, end >= st.st_size))
                pos = end
                if heads_only:
                    break
            per_file.append(mine)
        finally:
            os.close(fd)
    # Interleave files: every file's beginning first, so the merged view fills in order.
    depth = max((len(c) for c in per_file), default=0)
    for i in range(depth):
        for mine in per_file:
            if i < len(mine):
                chunks.append(mine[i])
    return chunks, stats


def parse_chunk(c: Chunk) -> tuple[Batch, int]:
    """Parse the complete lines of a chunk (worker side). Returns the batch and the bytes
    consumed (up to the last newline)."""
    fd = open_regular(c.path)
    try:
        data = os.pread(fd, c.end - c.start, c.start)
        while len(data) < c.end - c.start:  # short reads happen on some filesystems
            more = os.pread(fd, c.end - c.start - len(data), c.start + len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    cut = data.rfind(b"\n") + 1
    if cut < len(data):  # only the last chunk of a live file ends inside a line
        data = data[:cut]
    return parse_block(data, c.file, c.start, 0), cut


def parse_group(group: list[Chunk]) -> tuple[Batch, list[int]]:
    """Parse a group of chunks (of different files) into one batch (:func:`merge`), with
    the bytes each chunk consumed."""
    parsed = [parse_chunk(c) for c in group]
    return merge([b for b, _ in parsed]), [n for _, n in parsed]


def _parse_group_packed(group: list[Chunk]) -> tuple[bytes, list[int]]:
    """:func:`parse_group` in a worker, its batch pickled without the memo: a batch
    holds no shared or cyclic objects, and a memo entry per message string was half of
    the cost of sending it (0.39 -> 0.23 us per record, both ends). Its messages go as
    one block of bytes (:func:`~features.columns.pack_texts`), encoded here on the
    worker's core: the storing process then makes one object of them, not one a record,
    and keeps them packed."""
    batch, consumed = parse_group(group)
    batch.message = pack_texts(batch.message)  # type: ignore[arg-type]  # a list here
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    with contextlib.suppress(AttributeError):  # deprecated, still in 3.13
        pickler.fast = True
    pickler.dump(batch)
    return buf.getvalue(), consumed


def groups_of(chunks: list[Chunk], size: int) -> list[list[Chunk]]:
    """Consecutive chunks grouped up to ``size`` bytes (one chunk at least, one chunk of a
    file at most): a pool of many small files is parsed and stored in batches about as
    big as a pool of a few big ones."""
    out: list[list[Chunk]] = []
    cur: list[Chunk] = []
    total = 0
    files: set[int] = set()
    for c in chunks:
        n = c.end - c.start
        if cur and (total + n > size or c.file in files):
            out.append(cur)
            cur, total, files = [], 0, set()
        cur.append(c)
        total += n
        files.add(c.file)
    if cur:
        out.append(cur)
    return out


def _results(groups: list[list[Chunk]], executor: Executor | None, local_first: bool = True,
             ahead: int = 4) -> Iterator[tuple[Batch, list[int]]]:
    """Parsed groups in order. At most ``ahead`` groups are parsed ahead of the one the
    caller takes: with no bound the workers ran through the pool while the caller, storing
    in order, fell behind (a UI thread holding the interpreter): the progress said 19% stored
    when the workers had read 61%, and every parsed batch waited in memory."""
    if executor is None or not groups:
        for g in groups:
            yield parse_group(g)
        return
    # Workers take a moment to start; parse the first group here meanwhile (unless this
    # process has a UI to keep responsive).
    first = 1 if local_first else 0
    pending: collections.deque[Future[tuple[bytes, list[int]]]] = collections.deque()
    nxt = first

    def submit() -> None:
        nonlocal nxt
        while nxt < len(groups) and len(pending) < ahead:
            pending.append(executor.submit(_parse_group_packed, groups[nxt]))
            nxt += 1

    try:
        submit()
    except (OSError, ValueError, BrokenProcessPool):
        for f in pending:
            f.cancel()
        for g in groups:  # workers cannot start in this process: read here
            yield parse_group(g)
        return
    if local_first:
        yield parse_group(groups[0])
    done = first
    while pending:
        try:
            packed, consumed = pending.popleft().result()
        except (OSError, BrokenProcessPool):
            break  # a worker died (OOM-killed?): the rest is read below
        done += 1
        # A pool that broke says so at the next result; with none pending, below.
        with contextlib.suppress(OSError, BrokenProcessPool):
            submit()
        yield pickle.loads(packed), consumed
    for f in pending:
        f.cancel()
    for g in groups[done:]:  # what the workers did not parse: in this process
        yield parse_group(g)


def load(
    reader: PoolReader,
    progress: Progress | None = None,
    workers: int | None = None,
    chunk: int = CHUNK,
    parallel_min: int = PARALLEL_MIN_BYTES,
    local_first: bool = True,
    heads_first: bool = True,
) -> PollResult:
    """Read everything the pool holds now, in parallel when it pays, then poll once so
    the tails are exactly where a live reader continues. ``local_first=False`` leaves all
    parsing but the files' heads to the workers, and runs them at a lower priority (for a
    process with a UI). ``heads_first=False``: not even those (a pool given a first look
    already, :func:`load_first`)."""
    result = PollResult()
    reader.scan(result)
    tails = list(reader.tails.values())
    heads, stats = _heads(tails) if heads_first else ([], {})
    chunks, more_stats = plan_after(tails, heads, chunk)
    stats = {**more_stats, **stats}
    rest = sum(c.end - c.start for c in chunks)
    total = rest + sum(consumed for _, consumed in heads)
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    executor: Executor | None = None
    if n_workers > 1 and rest >= parallel_min and len(chunks) > 1:
        executor = _executor(n_workers, local_first)
    by_index = {t.info.index: t for t in tails}
    parsed = itertools.chain(((b, [n]) for b, n in heads),
                             _results(groups_of(chunks, chunk), executor, local_first,
                                      2 * n_workers))
    try:
        _store_all(reader.store, parsed, by_index, total, result, progress)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    for index, (dev, ino, _size, _mtime) in stats.items():
        by_index[index].ident = (dev, ino)
    result.add(reader.poll(full=True))
    return result


def _heads(tails: list[FileTail]) -> tuple[list[tuple[Batch, int]], dict[int, tuple]]:
    """The heads of the files that start first, parsed in this process (not stored), with
    those files' stats: a viewer shows the start of the run, merged across the processes
    that began it, within milliseconds, while the rest is still being read (every file's
    beginning is planned first). Only a few: the heads of all 828 files of a big pool were
    53 MB parsed before the first row."""
    head_chunks, stats = plan(_starting_first(tails, HEAD_FILES), HEAD, heads_only=True)
    return [parse_chunk(c) for c in head_chunks], stats


def load_first(reader: PoolReader, max_files: int | None = None) -> PollResult:
    """A first look at a pool, fast enough to wait for before a screen is drawn (~1,100
    records of a big pool, ~10-20 ms): the heads of the files that start first (the
    run's start: times are shown from it) and the end of the files written last (the
    last :data:`HEAD` bytes of :data:`HEAD_FILES` of them, by modification time: what
    the run did last, which a screen following the run shows). Each such end is stored
    ahead of the rest of its file (:class:`features.reader.Ahead`); a :func:`load`
    afterwards reads every file from its start up to it, then on after it. With more than
    ``max_files`` files, only the pool's files are found (choosing among them would read
    the start of each)."""
    result = PollResult()
    reader.scan(result)
    tails = list(reader.tails.values())
    if max_files is not None and len(tails) > max_files:
        return result
    store = reader.store
    heads, stats = _heads(tails)
    by_index = {t.info.index: t for t in tails}
    _store_all(store, ((b, [n]) for b, n in heads), by_index,
               sum(n for _, n in heads), result, None)
    for index, (dev, ino, _size, _mtime) in stats.items():
        by_index[index].ident = (dev, ino)
    for tail, st in _written_last(tails, HEAD_FILES):
        try:
            fd = open_regular(tail.info.path)
        except OSError:
            continue  # the load says why
        try:
            start = max(tail.offset, st.st_size - HEAD)
            data = os.pread(fd, st.st_size - start, start)
        except OSError:
            continue
        finally:
            os.close(fd)
        if start > tail.offset:  # from the first line that starts in the window
            k = data.find(b"\n")
            if k < 0:
                continue  # one long line: read in order with the rest
            start, data = start + k + 1, data[k + 1:]
        cut = data.rfind(b"\n") + 1
        if not cut:
            continue
        batch = parse_block(data[:cut], tail.info.index, start, 0)
        tail.ident = (st.st_dev, st.st_ino)
        if start == tail.offset:  # the whole file: stored as read in order
            _advance(batch, [cut], {tail.info.index: tail})
            store.append(batch)
        else:
            batch.line = -batch.line  # the part's k-th line, until it is placed
            for bad in batch.bad:
                bad.line = -bad.line
            first, end = store.append(batch, judge=False)
            tail.ahead = Ahead(start, start + cut, first, end - first, batch.lines,
                               list(batch.bad))
        result.stored(batch)
    return result


def _written_last(tails: list[FileTail], k: int) -> list[tuple[FileTail, os.stat_result]]:
    """The ``k`` tails (with their stat) whose files were modified last, not empty and
    not read to their end, in file order."""
    seen = []
    for t in tails:
        try:
            st = os.stat(t.info.path)
        except OSError:
            continue
        if st.st_size > t.offset and t.ahead is None:
            seen.append((st.st_mtime_ns, t.info.index, t, st))
    newest = sorted(seen, key=lambda x: (-x[0], x[1]))[:k]
    return [(t, st) for _, _, t, st in sorted(newest, key=lambda x: x[1])]


def _executor(n_workers: int, local_first: bool) -> Executor | None:
    """Worker processes to parse in; None when they cannot start here (then this process
    reads it all)."""
    try:
        # Only a UI needs its workers to yield: a CLI or notebook waits for them, and
        # niced, they lose the CPU to any busy process on the machine.
        return ProcessPoolExecutor(max_workers=n_workers, mp_context=_context(),
                                   initializer=_worker_start, initargs=(not local_first,))
    except (OSError, ValueError):
        return None


def _store_all(store: EventStore, parsed: Iterator[tuple[Batch, list[int]]],
               by_index: dict[int, FileTail], total: int, result: PollResult,
               progress: Progress | None) -> None:
    """Store the parsed groups in file order, each file's tail moved past its part; the
    time order is merged once, at the end, not once per batch (``defer_order``)."""
    done = 0
    store.defer_order = True
    reserved = False
    try:
        for batch, consumed in parsed:
            _advance(batch, consumed, by_index)
            size = sum(consumed)
            if not reserved and size >= HEAD // 2:
                # Records per byte of the first chunk tell how many rows are coming.
                store.reserve(int(len(batch) * total / size * 1.05) + 1024)
                reserved = True
            store.append(batch)
            for part in batch.parts():  # read up to a part stored ahead: it is placed
                tail = by_index[part.file]
                if tail.ahead is not None and tail.offset >= tail.ahead.start:
                    tail.settle(store)
            result.stored(batch)
            done += size
            if progress is not None:
                progress(done, total)
    finally:
        store.defer_order = False
        store.sync_order()


def _advance(batch: Batch, consumed: list[int], by_index: dict[int, FileTail]) -> None:
    """Move each file's tail past its part of ``batch`` (read from the start of the
    unread part, so its line numbers count from there: shifted by the lines before)."""
    at = 0
    for part, n in zip(batch.parts(), consumed, strict=True):
        tail = by_index[part.file]
        if tail.lines:
            batch.line[at:at + part.rows] += tail.lines
            for b in batch.bad:
                if b.file == part.file:
                    b.line += tail.lines
        tail.offset += n
        tail.lines += part.lines
        tail.records += part.rows
        at += part.rows


def _worker_start(lower: bool) -> None:
    """A parse worker's set-up: it keeps the memory it frees (:func:`_keep_freed_memory`),
    and with ``lower`` it yields the CPU (:func:`_lower_priority`)."""
    _keep_freed_memory()
    if lower:
        _lower_priority()


KEEP_FREED = 64 * 1024 * 1024
"""Bytes of freed memory a parse worker keeps for its next group (glibc's trim threshold)."""


def _keep_freed_memory() -> None:
    """Keep the memory freed after a group for the next one (a worker's own process only;
    a caller's is left as it is). glibc gives freed memory back to the system past a
    threshold it sets from the blocks it has seen: with the ~1 MB chunks of a pool of many
    small files that was after every group, and every group faulted its pages in again
    (99k page faults for 1M records in 828 files, 0.2 s of the workers' system time,
    against 6k with 8 files). Fixed thresholds stop that: 5.8k faults. Elsewhere than
    glibc, nothing changes."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError, ImportError, TypeError):  # no such C library call
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_trim_threshold, KEEP_FREED)
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum on 64-bit


def _lower_priority() -> None:
    """Parse workers yield the CPU to the process that started them (an app must stay
    responsive while a big run loads); alone on the machine they lose nothing, but any
    other busy process takes the CPU from them, so only a UI asks for it."""
    with contextlib.suppress(OSError):
        os.nice(5)


def prestart() -> None:
    """Start the fork server and resource tracker now, from the main thread.

    An app that swaps ``sys.stderr`` for a capture object (Textual does) cannot start
    them later from a worker thread: they are spawned with the real stderr descriptor.
    Harmless when they already run, or on platforms without a fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    try:
        from multiprocessing import forkserver, resource_tracker

        resource_tracker.ensure_running()
        forkserver.ensure_running()
    except (OSError, ValueError):
        pass  # no fork server: the first load reads in one process instead


def _context() -> multiprocessing.context.BaseContext:
    """``fork`` starts workers in milliseconds but is unsafe once the process has other
    threads (a UI, a server); then ``forkserver`` (or ``spawn`` where it is missing)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")

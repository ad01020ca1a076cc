"""A pool's reading saved on disk, so opening it again costs what changed, not its size.

>>> run = Run(pool); run.load()     # the first open parses; a big pool's reading is saved
>>> run = Run(pool); run.load()     # later opens map the saved columns and parse new tails

What is saved is the state of a reader that paused: the store's columns (numpy arrays,
memory-mapped copy-on-write when opened again, so pages are read as they are touched and
shared with the page cache), its tag tables, messages and per-file judgement state, the
reader's position in every file, and the action join folded so far. Opening from it is
the same as a live reader that kept going: new files and the grown tails of known ones
are read and folded in as they would be.

The cache is an optimisation and is never trusted:

- it is used only when every file it knew is still there with the same identity
  (device, inode), at least the size it had, the same bytes just before where reading
  stopped (a CRC of up to 4 KB) and, if it has not grown, the same modification time:
  anything else (a file replaced, truncated, rewritten or deleted) and the pool is read
  from scratch;
- a cache of another format version, another pool, a wrong checksum (CRC-32 of both of its
  files), a missing or short file, or one that is not this user's own or is writable by
  others is ignored and replaced;
- it is unpickled with an allow-list of the classes the store is made of, so a forged
  file can make no call.

One directory per pool under ``features.pools.cache_dir() / "pools"``, named by a hash of
the pool's real path; the least recently used are removed beyond :data:`MAX_BYTES` in all.
``ACADEMY_TUI_NO_CACHE=1`` (or ``--no-cache``, ``Run(..., cache=False)``) turns it off.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import mmap
import os
import pickle
import shutil
import stat
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.pools import cache_dir
from features.regular import open_regular, open_regular_file

VERSION = 12
"""Bump when anything pickled or described changes shape."""

MIN_RECORDS = 100_000
"""Pools smaller than this are not saved by default: they read in well under a second."""

MAX_BYTES = int(float(os.environ.get("ACADEMY_TUI_CACHE_MAX_GB", "8")) * 2**30)
"""All pool caches together; beyond it the least recently used are removed."""

FINGERPRINT = 4096
"""Bytes before where a file's reading stopped whose CRC must still match."""

_ALIGN = 64

CRC_BLOCK = 64 * 1024 * 1024
"""The columns' file has a CRC-32 per block of this many bytes, so that opening it checks
them on every core (:class:`_Sums`): one CRC over the whole file was 2.2 s of a 30M
record run's 3.4 s open."""

SMALL = 1 << 16
"""Arrays smaller than this (bytes) are kept in the pickle itself."""

_ALLOWED: dict[str, set[str]] = {
    "features.store": {"EventStore", "FileInfo", "StoreStats", "_FileTimes"},
    "features.columns": {"Growable", "Categorical", "Messages"},
    "features.time_order": {"TimeOrder"},
    "features.reader": {"PoolReader", "FileTail"},
    "features.things.actions": {"ActionIndex"},
    "features.things.processes": {"ProcessIndex"},
    "features.batch": {"BadLine"},
    "features.normalize": {"canonical_id", "canonical_str"},
    "numpy": {"dtype", "ndarray", "float64", "int64", "int32", "uint8", "bool_"},
    "numpy.core.multiarray": {"_reconstruct", "scalar", "_frombuffer"},
    "numpy._core.multiarray": {"_reconstruct", "scalar", "_frombuffer"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "builtins": {"set", "frozenset", "bytearray", "slice"},
}
"""What a cache may name when unpickled: the classes the store is made of, no more."""


class CacheError(Exception):
    """A cache that cannot be used (the pool is then read from scratch)."""


@dataclass
class Restored:
    """A run's reading as saved."""

    store: Any
    reader: Any
    actions: Any
    processes: Any
    records: int


def enabled(flag: bool | None) -> bool:
    """``flag`` when given, else on unless ``ACADEMY_TUI_NO_CACHE`` is set."""
    if flag is not None:
        return flag
    return os.environ.get("ACADEMY_TUI_NO_CACHE", "") in ("", "0")


def path_for(pool: str | os.PathLike[str]) -> Path:
    """The cache directory of ``pool``."""
    real = os.path.realpath(os.fspath(pool))
    key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache_dir() / "pools" / key


def saved_bytes(pool: str | os.PathLike[str]) -> int | None:
    """How big the saved reading of ``pool`` says it is (its columns and state), without
    checking it; None when there is none or its description cannot be read. A hint of
    how long :func:`restore` takes (which checks everything)."""
    try:
        meta = json.loads(_bytes(path_for(pool) / "meta.json"))
        return int(meta["arrays_bytes"]) + int(meta["state_bytes"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


# -- saving -------------------------------------------------------------------------------


def save(pool: str | os.PathLike[str], store: Any, reader: Any, actions: Any,
         processes: Any) -> Path:
    """Save a reading (under the store's lock). Returns the cache directory."""
    where = path_for(pool)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(where.parent, 0o700)
        os.chmod(where, 0o700)
    gen = f"{os.getpid()}-{time.time_ns()}"
    buffers: list[pickle.PickleBuffer] = []
    spans: list[tuple[int, int]] = []
    crcs = _BlockCrcs(CRC_BLOCK)
    apath = where / f"arrays-{gen}.bin"
    spath = where / f"state-{gen}.pkl"
    try:
        # Pickled straight into its file (a copy in memory was as big as the state).
        with _create(spath) as f, store.lock:
            tails = {name: _tail_meta(t) for name, t in reader.tails.items()}
            state = _Counted(f)
            pickle.Pickler(state, protocol=5, buffer_callback=_out_of_band(buffers)).dump(
                (store, reader, actions, processes))
            records = len(store)
        with _create(apath) as f:
            pos = 0
            for b in buffers:
                raw = b.raw()
                pad = -pos % _ALIGN
                if pad:
                    f.write(b"\0" * pad)
                    crcs.add(memoryview(b"\0" * pad))
                    pos += pad
                f.write(raw)
                crcs.add(raw.cast("B"))
                spans.append((pos, raw.nbytes))
                pos += raw.nbytes
        meta = {"version": VERSION, "pool": os.path.realpath(os.fspath(pool)),
                "records": records, "state": spath.name, "state_bytes": state.n,
                "state_crc": state.crc, "arrays": apath.name,
                "arrays_bytes": pos, "arrays_crcs": crcs.done(), "crc_block": CRC_BLOCK,
                "spans": spans,
                "tails": tails, "saved": time.time()}
        tmp = where / f"meta-{gen}.json"
        with _create(tmp) as f:
            f.write(json.dumps(meta).encode())
        os.replace(tmp, where / "meta.json")
    except BaseException:
        for p in (apath, spath):
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    for p in where.iterdir():  # earlier generations
        if p.name not in ("meta.json", apath.name, spath.name):
            with contextlib.suppress(OSError):
                p.unlink()
    evict(keep=where)
    return where


class _BlockCrcs:
    """CRC-32s of consecutive blocks of ``size`` bytes of what is added."""

    def __init__(self, size: int) -> None:
        self.size, self.crc, self.fill = size, 0, 0
        self.crcs: list[int] = []

    def add(self, data: memoryview) -> None:
        while len(data):
            take = min(self.size - self.fill, len(data))
            self.crc = zlib.crc32(data[:take], self.crc)
            self.fill += take
            data = data[take:]
            if self.fill == self.size:
                self.crcs.append(self.crc)
                self.crc, self.fill = 0, 0

    def done(self) -> list[int]:
        return self.crcs + ([self.crc] if self.fill else [])


class _Counted:
    """A file's ``write`` that keeps the CRC-32 and length of what went through it."""

    def __init__(self, f: Any) -> None:
        self.f, self.crc, self.n = f, 0, 0

    def write(self, data: Any) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.n += len(memoryview(data).cast("B"))
        return int(self.f.write(data))


def _out_of_band(buffers: list[pickle.PickleBuffer]) -> Any:
    """Columns go to the mapped file; small arrays (a file's last few times) stay in the
    pickle, where one costs less to rebuild than a view of the map."""
    def take(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < SMALL:
            return True  # in band
        buffers.append(buf)
        return False
    return take


def _create(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _tail_meta(tail: Any) -> dict[str, Any]:
    try:
        st = os.stat(tail.info.path)
        seen = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    except OSError:
        seen = None
    return {"path": tail.info.path, "ident": list(tail.ident) if tail.ident else None,
            "offset": tail.offset, "crc": _fingerprint(tail.info.path, tail.offset),
            "seen": seen}


def _fingerprint(path: str, end: int) -> int | None:
    start = max(0, end - FINGERPRINT)
    try:
        fd = open_regular(path)  # a pool file: a FIFO put in its place would block
    except OSError:
        return None
    try:
        data = os.pread(fd, end - start, start)
    except OSError:
        return None
    finally:
        os.close(fd)
    return zlib.crc32(data) if len(data) == end - start else None


def evict(keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Remove the least recently used pool caches beyond ``limit`` bytes in all (never
    ``keep``); returns those removed."""
    limit = MAX_BYTES if limit is None else limit
    root = cache_dir() / "pools"
    entries = []
    try:
        dirs = list(root.iterdir())
    except OSError:
        return []
    for d in dirs:
        try:
            used = os.stat(d / "meta.json").st_mtime
        except OSError:
            used = 0.0
        size = 0
        with contextlib.suppress(OSError):
            size = sum(p.stat().st_size for p in d.iterdir())
        entries.append((used, size, d))
    total = sum(s for _, s, _ in entries)
    gone = []
    for _, size, d in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if keep is not None and d == keep:
            continue
        shutil.rmtree(d, ignore_errors=True)
        total -= size
        gone.append(d)
    return gone


def discard(pool: str | os.PathLike[str]) -> bool:
    """Remove the saved reading of ``pool`` (one that could not be used, when no new one
    replaces it: every later open would check it and refuse it again). Only a directory
    of this user's own, not a link, is removed; True when one was."""
    where = path_for(pool)
    try:
        st = os.stat(where, follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        return False
    shutil.rmtree(where, ignore_errors=True)
    return not where.exists()


# -- opening ------------------------------------------------------------------------------


def restore(pool: str | os.PathLike[str]) -> Restored:
    """The saved reading of ``pool``, checked against the files as they are now. Raises
    :class:`CacheError` (with why) when there is none or it cannot be used."""
    where = path_for(pool)
    meta_path = where / "meta.json"
    try:
        _owned(where)
        _owned(meta_path)
        meta_bytes = _bytes(meta_path)
        meta = json.loads(meta_bytes)
    except FileNotFoundError:
        raise CacheError("no cache") from None
    except (OSError, ValueError) as e:
        raise CacheError(f"unreadable cache: {e}") from None
    if not isinstance(meta, dict) or meta.get("version") != VERSION:
        raise CacheError("another cache version")
    if meta.get("pool") != os.path.realpath(os.fspath(pool)):
        raise CacheError("the cache of another pool")
    early = _early(where, meta_bytes)
    try:
        _check_files(meta["tails"])
        state = _read(where / str(meta["state"]), int(meta["state_bytes"]))
        if zlib.crc32(state) != meta["state_crc"]:
            raise CacheError("the cache's state does not match its checksum")
        apath = where / str(meta["arrays"])
        buffers = _map(apath, meta)
        # The columns' checksum on the other core while the state is unpickled (zlib
        # lets go of the interpreter on big buffers), read through a small buffer: over
        # the map it would make every page of the file resident in this process.
        with ThreadPoolExecutor(1) as checker:
            block = meta["crc_block"]
            if type(block) is not int or block != CRC_BLOCK:  # (a block of 1 byte: hours)
                raise CacheError("the cache's checksums were made over other blocks")
            if early is not None and early.arrays == _identity(os.stat(apath)):
                sums = early.sums  # of this very file
            else:
                sums = _Sums(apath, block, int(meta["arrays_bytes"]))
            crc = checker.submit(sums.result)
            # A million message strings are a million allocations: without the cyclic
            # collector's passes over them (none of them can form a cycle) a third faster.
            was = gc.isenabled()
            gc.disable()
            try:
                store, reader, actions, processes = _Unpickler(
                    io.BytesIO(state), buffers=buffers).load()
            finally:
                if was:
                    gc.enable()
            if crc.result() != meta["arrays_crcs"]:
                raise CacheError("the cache's columns do not match their checksum")
    except CacheError:
        raise
    except Exception as e:  # anything a damaged file can raise
        raise CacheError(f"damaged cache: {type(e).__name__}: {e}"[:300]) from None
    finally:
        if early is not None:  # not taken, or given up before its end: no more summing
            early.sums.cancel()
    if len(store) != meta["records"] or set(reader.tails) != set(meta["tails"]):
        raise CacheError("the cache's content does not match its description")
    with contextlib.suppress(OSError):
        os.utime(meta_path)  # recently used
    return Restored(store, reader, actions, processes, len(store))


def _owned(path: Path) -> None:
    st = os.stat(path, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise CacheError(f"{path} is a symbolic link")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheError(f"{path} belongs to another user")
    if st.st_mode & 0o022:
        raise CacheError(f"{path} is writable by others")


def _bytes(path: Path) -> bytes:
    """The bytes of the regular file at ``path`` (a FIFO put in a cache's place would
    block a plain read for good: :func:`features.regular.open_regular`)."""
    with open_regular_file(path) as f:
        return f.read()


def _read(path: Path, size: int) -> bytes:
    _owned(path)
    data = _bytes(path)
    if len(data) != size:
        raise CacheError(f"{path.name} is {len(data)} bytes, not {size}")
    return data


class _Sums:
    """The CRC-32 of each ``block`` bytes of a file, summed by whichever threads take part
    (:meth:`work`): each takes the next block no thread has taken, so the threads of a
    :func:`restore` join a sum :func:`check_early` started instead of waiting for it.
    Each block is summed over a map of the file in one call, which lets go of the
    interpreter for all of it: read through a small buffer, each piece took the
    interpreter back, and beside a busy thread (the unpickling, an import) each took
    waiting for it. A block's pages are given back to the page cache after it, so they do
    not stay resident in this process. Raises :class:`CacheError` for a file shorter than
    ``size``."""

    def __init__(self, path: Path, block: int, size: int) -> None:
        self.path, self.block, self.size = path, block, size
        self.n = -(-size // block)
        self.crcs = [0] * self.n
        self._next = 0
        self._left = self.n
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._mm: mmap.mmap | None = None
        self._threads: list[threading.Thread] = []
        try:
            with open_regular_file(path) as f:
                if os.fstat(f.fileno()).st_size < size:
                    raise CacheError(f"{path.name} ends early")
                if size:
                    self._mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        except ValueError as e:  # (mmap) the file is shorter than that now
            raise CacheError(f"{path.name} ends early") from e
        if self._mm is None:
            self._done.set()
            return
        self._view = memoryview(self._mm)

    def work(self) -> None:
        """Sum blocks until none is left to take."""
        mm = self._mm
        while mm is not None:
            with self._lock:
                i = self._next
                if i >= self.n:
                    return
                self._next += 1
            at, end = i * self.block, min((i + 1) * self.block, self.size)
            try:
                self.crcs[i] = zlib.crc32(self._view[at:end])
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    mm.madvise(mmap.MADV_DONTNEED, at, end - at)
            except Exception as e:  # said by result()
                self._error = e
            finally:
                with self._lock:
                    self._left -= 1
                    last = self._left == 0
                if last:  # every block summed: no thread holds a slice of the map now
                    self._close()

    def _close(self) -> None:
        self._view.release()
        self._mm.close()  # type: ignore[union-attr]
        self._done.set()

    def start(self, threads: int) -> None:
        """Start ``threads`` more threads summing (joined by :meth:`result`)."""
        for _ in range(threads):
            t = threading.Thread(target=self.work, name="academy-tui-cache-sum", daemon=True)
            t.start()
            self._threads.append(t)

    def result(self, threads: int = 4) -> list[int]:
        """The sums, this thread and up to ``threads - 1`` more (one a core) summing
        what is left; every thread that took part has ended when it returns (a process
        with no other thread starts its parse workers by ``fork``:
        :func:`features.loader._context`)."""
        self.start(max(0, min(os.cpu_count() or 1, threads, self.n) - 1))
        self.work()
        self._done.wait()
        for t in self._threads:
            t.join()
        if self._error is not None:
            raise self._error
        return self.crcs

    def cancel(self) -> None:
        """Take no more blocks (the sums are not wanted); returns once the threads have
        ended, after the block each was summing."""
        with self._lock:
            self._left -= self.n - self._next
            self._next = self.n
            last = self._left == 0 and self._mm is not None and not self._done.is_set()
        if last:
            self._close()
        for t in self._threads:
            t.join()


def _map(path: Path, meta: dict[str, Any]) -> list[memoryview]:
    _owned(path)
    size = int(meta["arrays_bytes"])
    with open_regular_file(path) as f:
        if os.fstat(f.fileno()).st_size != size:
            raise CacheError(f"{path.name} is not {size} bytes")
        if size == 0:
            return []
        # Copy-on-write: the store may write into its columns; the file never changes.
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    view = memoryview(mm)
    out = []
    for start, n in meta["spans"]:
        if not (start >= 0 and start + n <= size):
            raise CacheError("a column lies outside the cache file")
        out.append(view[start:start + n])
    return out


@dataclass
class _Early:
    """The sums :func:`check_early` started on a saved reading."""

    meta: bytes
    """Its description as it was read then: the sums are taken only for that one."""
    arrays: tuple[int, ...]
    """The identity of its columns' file then (:func:`_identity`)."""
    sums: _Sums
    """Of its columns' file, being summed."""


_EARLY: dict[Path, _Early] = {}


def check_early(pool: str | os.PathLike[str]) -> bool:
    """Start summing the columns of the saved reading of ``pool`` on another thread, for
    a :func:`restore` soon after to take: ~40 ms of a 1M-record pool's ~80-130 ms open.
    The app calls this before it imports Textual, whose import (holding the interpreter)
    then runs beside the checksums (which let go of it for a block at a time). Nothing
    is trusted from here: :func:`restore` takes the sums only for the same description
    and the same columns' file (identity, size, times) and compares them with the
    description's, and checks everything else as it does without. True when the sums
    started (a saved reading of this format is there)."""
    where = path_for(pool)
    try:
        _owned(where)
        meta_bytes = _bytes(where / "meta.json")
        meta = json.loads(meta_bytes)
        if meta.get("version") != VERSION or meta.get("crc_block") != CRC_BLOCK:
            return False
        apath = where / str(meta["arrays"])
        size = int(meta["arrays_bytes"])
        st = os.stat(apath, follow_symlinks=False)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:  # (a FIFO would block)
        return False
    try:
        sums = _Sums(apath, CRC_BLOCK, size)
    except (OSError, CacheError):
        return False
    stale = _EARLY.pop(where, None)
    if stale is not None:  # asked again before a restore took it
        stale.sums.cancel()
    _EARLY[where] = _Early(meta_bytes, _identity(st), sums)
    sums.start(1)  # one thread: the other core is the import's
    return True


def _early(where: Path, meta_bytes: bytes) -> _Early | None:
    """The sums :func:`check_early` started on the saved reading in ``where`` (taken:
    once), when its description is still ``meta_bytes``."""
    early = _EARLY.pop(where, None)
    if early is not None and early.meta != meta_bytes:
        early.sums.cancel()
        return None
    return early


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _check_files(tails: dict[str, Any]) -> None:
    """Every file the cache knew must be the one it read, grown at most: the same file
    (device, inode), at least as long, the same bytes just before where reading stopped,
    and, when it has not grown since the save, the same modification and status times (a
    file written over in place, anywhere in it, keeps its size; a log that is only
    appended to changes its times only as it grows; a modification time put back, as
    ``touch -r`` does, changes the status time, which no one can set)."""
    for name, t in tails.items():
        try:
            st = os.stat(t["path"])
        except OSError:
            raise CacheError(f"{name} is gone") from None
        if t["ident"] is not None and [st.st_dev, st.st_ino] != t["ident"]:
            raise CacheError(f"{name} was replaced")
        if st.st_size < t["offset"]:
            raise CacheError(f"{name} was truncated")
        seen = t["seen"]
        if seen is not None and st.st_size == seen[0]:
            if st.st_mtime_ns != seen[1]:
                raise CacheError(f"{name} was rewritten (its size the same, its time not)")
            if len(seen) > 2 and st.st_ctime_ns != seen[2]:
                raise CacheError(f"{name} was changed (its size and modification time the "
                                 "same, its status time not)")
        if _fingerprint(t["path"], t["offset"]) != t["crc"]:
            raise CacheError(f"{name} was rewritten")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name not in _ALLOWED.get(module, ()):
            raise CacheError(f"the cache names {module}.{name}, which a cache never holds")
        return super().find_class(module, name)


__all__ = ["MIN_RECORDS", "VERSION", "CacheError", "Restored", "check_early", "discard",
           "enabled", "evict", "path_for", "restore", "save"]

"""Events as JSON Lines (``academy-tui events --format jsonl``), on every core.

Each record is read again from its file (the store keeps only a few columns), parsed,
typed (:func:`features.typed.type_in_place`) and written with its location (``@file``,
``@line``) and its time since the run's start (``@t``); ``raw`` keeps the record as
written. A record costs ~6 us of CPU this way with the compiled typing rule (~11 us with
the Python one) on this 2-core machine, ~3x a bare parse, so blocks of rows in the order
asked for are done by worker processes and written in that order by the caller: the same
bytes as one process writes (a test holds them to it), in about half the time.

Raw records are not written again: the line as written gets ``@file`` and ``@line`` put
before its closing brace, once it parses as a JSON object (a record that has those keys
itself, or a line that no longer parses, takes the slow way).

The text goes to a terminal-safe output (:func:`features.safe.json_escape_bytes`, asked
for with ``escape``) from the workers too. :func:`jsonl_to_fd` has them leave each block
in a file that the kernel copies to the output (``sendfile``), so none of it passes
through the caller: at 1M records, receiving ~1 GB through the pool's pipes and escaping
it here had cost the caller 3.6 s of CPU, as much as all the workers' reading and
splicing of ``--raw`` (now 2.5 s against 4.2-4.5 s in all).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import orjson

from features.events import Events
from features.file_values import read_lines
from features.loader import _executor as _process_pool
from features.safe import json_escape_bytes
from features.typed import type_in_place

BLOCK = 16_384
"""Rows per worker task (~16 MB of output)."""

PARALLEL_MIN = 65_536
"""Below this many rows one process is faster than starting workers."""

_NL = orjson.OPT_APPEND_NEWLINE
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass
class _Block:
    """What a worker needs for a block of rows, positions 0..n-1 in the order asked."""

    paths: list[str]
    file: np.ndarray
    """Per position, its file (an index into ``paths``)."""
    offset: np.ndarray
    length: np.ndarray
    names: list[str]
    """Per file, its ``@file``."""
    quoted: list[bytes]
    """Per file, its ``@file`` as JSON."""
    line: np.ndarray
    t: np.ndarray | None
    """Per position, ``@t``; None for raw records."""
    repaired: dict[int, bytes]
    """Position -> the repaired line of a record recovered from a bad one."""
    plain: np.ndarray | None = None
    """Per position (raw records only): its line is known to be a JSON object with keys,
    none of them ``@file`` or ``@line``, as the reader parsed it (its file unchanged
    since: :func:`features.liveness.files_as_read`): spliced without parsing again."""
    escape: bool = False
    """Escape the block's text for a terminal (:func:`features.safe.json_escape_bytes`)."""
    spill: str | None = None
    """A private directory to leave the block's text in (a file the caller sends on and
    removes) instead of sending it back through the pool's pipe."""


@dataclass
class _Done:
    """A rendered block: its text, or the file holding it; or, when some of its records
    could not be read, its text unescaped with each position's end (for :func:`_fill`)."""

    text: bytes = b""
    ends: np.ndarray | None = None
    path: str | None = None
    size: int = 0


def _work(block: _Block) -> _Done:
    """A block rendered (worker side), escaped if asked, left in a spill file if asked."""
    text, ends = _render(block)
    if bool((np.diff(ends, prepend=0) == 0).any()):
        return _Done(text, ends)  # records to fill in: the caller does, then escapes
    if block.escape:
        text = json_escape_bytes(text)
    if block.spill is not None and text:
        path = _spill(block.spill, text)
        if path is not None:
            return _Done(path=path, size=len(text))
    return _Done(text)


def _spill(directory: str, text: bytes) -> str | None:
    """``text`` written to a new file in ``directory``; None (and nothing left there)
    when it cannot be (a full disk, a directory gone)."""
    path = os.path.join(directory, uuid.uuid4().hex)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        _write_all(fd, text)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None
    finally:
        os.close(fd)
    return path


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while len(view):
        view = view[os.write(fd, view):]


def _render(block: _Block) -> tuple[bytes, np.ndarray]:
    """The block's JSON Lines and each position's end in them; a position whose record
    cannot be read gets no bytes (its end equals the one before) for the caller to fill."""
    n = len(block.file)
    lines: list[bytes | None] = [None] * n
    # Positions by file, then offset (stable): one sort, where a pass over the block for
    # each of its files cost ~0.5 us a record with 828 files.
    order = np.lexsort((block.offset, block.file))
    for pos in np.split(order, np.flatnonzero(np.diff(block.file[order])) + 1):
        if not len(pos):
            continue
        f = int(block.file[pos[0]])
        got = read_lines(block.paths[f], block.offset[pos], block.length[pos])
        if got is not None:
            for p, line in zip(pos.tolist(), got, strict=True):
                lines[p] = line
    for p, fixed in block.repaired.items():
        lines[p] = fixed
    # One buffer written into: each record's text (orjson's own output) is freed as soon
    # as it is copied, and the next one reuses its memory. Kept until a join, 16k of them
    # took a fresh block each (orjson allocates more than it keeps), ~3 us a record of
    # page faults: a fifth of a typed record's CPU.
    buf = bytearray()
    ends: list[int] = []
    loads = orjson.loads
    at_line = block.line.tolist()
    at_t = None if block.t is None else block.t.tolist()
    file_of = block.file.tolist()
    plain = block.plain.tolist() if block.plain is not None else None
    sizes = block.length.tolist()
    for p, got_line in enumerate(lines):
        if got_line is not None:
            f = file_of[p]
            if plain is not None and plain[p] and len(got_line) == sizes[p]:
                _splice_into(buf, got_line.rstrip(b" \t\r\n"), block.quoted[f], at_line[p])
            else:
                try:
                    rec = loads(got_line)
                except orjson.JSONDecodeError:
                    rec = None
                if type(rec) is dict:
                    buf += _line(got_line, rec, block.names[f], block.quoted[f], at_line[p],
                                 None if at_t is None else at_t[p])
        ends.append(len(buf))
    return bytes(buf), np.array(ends, dtype=np.int64)


def _line(raw: bytes, rec: dict, name: str, quoted: bytes, line: int, t: float | None
          ) -> bytes:
    """One record's line: the raw line with its location spliced in, or the record
    (typed when ``t`` is given) written again."""
    if t is None and rec and "@file" not in rec and "@line" not in rec:
        body = raw.rstrip(b" \t\r\n")
        if body.endswith(b"}"):
            return _splice(body, quoted, line)
    rec = type_in_place(rec) if t is not None else rec  # rec: just parsed, ours alone
    rec["@file"] = name
    rec["@line"] = line if line > 0 else None
    if t is not None:
        rec["@t"] = t
    return orjson.dumps(rec, option=_NL, default=str)


def _splice(body: bytes, quoted: bytes, line: int) -> bytes:
    """A JSON object's text (ending with its ``}``) with ``@file`` and ``@line`` put
    before its closing brace (``@line`` null where it is not known: a non-positive line,
    see :meth:`features.events.Events.line_text`)."""
    return b"".join((body[:-1], b',"@file":', quoted, b',"@line":',
                     str(line).encode() if line > 0 else b"null", b"}\n"))


def _splice_into(out: bytearray, body: bytes, quoted: bytes, line: int) -> None:
    """:func:`_splice` written at the end of ``out``."""
    out += _splice(body, quoted, line)


def _plain(ev: Events, rows: np.ndarray, as_read: set[int]) -> np.ndarray:
    """Per row: a record with keys, none of them ``@file`` or ``@line`` (from its key
    set: no parse), in a file unchanged since it was read (``as_read``)."""
    shape = ev.shape[rows]
    keys = ev.store.shape_keys[:int(shape.max()) + 1] if len(shape) else []
    ok = np.fromiter((bool(k) and "@file" not in k and "@line" not in k for k in keys),
                     dtype=bool, count=len(keys))
    return ok[shape] & np.isin(ev.file[rows], np.fromiter(as_read, dtype=np.int64))


def _block(ev: Events, rows: np.ndarray, raw: bool, as_read: set[int] | None = None,
           escape: bool = False, spill: str | None = None) -> _Block:
    files, inverse = np.unique(ev.file[rows], return_inverse=True)
    paths = [ev.file_paths[f] for f in files.tolist()]
    names = [ev.file_names[f] for f in files.tolist()]
    repaired = ev.store.repaired
    fixed = {p: repaired[r] for p, r in enumerate(rows.tolist()) if r in repaired} \
        if repaired else {}
    t = None if raw else (ev.created[rows] - ev.t0).astype(np.float64)
    plain = _plain(ev, rows, as_read) if raw and as_read else None
    if plain is not None:
        plain[list(fixed)] = False  # a repaired record: its fixed text is parsed
    return _Block(paths, inverse.astype(np.int32), ev.offset[rows].astype(np.int64),
                  ev.length[rows].astype(np.int64), names, list(map(orjson.dumps, names)),
                  ev.line[rows].astype(np.int64),
                  t, fixed, plain, escape, spill)


def _fill(ev: Events, rows: np.ndarray, raw: bool, text: bytes, ends: np.ndarray) -> bytes:
    """``text`` with a line for each record that could not be read (its message from the
    store, marked ``@unreadable``)."""
    sizes = np.diff(ends, prepend=0)
    missing = np.flatnonzero(sizes == 0)
    if not len(missing):
        return text
    parts = []
    start = 0
    for p in missing.tolist():
        a = int(ends[p])
        parts.append(text[start:a])
        start = a
        r = int(rows[p])
        rec: dict = {"message": ev.message[r], "@unreadable": True,
                     "@file": ev.file_names[ev.file[r]],
                     "@line": int(ev.line[r]) if ev.line[r] > 0 else None}
        if not raw:
            rec["@t"] = float(ev.created[r] - ev.t0)
        parts.append(orjson.dumps(rec, option=_NL, default=str))
    parts.append(text[start:])
    return b"".join(parts)


def _blocks(ev: Events, rows: np.ndarray, raw: bool, workers: int | None, block: int,
            parallel_min: int, as_read: set[int] | None, escape: bool, spill: str | None
            ) -> Generator[tuple[np.ndarray, _Done], None, None]:
    """Each block of ``rows`` with its rendering, in order: by ``workers`` processes when
    there are many rows, else (or for what they could not do) in this one."""
    cuts = list(range(0, len(rows), block))
    pool = _executor(workers) if len(rows) >= parallel_min else None
    if pool is None:
        for a in cuts:
            some = rows[a:a + block]
            yield some, _work(_block(ev, some, raw, as_read, escape))
        return
    executor, n_workers = pool
    pending: deque[tuple[np.ndarray, Future[_Done] | None]] = deque()
    nxt = 0
    broken = False
    try:
        while nxt < len(cuts) or pending:
            while nxt < len(cuts) and len(pending) < 2 * n_workers:
                some = rows[cuts[nxt]:cuts[nxt] + block]
                fut = None
                if not broken:
                    try:
                        fut = executor.submit(_work, _block(ev, some, raw, as_read, escape,
                                                            spill))
                    except (OSError, RuntimeError, BrokenProcessPool):
                        broken = True
                pending.append((some, fut))
                nxt += 1
            some, fut = pending.popleft()
            got = None
            if fut is not None:
                try:
                    got = fut.result()
                except (OSError, BrokenProcessPool):  # a worker died (OOM-killed?)
                    broken = True
            if got is None:  # what the workers did not do: this process does
                got = _work(_block(ev, some, raw, as_read, escape))
            yield some, got
    finally:
        for _, fut in pending:
            if fut is not None:
                fut.cancel()
        with contextlib.suppress(OSError, BrokenProcessPool):
            executor.shutdown(wait=True, cancel_futures=True)


def _executor(workers: int | None) -> tuple[Executor, int] | None:
    """Worker processes (default: the CPUs, at most 4) and how many; None for one or when
    they cannot start here (the loader's pool of them, at normal priority)."""
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if n_workers <= 1:
        return None
    executor = _process_pool(n_workers, True)
    return None if executor is None else (executor, n_workers)


def _text(ev: Events, rows: np.ndarray, raw: bool, done: _Done, escape: bool) -> bytes:
    """A block's text (not left in a file), its unreadable records filled in."""
    if done.ends is not None:
        text = _fill(ev, rows, raw, done.text, done.ends)
        return json_escape_bytes(text) if escape else text
    return done.text


def jsonl(ev: Events, rows: np.ndarray, raw: bool = False, workers: int | None = None,
          block: int = BLOCK, parallel_min: int = PARALLEL_MIN,
          as_read: set[int] | None = None, escape: bool = False) -> Iterator[bytes]:
    """The records of ``rows`` (in that order) as JSON Lines, a block at a time: typed
    with ``@file``, ``@line`` and ``@t``, or (``raw``) as written with ``@file`` and
    ``@line``. Many rows are done by ``workers`` processes (default: the CPUs, at most
    4); fewer than ``parallel_min`` in this one. ``as_read``: the files unchanged since
    they were read (:meth:`features.run.Run.files_as_read`), whose raw records are not
    parsed again. ``escape``: the text escaped for a terminal
    (:func:`features.safe.json_escape_bytes`, lossless), by the workers."""
    rows = np.asarray(rows, dtype=np.int64)
    for some, done in _blocks(ev, rows, raw, workers, block, parallel_min, as_read, escape,
                              None):
        yield _text(ev, some, raw, done, escape)


def jsonl_to_fd(fd: int, ev: Events, rows: np.ndarray, raw: bool = False,
                workers: int | None = None, block: int = BLOCK,
                parallel_min: int = PARALLEL_MIN, as_read: set[int] | None = None,
                escape: bool = False) -> None:
    """:func:`jsonl` written to the file descriptor ``fd``. The workers leave each block
    in a file of a private directory (in memory, ``/dev/shm``, where there is room) and
    this process has the kernel copy it on (``sendfile``): the text never passes through
    this process, where receiving it through the pool's pipe cost as much CPU as the
    workers' reading and parsing (``--raw``)."""
    rows = np.asarray(rows, dtype=np.int64)
    spill = _spill_dir() if len(rows) >= parallel_min else None
    blocks = _blocks(ev, rows, raw, workers, block, parallel_min, as_read, escape, spill)
    try:
        for some, done in blocks:
            if done.path is not None:
                _send(fd, done.path, done.size)
            else:
                _write_all(fd, _text(ev, some, raw, done, escape))
    finally:
        blocks.close()  # the workers stopped before their directory goes
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)


SPILL_ROOTS = ("/dev/shm", None)
"""Where a spill directory is made: memory first, then the system's temporary directory."""
SPILL_ROOM = 512 * 1024 * 1024
"""Free bytes a root needs (~8 blocks in flight take ~150 MB)."""


SPILL_PREFIX = "academy-tui-jsonl-"


def _spill_dir() -> str | None:
    """A new private directory for the workers' blocks (its name holds this process's
    id); None when none can be made (then the blocks come through the pipe). Those left
    by a process that no longer runs (killed before it could remove its own: up to ~8
    blocks, ~150 MB of memory in ``/dev/shm``) are removed first."""
    for root in SPILL_ROOTS:
        try:
            where = root if root is not None else tempfile.gettempdir()
            _remove_stale(where)
            st = os.statvfs(where)
            if st.f_bavail * st.f_frsize < SPILL_ROOM:
                continue
            return tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=where)
        except OSError:
            continue
    return None


def _remove_stale(root: str) -> None:
    """Remove the spill directories in ``root`` that are this user's and whose process
    (the id in their name) is gone. Anything else there is left alone: another user's,
    a symbolic link, a name of another form, a process still running."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    with os.scandir(root) as entries:
        for e in entries:
            if not e.name.startswith(SPILL_PREFIX):
                continue
            pid_text = e.name[len(SPILL_PREFIX):].split("-", 1)[0]
            try:
                st = e.stat(follow_symlinks=False)
                if not pid_text.isdigit() or not e.is_dir(follow_symlinks=False) or \
                        (uid is not None and st.st_uid != uid) or _alive(int(pid_text)):
                    continue
            except (OSError, ValueError):
                continue
            shutil.rmtree(e.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's (EPERM), or an id no process has
        return True
    return True


def _send(fd: int, path: str, size: int) -> None:
    """The ``size`` bytes of the file at ``path`` written to ``fd`` by the kernel (a copy
    through this process where ``sendfile`` cannot write to ``fd``); the file removed."""
    src = os.open(path, os.O_RDONLY)
    try:
        os.unlink(path)
        done = 0
        while done < size:
            try:
                n = os.sendfile(fd, src, done, size - done)
            except OSError as exc:
                if exc.errno not in _NO_SENDFILE:
                    raise
                break
            if n == 0:
                break
            done += n
        while done < size:  # sendfile cannot (O_APPEND, not Linux) or the file is short
            chunk = os.pread(src, min(size - done, 1 << 20), done)
            if not chunk:
                raise OSError(errno.EIO, f"a block of the output was cut short: {path}")
            _write_all(fd, chunk)
            done += len(chunk)
    finally:
        os.close(src)


_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTSOCK,
                errno.EBADF, errno.EXDEV}

"""Events as JSON Lines (``academy-tui events --format jsonl``), on every core.

Each record is read again from its file (the store keeps only a few columns), parsed,
typed (:func:`features.typed.typed_record`) and written with its location (``@file``,
``@line``) and its time since the run's start (``@t``); ``raw`` keeps the record as
written. A record costs ~14 us of CPU this way (reading 1.2, parsing 3.2, typing 5.5,
writing 3.7 on this 2-core machine), 6x a bare parse, so blocks of rows in the order asked
for are done by worker processes and written in that order by the caller: the same bytes
as one process writes (a test holds them to it), in about half the time.

Raw records are not written again: the line as written gets ``@file`` and ``@line`` put
before its closing brace, once it parses as a JSON object (a record that has those keys
itself, or a line that no longer parses, takes the slow way).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import orjson

from features.events import Events
from features.file_values import read_lines
from features.loader import _context
from features.typed import typed_record

BLOCK = 16_384
"""Rows per worker task (~16 MB of output)."""

PARALLEL_MIN = 65_536
"""Below this many rows one process is faster than starting workers."""

_NL = orjson.OPT_APPEND_NEWLINE


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


def _render(block: _Block) -> tuple[bytes, np.ndarray]:
    """The block's JSON Lines and each position's end in them; a position whose record
    cannot be read gets no bytes (its end equals the one before) for the caller to fill."""
    n = len(block.file)
    lines: list[bytes | None] = [None] * n
    for f in np.unique(block.file).tolist():
        pos = np.flatnonzero(block.file == f)
        pos = pos[np.argsort(block.offset[pos], kind="stable")]
        got = read_lines(block.paths[f], block.offset[pos], block.length[pos])
        if got is not None:
            for p, line in zip(pos.tolist(), got, strict=True):
                lines[p] = line
    for p, fixed in block.repaired.items():
        lines[p] = fixed
    out: list[bytes] = []
    ends = np.zeros(n, dtype=np.int64)
    size = 0
    loads = orjson.loads
    at_line = block.line.tolist()
    at_t = None if block.t is None else block.t.tolist()
    file_of = block.file.tolist()
    plain = block.plain.tolist() if block.plain is not None else None
    sizes = block.length.tolist()
    for p, got_line in enumerate(lines):
        text = b""
        if got_line is not None:
            f = file_of[p]
            if plain is not None and plain[p] and len(got_line) == sizes[p]:
                text = _splice(got_line.rstrip(b" \t\r\n"), block.quoted[f], at_line[p])
            else:
                try:
                    rec = loads(got_line)
                except orjson.JSONDecodeError:
                    rec = None
                if type(rec) is dict:
                    text = _line(got_line, rec, block.names[f], block.quoted[f], at_line[p],
                                 None if at_t is None else at_t[p])
        out.append(text)
        size += len(text)
        ends[p] = size
    return b"".join(out), ends


def _line(raw: bytes, rec: dict, name: str, quoted: bytes, line: int, t: float | None
          ) -> bytes:
    """One record's line: the raw line with its location spliced in, or the record
    (typed when ``t`` is given) written again."""
    if t is None and rec and "@file" not in rec and "@line" not in rec:
        body = raw.rstrip(b" \t\r\n")
        if body.endswith(b"}"):
            return _splice(body, quoted, line)
    rec = typed_record(rec) if t is not None else rec
    rec["@file"] = name
    rec["@line"] = line
    if t is not None:
        rec["@t"] = t
    return orjson.dumps(rec, option=_NL, default=str)


def _splice(body: bytes, quoted: bytes, line: int) -> bytes:
    """A JSON object's text (ending with its ``}``) with ``@file`` and ``@line`` put
    before its closing brace."""
    return b"".join((body[:-1], b',"@file":', quoted, b',"@line":', str(line).encode(),
                     b"}\n"))


def _plain(ev: Events, rows: np.ndarray, as_read: set[int]) -> np.ndarray:
    """Per row: a record with keys, none of them ``@file`` or ``@line`` (from its key
    set: no parse), in a file unchanged since it was read (``as_read``)."""
    shape = ev.shape[rows]
    keys = ev.store.shape_keys[:int(shape.max()) + 1] if len(shape) else []
    ok = np.fromiter((bool(k) and "@file" not in k and "@line" not in k for k in keys),
                     dtype=bool, count=len(keys))
    return ok[shape] & np.isin(ev.file[rows], np.fromiter(as_read, dtype=np.int64))


def _block(ev: Events, rows: np.ndarray, raw: bool, as_read: set[int] | None = None
           ) -> _Block:
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
                  t, fixed, plain)


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
                     "@file": ev.file_names[ev.file[r]], "@line": int(ev.line[r])}
        if not raw:
            rec["@t"] = float(ev.created[r] - ev.t0)
        parts.append(orjson.dumps(rec, option=_NL, default=str))
    parts.append(text[start:])
    return b"".join(parts)


def jsonl(ev: Events, rows: np.ndarray, raw: bool = False, workers: int | None = None,
          block: int = BLOCK, parallel_min: int = PARALLEL_MIN,
          as_read: set[int] | None = None) -> Iterator[bytes]:
    """The records of ``rows`` (in that order) as JSON Lines, a block at a time: typed
    with ``@file``, ``@line`` and ``@t``, or (``raw``) as written with ``@file`` and
    ``@line``. Many rows are done by ``workers`` processes (default: the CPUs, at most
    4); fewer than ``parallel_min`` in this one. ``as_read``: the files unchanged since
    they were read (:meth:`features.run.Run.files_as_read`), whose raw records are not
    parsed again."""
    rows = np.asarray(rows, dtype=np.int64)
    cuts = list(range(0, len(rows), block))
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    executor: Executor | None = None
    if n_workers > 1 and len(rows) >= parallel_min:
        try:
            executor = ProcessPoolExecutor(max_workers=n_workers, mp_context=_context())
        except (OSError, ValueError):
            executor = None
    if executor is None:
        for a in cuts:
            some = rows[a:a + block]
            yield _fill(ev, some, raw, *_render(_block(ev, some, raw, as_read)))
        return
    pending: deque[tuple[np.ndarray, Future[tuple[bytes, np.ndarray]] | None]] = deque()
    nxt = 0
    broken = False
    try:
        while nxt < len(cuts) or pending:
            while nxt < len(cuts) and len(pending) < 2 * n_workers:
                some = rows[cuts[nxt]:cuts[nxt] + block]
                fut = None
                if not broken:
                    try:
                        fut = executor.submit(_render, _block(ev, some, raw, as_read))
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
                got = _render(_block(ev, some, raw, as_read))
            yield _fill(ev, some, raw, *got)
    finally:
        for _, fut in pending:
            if fut is not None:
                fut.cancel()
        with contextlib.suppress(OSError, BrokenProcessPool):
            executor.shutdown(wait=True, cancel_futures=True)

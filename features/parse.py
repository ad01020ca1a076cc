"""Bytes to a columnar batch: the one hot loop of the project.

:func:`parse_block` turns a block of complete lines from one pool file into a
:class:`Batch` of plain arrays. It runs in the reader (live tail) and in worker
processes (the parallel first load), so it returns only picklable, small things:
numpy arrays, lists of strings and tuples.

The loop is written for speed: per record it does as little as it can (parse, find the
key set, keep a few raw values in one tuple), in C when ``features/_parse_c.c`` was built
(the same steps on the same objects; a line it cannot take as it is comes back to the
Python loop here), and the block's columns are made afterwards in C-level passes over
those values. The low-cardinality fields of a record
are interned as one tuple (one dict lookup instead of a dozen), the high-cardinality join
keys each get their own table, and normalisation runs once per distinct value, later, in
the store. The workflow's own keys (``fib.iteration``: not Python's LogRecord keys,
not ``academy.*``) keep their short values as parsed, so the first filter on them does
not read the files again. Everything else in a record stays in the file and is read on
demand by its byte offset.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from features.batch import BadLine, Batch, Payload
from features.compiled import compiled
from features.parse_values import (
    _NORMALISE,
    _TEXT_OR_NONE,
    _canon_tags,
    _capturable,
    _exc_flags,
    _hashable,
    _intern_tags,
    _raw_int,
    _times,
)
from features.record_keys import (  # some re-exported: their home is record_keys
    COMBO_KEYS,
    FLAG_EXC,
    FLAG_MSG_CUT,
    FLAG_RAW_INT,
    FLAG_REPAIRED,
    ID_KEYS,
    INT_KEYS,
    MAX_LINE,
    MESSAGE_CAP,
    PAYLOAD_ARGS,
    PAYLOAD_RESULT,
    TAG_KEYS,
    TIME_MAX,
    TIME_MIN,
    is_user_key,
)
from features.repair import _preview, repair
from features.typed import payload_length

_parse_c = compiled("_parse_c")
_scan: Callable[..., tuple[int, int, int]] | None = None if _parse_c is None else _parse_c.scan
"""The block loop's per-record body in C (``features/_parse_c.c``); None: the Python loop."""

SUB_BLOCK = 64 * 1024
"""Bytes of a block split into lines at a time (see :func:`_lines`)."""


def _getter(keys: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A C-speed function returning the values of ``keys`` (all present) as a tuple."""
    if not keys:
        return lambda d: ()
    if len(keys) == 1:
        return itemgetter(keys[0], keys[0])  # a 2-tuple; the duplicate is ignored
    return itemgetter(*keys)


def _cme_getter(keys: frozenset[str]) -> Callable[[dict[str, Any]], tuple[Any, Any, Any]]:
    if {"created", "message", "exc_text"} <= keys:
        return itemgetter("created", "message", "exc_text")
    return lambda d: (d.get("created"), d.get("message"), d.get("exc_text"))


@dataclass(slots=True)
class _Shape:
    """What is known about one distinct key set: which core keys it has, and getters."""

    keys: tuple[str, ...]
    low: tuple[str, ...]
    low_get: Callable[[dict[str, Any]], tuple[Any, ...]]
    cme_get: Callable[[dict[str, Any]], tuple[Any, Any, Any]]
    tags: tuple[int, ...]
    """Which of :data:`TAG_KEYS` the shape has (their indices)."""
    user: tuple[str, ...]
    """User keys of the shape (kept at ingest)."""
    payload: tuple[int, int]
    """How many of :data:`PAYLOAD_ARGS` and of :data:`PAYLOAD_RESULT` the shape has."""
    extra_get: Callable[[dict[str, Any]], tuple[Any, ...]] | None
    """The values of the shape's tag keys, then of its user keys, then of its payload
    keys (arguments, result), as one tuple (None when it has none of them)."""


_SHAPES: dict[tuple[str, ...], _Shape] = {}


def _shape(keys: tuple[str, ...]) -> _Shape:
    sh = _SHAPES.get(keys)
    if sh is None:
        kset = frozenset(keys)
        low = tuple(k for k in COMBO_KEYS if k in kset)
        tags = tuple(j for j, k in enumerate(TAG_KEYS) if k in kset)
        user = tuple(k for k in keys if is_user_key(k))
        args = [k for k in PAYLOAD_ARGS if k in kset]
        result = [k for k in PAYLOAD_RESULT if k in kset]
        extra = [TAG_KEYS[j] for j in tags] + list(user) + args + result
        sh = _Shape(keys, low, _getter(list(low)), _cme_getter(kset), tags, user,
                    (len(args), len(result)), _getter(extra) if extra else None)
        if len(_SHAPES) < 10_000:
            _SHAPES[keys] = sh
    return sh


class _Builder:
    """Accumulates the records of one block; see :func:`parse_block`."""

    def __init__(self, file: int) -> None:
        self.file = file
        self.created: list[Any] = []
        self.message: list[Any] = []
        self.exc: list[Any] = []
        """Raw ``created``, ``message`` and ``exc_text`` of each record (None where it has
        none): times, flags and messages are made from them in :meth:`finish`."""
        self.offset: list[int] = []
        self.combo: list[int] = []
        self.combos: dict[tuple[Any, ...], int] = {}
        """:func:`_combo_key` -> the block's combo code."""
        self.tag_maps: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
        self.shape: list[int] = []
        self.shapes: dict[tuple[str, ...], tuple[Any, ...]] = {}
        """Key set -> its block entry as the block loop unpacks it (see :func:`_entry`)."""
        self.bad: list[BadLine] = []
        self.repaired: dict[int, bytes] = {}

    def entry(self, keys: tuple[str, ...]) -> tuple[Any, ...]:
        """The block's entry for a key set, made the first time it is seen."""
        ent = self.shapes.get(keys)
        if ent is None:
            ent = self.shapes[keys] = _entry(len(self.shapes), _shape(keys))
        return ent

    def add(self, d: dict[str, Any], offset: int) -> None:
        """Append a record recovered from a bad line (the block loop inlines the rest)."""
        self.repaired[len(self.created)] = orjson.dumps(d)
        self.one(d, offset)

    def one(self, d: dict[str, Any], offset: int) -> None:
        """Append a record its slow way (its combo keyed by :func:`_combo_key`)."""
        ent = self.entry(tuple(d))
        sc, sh = ent[0], ent[1]
        if ent[4] is not None:
            ent[4](ent[5](d))
        c, m, e = sh.cme_get(d)
        self.created.append(c)
        self.message.append(m)
        self.exc.append(e)
        self.offset.append(offset)
        self.shape.append(sc)
        k = _combo_key(sc, sh.low_get(d))
        x = self.combos.get(k)
        if x is None:
            x = self.combos[k] = len(self.combos)
        self.combo.append(x)

    def finish(self, data: bytes, lines: int, base_offset: int, base_line: int,
               blank: int) -> Batch:
        """Freeze into a :class:`Batch`: times, line numbers, lengths and the per-key
        tables are computed here, vectorised or once per distinct value, instead of per
        record. ``lines`` is the number of lines in ``data``."""
        offset = np.array(self.offset, dtype=np.int64)
        line, length = self._locate(data, lines, offset - base_offset, base_offset, base_line)
        n = len(self.created)
        message, flags = self._messages()
        created, odd_times = _times(self.created)
        shape = np.array(self.shape, dtype=np.int32)
        shape_of = [e[1] for e in sorted(self.shapes.values(), key=lambda e: e[0])]
        combo_table, raw_int = _combo_table(self.combos, shape_of)
        combo = np.array(self.combo, dtype=np.int32)
        if raw_int:
            flags[np.isin(combo, raw_int)] |= FLAG_RAW_INT
        tags, user, partial, payload = self._extra_columns(shape, n)
        # Raw tag values differing only in case share a canonical value; the store
        # interns by value, so they end up with one code.
        tag_tables = [_canon_tags(list(m)) for m in self.tag_maps]
        return Batch(
            file=self.file,
            created=created,
            line=line,
            offset=offset,
            length=length,
            flags=flags,
            combo=combo,
            combo_table=combo_table,
            tags=tags,
            tag_tables=tag_tables,
            shape=shape,
            shape_table=[sh.keys for sh in shape_of],
            message=message,
            bad=self.bad,
            repaired=self.repaired,
            lines=lines,
            blank=blank,
            user=user,
            user_partial=partial,
            odd_times=odd_times,
            payload=payload,
        )

    def _locate(self, data: bytes, lines: int, rel: np.ndarray, base_offset: int,
                base_line: int) -> tuple[np.ndarray, np.ndarray]:
        """Each record's line number and length from its offset in ``data`` (``rel``),
        and the line numbers of the block's bad lines."""
        if len(rel) == lines and not self.repaired:  # one record per line: no search
            ends = np.empty(lines, dtype=np.int64)
            ends[:-1] = rel[1:] - 1
            ends[-1:] = len(data) - 1 if data.endswith(b"\n") else len(data)
            line = np.arange(base_line + 1, base_line + lines + 1, dtype=np.int64)
        else:
            nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
            idx = np.searchsorted(nl, rel)
            line = base_line + idx.astype(np.int64) + 1
            ends = np.append(nl, len(data))[idx]
            for bad in self.bad:
                bad.line = base_line + int(np.searchsorted(nl, bad.offset - base_offset)) + 1
        return line, (ends - rel).astype(np.int32)

    def _messages(self) -> tuple[list[str], np.ndarray]:
        """The records' messages (text, cut at :data:`MESSAGE_CAP`) and their flags:
        a traceback, a message cut, a record recovered from a bad line."""
        message = self.message
        flags = _exc_flags(self.exc)
        if message and (set(map(type, message)) != {str} or
                        max(map(len, message)) > MESSAGE_CAP):
            for i, m in enumerate(message):
                if type(m) is not str:
                    m = message[i] = "" if m is None else str(m)
                if len(m) > MESSAGE_CAP:
                    message[i] = m[:MESSAGE_CAP]
                    flags[i] |= FLAG_MSG_CUT
        for i in self.repaired:
            flags[i] |= FLAG_REPAIRED
        return message, flags

    def _extra_columns(self, shape: np.ndarray, n: int) -> tuple[
            list[np.ndarray], dict[str, tuple[np.ndarray, list[Any]]], list[str],
            Payload | None]:
        """Tag codes (-1 where missing), user-key columns and the payload sizes of the
        records that carry an action's arguments or result, from the values each key set
        kept in row order. A user key with a value too long or nested is left out and
        named instead (read from the files on use)."""
        tags = [np.full(n, -1, dtype=np.int32) for _ in TAG_KEYS]
        parts: dict[str, list[tuple[np.ndarray, list[Any]]]] = {}
        partial: set[str] = set()
        sizes: list[Payload] = []
        for ent in self.shapes.values():
            vals = ent[7]
            if not vals:
                continue
            sh = ent[1]
            rows = np.flatnonzero(shape == ent[0])
            if sh.payload != (0, 0):
                sizes.append(_payload(vals, rows, len(sh.tags) + len(sh.user), sh.payload))
            for k, j in enumerate(sh.tags):
                tags[j][rows] = _intern_tags(list(map(itemgetter(k), vals)), self.tag_maps[j])
            for k, key in enumerate(sh.user, len(sh.tags)):
                if key in partial:
                    continue
                col = list(map(itemgetter(k), vals))
                if not _capturable(col):
                    partial.add(key)
                    continue
                parts.setdefault(key, []).append((rows, col))
        user: dict[str, tuple[np.ndarray, list[Any]]] = {}
        for key, ps in parts.items():
            if key in partial:
                continue
            if len(ps) == 1:
                user[key] = (ps[0][0].astype(np.int32), ps[0][1])
                continue
            rows_all = np.concatenate([r for r, _ in ps]).astype(np.int32)
            vals_all = list(chain.from_iterable(c for _, c in ps))
            order = np.argsort(rows_all, kind="stable")
            user[key] = (rows_all[order], list(map(vals_all.__getitem__, order.tolist())))
        return tags, user, sorted(partial), _joined(sizes)


def _payload(vals: list[tuple[Any, ...]], rows: np.ndarray, first: int,
             counts: tuple[int, int]) -> Payload:
    """The payload sizes of one key set's records (``vals``: their kept values, the
    payload keys from position ``first``: ``counts`` of arguments, then of results)."""
    out = []
    at = first
    for count in counts:
        if not count:
            out.append(np.full(len(rows), np.nan))
            continue
        total = np.zeros(len(rows))
        for k in range(at, at + count):
            total += np.fromiter(map(payload_length, map(itemgetter(k), vals)),
                                 dtype=np.float64, count=len(vals))
        out.append(total)
        at += count
    return rows.astype(np.int32), out[0], out[1]


def _joined(sizes: list[Payload]) -> Payload | None:
    """The key sets' payload sizes as one, in row order; None when there are none."""
    if not sizes:
        return None
    if len(sizes) == 1:
        return sizes[0]
    rows = np.concatenate([r for r, _, _ in sizes])
    order = np.argsort(rows, kind="stable")
    return (rows[order], np.concatenate([a for _, a, _ in sizes])[order],
            np.concatenate([r for _, _, r in sizes])[order])


def _combo_key(sc: int, low: tuple[Any, ...]) -> tuple[Any, ...]:
    """A block's combos key of a record's combo values (``low``, of key set ``sc``):
    ``(sc, low)`` when they are texts (what Academy writes); values of a typed record
    keep their types apart (as dict keys ``False``, ``0`` and ``0.0`` are one, as are
    ``[1]`` and the text ``"[1]"``), and a nested one is keyed by its JSON text."""
    types = tuple(map(type, low))
    if _TEXT_OR_NONE.issuperset(types):
        return sc, low
    return sc, tuple(_hashable(v) for v in low), types


_TEXT_NORMS: tuple[dict[str, Any], ...] = tuple({} for _ in COMBO_KEYS)
"""Per combo key, the normalised value of each text seen (:data:`_NORMALISE`'s function
of the key: a pure one). A pool of many small files is parsed in many small blocks, each
with its own few combos of mostly the same texts (a process's id differs, its logger
names and action names do not): normalising them again in each block was 5% of a parse
worker's time on 1M records in 828 files. Each holds at most :data:`TEXT_NORMS_MAX`
texts (emptied when full)."""
TEXT_NORMS_MAX = 20_000


def _combo_table(combos: dict[tuple[Any, ...], int], shape_of: list[_Shape]
                 ) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Each combo's normalised values (in :data:`COMBO_KEYS` order), once per distinct
    combo, and the combos holding an integer value its column cannot hold."""
    steps = list(zip(COMBO_KEYS, [_NORMALISE[k] for k in COMBO_KEYS], _TEXT_NORMS,
                     strict=True))
    table = []
    raw_int: list[int] = []
    for x, (sc, low, *_types) in enumerate(combos):
        present = dict(zip(shape_of[sc].low, low, strict=False))
        vals = []
        for k, f, memo in steps:
            v = present.get(k)
            if type(v) is str:  # texts only: as keys False, 0 and 0.0 are one
                n = memo.get(v, _UNSEEN)
                if n is _UNSEEN:
                    if len(memo) >= TEXT_NORMS_MAX:
                        memo.clear()
                    n = memo[v] = f(v)
            else:
                n = f(v)
            vals.append(n)
        t = tuple(vals)
        table.append(t)
        if -1 in t and _raw_int(present):
            raw_int.append(x)
    return table, raw_int


_UNSEEN = object()


def _entry(code: int, sh: _Shape) -> tuple[Any, ...]:
    """A block's entry for one shape, as the block loop unpacks it (and the compiled one,
    ``features/_parse_c.c``, reads it by position): (code, shape, its getters, keeper,
    extra getter, last combo memo, kept values, the combo keys). The keeper appends
    the record's tag and user values (:attr:`_Shape.extra_get`) to the kept values; it
    is None when the shape has neither."""
    kept: list[tuple[Any, ...]] = []
    keep = kept.append if sh.extra_get is not None else None
    return (code, sh, sh.cme_get, sh.low_get, keep, sh.extra_get, [None, -1], kept, sh.low)


def parse_block(
    buf: bytes | memoryview, file: int, base_offset: int = 0, base_line: int = 0
) -> Batch:
    """Parse complete lines (each ended by ``\\n``) of one file.

    ``base_offset`` is the byte offset of ``buf`` in the file and ``base_line`` the
    number of lines before it, so every record keeps its true location. A block that
    does not end with a newline has its last piece parsed as a line too; callers that
    tail a growing file hand over only complete lines.
    """
    # The loop makes no reference cycles but retains many small objects; the cyclic
    # collector would rescan them over and over for nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(buf, file, base_offset, base_line)
    finally:
        if was_enabled:
            gc.enable()


def _parse(buf: bytes | memoryview, file: int, base_offset: int, base_line: int) -> Batch:
    b = _Builder(file)
    data = buf if isinstance(buf, bytes) else bytes(buf)
    fill = _parse_compiled if _scan is not None else _parse_python
    lines, blank = fill(b, data, base_offset)
    return b.finish(data, lines, base_offset, base_line, blank)


def _parse_python(b: _Builder, data: bytes, off: int) -> tuple[int, int]:
    """The block loop in Python: each line of ``data`` (at byte ``off`` of its file)
    appended to ``b``. Returns the lines read and the blank ones among them."""
    count = [0]
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    created_append, message_append, exc_append = (b.created.append, b.message.append,
                                                   b.exc.append)
    offset_append = b.offset.append
    combo_append, shape_append = b.combo.append, b.shape.append
    combos, shapes = b.combos, b.shapes
    text_or_none = _TEXT_OR_NONE.issuperset
    blank = 0
    pending: tuple[bytes, int, BadLine] | None = None
    for pieces in _lines(data, count):
        for raw in pieces:
            here = off
            off += len(raw) + 1
            try:
                d = loads(raw)
            except decode_error:
                pending, blank = _unparsed(b, raw, here, pending, blank)
                continue
            pending = None
            if type(d) is not dict:
                _not_object(b, raw, here)
                continue
            keys = tuple(d)
            ent = shapes.get(keys)
            if ent is None:
                ent = shapes[keys] = _entry(len(shapes), _shape(keys))
            sc, _sh, cme_get, low_get, keep, extra_get, memo, _kept, _low_keys = ent
            c, m, e = cme_get(d)
            created_append(c)
            message_append(m)
            exc_append(e)
            offset_append(here)
            shape_append(sc)
            # Records of one shape mostly repeat the previous combo: comparing with it
            # costs less than hashing a dozen fresh strings for the dict.
            # The memo holds texts only (and None), so a typed value never equals it.
            low = low_get(d)
            if low == memo[0]:
                combo_append(memo[1])
            elif text_or_none(map(type, low)):
                k = (sc, low)
                x = combos.get(k)
                if x is None:
                    x = combos[k] = len(combos)
                memo[0] = low
                memo[1] = x
                combo_append(x)
            else:
                k = _combo_key(sc, low)
                x = combos.get(k)
                if x is None:
                    x = combos[k] = len(combos)
                combo_append(x)
            if keep is not None:  # tags, and the workflow's own keys (filters need no read)
                keep(extra_get(d))
    return count[0], blank


def _parse_compiled(b: _Builder, data: bytes, off: int) -> tuple[int, int]:
    """:func:`_parse_python` with the compiled loop (``features/_parse_c.c``) taking the
    records, straight from the block's bytes; a line it leaves (not a record, or a record
    with a typed or nested value in its combo) is taken here, then it goes on after that
    line. Returns the lines read and the blank ones among them."""
    assert _scan is not None
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    pos, end, lines, blank = 0, len(data), 0, 0
    pending: tuple[bytes, int, BadLine] | None = None
    while pos < end:
        pos, off, taken = _scan(data, pos, off, loads, decode_error, b.shapes, b.entry,
                                b.combos, b.created, b.message, b.exc, b.offset, b.shape,
                                b.combo)
        lines += taken
        if taken:
            pending = None
        if pos >= end:
            break
        cut = data.find(b"\n", pos)
        if cut < 0:
            cut = end
        raw, here = data[pos:cut], off
        pos, off, lines = cut + 1, off + len(raw) + 1, lines + 1
        try:
            d = loads(raw)
        except decode_error:
            pending, blank = _unparsed(b, raw, here, pending, blank)
            continue
        pending = None
        if type(d) is not dict:
            _not_object(b, raw, here)
        else:  # a typed or nested value where a combo is kept
            b.one(d, here)
    return lines, blank


def _unparsed(b: _Builder, raw: bytes, here: int,
              pending: tuple[bytes, int, BadLine] | None, blank: int
              ) -> tuple[tuple[bytes, int, BadLine] | None, int]:
    """A line that is no JSON: a blank one counted, else repaired or kept as a bad line
    (:func:`~features.repair.repair`). Returns what the next line may continue, and the
    blank lines."""
    if raw.strip():
        return repair(b, raw, here, pending), blank
    return None, blank + 1


def _not_object(b: _Builder, raw: bytes, here: int) -> None:
    """A line of JSON that is not an object (an array, a number): a bad line."""
    b.bad.append(BadLine(b.file, 0, here, len(raw), "not a JSON object", _preview(raw)))


def _lines(data: bytes, count: list[int]) -> Iterator[list[bytes]]:
    """The lines of ``data`` (newlines cut; an unterminated last piece is a line too),
    :data:`SUB_BLOCK` bytes at a time, counted into ``count[0]``. Split a piece at a
    time, the lines are still in the CPU's cache when they are parsed; all 8 MB of a
    chunk at once, they are not (~10% of the parse)."""
    pos, end = 0, len(data)
    while pos < end:
        cut = end if pos + SUB_BLOCK >= end else data.rfind(b"\n", pos, pos + SUB_BLOCK) + 1
        if cut <= pos:  # a line longer than a sub-block
            cut = data.find(b"\n", pos + SUB_BLOCK) + 1 or end
        pieces = data[pos:cut].split(b"\n")
        if pieces[-1] == b"":
            pieces.pop()
        count[0] += len(pieces)
        yield pieces
        pos = cut


__all__ = ["COMBO_KEYS", "FLAG_EXC", "FLAG_MSG_CUT", "FLAG_RAW_INT", "FLAG_REPAIRED", "ID_KEYS",
           "INT_KEYS", "MAX_LINE", "MESSAGE_CAP", "SUB_BLOCK", "TAG_KEYS", "TIME_MAX", "TIME_MIN",
           "is_user_key", "parse_block"]

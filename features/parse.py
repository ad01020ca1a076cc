"""Bytes to a columnar batch: the one hot loop of the project.

:func:`parse_block` turns a block of complete lines from one pool file into a
:class:`Batch` of plain arrays. It runs in the reader (live tail) and in worker
processes (the parallel first load), so it returns only picklable, small things:
numpy arrays, lists of strings and tuples.

The loop is written for speed: per record it runs as little Python as it can (parse,
find the key set, keep a few raw values in one tuple), and the block's columns are made
afterwards in C-level passes over those values. The low-cardinality fields of a record
are interned as one tuple (one dict lookup instead of a dozen), the high-cardinality join
keys each get their own table, and normalisation runs once per distinct value, later, in
the store. The workflow's own keys (``fib.iteration``: not Python's LogRecord keys,
not ``academy.*``) keep their short values as parsed, so the first filter on them does
not read the files again. Everything else in a record stays in the file and is read on
demand by its byte offset.
"""

from __future__ import annotations

import array
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from features.batch import BadLine, Batch
from features.columns import intern_codes
from features.normalize import NULL_STRINGS, canonical_id, canonical_str, to_float, to_int

COMBO_KEYS: tuple[str, ...] = (
    "name",
    "msg",
    "levelno",
    "process",
    "academy.action_state",
    "academy.action",
    "academy.message_type",
    "academy.agent_id",
    "academy.agent",
    "academy.src",
    "academy.dest",
)
"""Low-cardinality keys interned together, one tuple per record. (``processName`` and the
thread keys are read on demand: they are constant per process and cost ingest time.)"""

TAG_KEYS: tuple[str, ...] = ("academy.action_tag", "academy.message_tag", "academy.message_label")
"""High-cardinality join keys (uuids), each interned on its own."""

MESSAGE_CAP = 4096
"""Characters of ``message`` kept in memory; the full value stays readable from the file."""

SUB_BLOCK = 64 * 1024
"""Bytes of a block split into lines at a time (see :func:`_lines`)."""

MAX_LINE = 256 * 1024 * 1024
"""A line longer than this is recorded as bad instead of being parsed."""

FLAG_EXC = 1
"""The record carries a traceback (``exc_text`` is not null)."""
FLAG_REPAIRED = 2
"""The record was recovered from a bad line (interleaved write or invalid UTF-8)."""
FLAG_MSG_CUT = 4
"""``message`` was longer than :data:`MESSAGE_CAP`; read the record for the full text."""
FLAG_RAW_INT = 8
"""An integer column (:data:`INT_KEYS`) could not hold the record's value (out of the
column's range, or not an integer): the column says -1 (missing) and the value stays
as written in the record (see :meth:`features.run.Run.events_table`)."""

TIME_MIN = -62135510400.0
"""``created`` below this (0001-01-02) or at or above :data:`TIME_MAX` (9999-12-31) is not
a usable time: no date can show it (``datetime`` raises). Such a value (``1e999``,
``-inf``, ``NaN``, a huge number) is read as a missing time (NaN) and counted."""
TIME_MAX = 253402214400.0
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""The range of the integer columns (:data:`INT_KEYS`)."""

_NULLS = (None, "None", "")
_NULL_SET = frozenset(_NULLS)
_NUMBERS = frozenset({float, int})
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)

RECORD_KEYS = frozenset({
    "args", "created", "exc_info", "exc_text", "filename", "funcName", "levelname",
    "levelno", "lineno", "module", "msecs", "msg", "name", "pathname", "process",
    "processName", "relativeCreated", "stack_info", "thread", "threadName", "taskName",
    "message", "formatted", "asctime",
})
"""Keys of Python's LogRecord and of Academy's JSON pool records: not user keys."""

USER_CAP = 64
"""A user key's string values up to this long are kept in memory at ingest (see
:func:`is_user_key`); one longer value, or a nested one, leaves the key to be read from
the files on use."""

_CAPTURED_TYPES = frozenset({str, int, float, bool, type(None)})


def _capturable(col: list[Any]) -> bool:
    """Every value plain (no list or object) and every string at most :data:`USER_CAP`
    long."""
    types = set(map(type, col))
    if not types <= _CAPTURED_TYPES:
        return False
    if str not in types:
        return True
    strs = col if len(types) == 1 else [v for v in col if type(v) is str]
    return max(map(len, strs)) <= USER_CAP


def is_user_key(key: str) -> bool:
    """A key the workflow added (``fib.iteration``), not Python's or Academy's: its short
    values are kept at ingest, so the first filter on it does not read the files."""
    return key not in RECORD_KEYS and not key.startswith("academy.")

INT_KEYS = ("levelno", "process")
"""Low-cardinality keys stored as integer columns (-1 when missing)."""

ID_KEYS = frozenset({"academy.agent_id", "academy.src", "academy.dest", *TAG_KEYS})
"""Keys whose values are identifiers: canonicalised (uuids lower-cased)."""


def _int_or_missing(v: Any) -> int:
    """The value of an integer column: -1 when missing, and also when the column cannot
    hold it (:data:`FLAG_RAW_INT` marks those records)."""
    i = to_int(v)
    return -1 if i is None or not INT32_MIN <= i <= INT32_MAX else i


def _canon_tag(v: Any) -> str | None:
    """Canonical tag: a uuid lower-cased (fast path), anything else via canonical_id."""
    if type(v) is str and len(v) == 36 and v[8] == "-":
        return v.lower()
    return canonical_id(v)


def _exc_flags(es: list[Any]) -> np.ndarray:
    """:data:`FLAG_EXC` where ``exc_text`` is not null. Most records have none: when the
    distinct values are all null spellings, no per-record test is needed."""
    try:
        if set(es) <= _NULL_SET:
            return np.zeros(len(es), dtype=np.uint8)
    except TypeError:  # a nested value in a typed record
        pass
    nulls = np.fromiter(map(_NULLS.__contains__, es), dtype=bool, count=len(es))
    return np.where(nulls, 0, FLAG_EXC).astype(np.uint8)


_NINTH = itemgetter(8)


def _canon_tags(vals: list[Any]) -> list[Any]:
    """:func:`_canon_tag` of each value; for a table of uuid strings (the usual case) in
    three C-level passes."""
    if set(map(type, vals)) <= {str} and set(map(len, vals)) <= {36} \
            and set(map(_NINTH, vals)) <= {"-"}:
        return list(map(str.lower, vals))
    return [_canon_tag(v) for v in vals]

_NORMALISE: dict[str, Callable[[Any], Any]] = {
    k: (_int_or_missing if k in INT_KEYS else canonical_id if k in ID_KEYS else canonical_str)
    for k in COMBO_KEYS
}


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
    extra_get: Callable[[dict[str, Any]], tuple[Any, ...]] | None
    """The values of the shape's tag keys, then of its user keys, as one tuple (None
    when it has neither)."""


_SHAPES: dict[tuple[str, ...], _Shape] = {}


def _shape(keys: tuple[str, ...]) -> _Shape:
    sh = _SHAPES.get(keys)
    if sh is None:
        kset = frozenset(keys)
        low = tuple(k for k in COMBO_KEYS if k in kset)
        tags = tuple(j for j, k in enumerate(TAG_KEYS) if k in kset)
        user = tuple(k for k in keys if is_user_key(k))
        extra = [TAG_KEYS[j] for j in tags] + list(user)
        sh = _Shape(keys, low, _getter(list(low)), _cme_getter(kset), tags, user,
                    _getter(extra) if extra else None)
        if len(_SHAPES) < 10_000:
            _SHAPES[keys] = sh
    return sh


class _Builder:
    """Accumulates the records of one block; see :func:`parse_block`."""

    def __init__(self, file: int) -> None:
        self.file = file
        self.cme: list[tuple[Any, Any, Any]] = []
        """Raw (``created``, ``message``, ``exc_text``) of each record: times, flags and
        messages are made from them together in :meth:`finish`."""
        self.offset = array.array("q")
        self.combo = array.array("i")
        self.combos: dict[tuple[int, tuple[Any, ...]], int] = {}
        self.tag_maps: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
        self.shape = array.array("i")
        self.shapes: dict[tuple[str, ...], tuple[Any, ...]] = {}
        """Key set -> its block entry as the block loop unpacks it (see :func:`_entry`)."""
        self.bad: list[BadLine] = []
        self.repaired: dict[int, bytes] = {}

    def add(self, d: dict[str, Any], offset: int) -> None:
        """Append a record recovered from a bad line (the block loop inlines the rest)."""
        self.repaired[len(self.cme)] = orjson.dumps(d)
        keys = tuple(d)
        ent = self.shapes.get(keys)
        if ent is None:
            ent = self.shapes[keys] = _entry(len(self.shapes), _shape(keys))
        sc, sh = ent[0], ent[1]
        if ent[4] is not None:
            ent[4](ent[5](d))
        self.cme.append(sh.cme_get(d))
        self.offset.append(offset)
        self.shape.append(sc)
        low = tuple(_hashable(v) for v in sh.low_get(d))
        k = (sc, low)
        x = self.combos.get(k)
        if x is None:
            x = self.combos[k] = len(self.combos)
        self.combo.append(x)

    def finish(self, data: bytes, lines: int, base_offset: int, base_line: int,
               blank: int) -> Batch:
        """Freeze into a :class:`Batch`: times, line numbers, lengths and the per-key
        tables are computed here, vectorised or once per distinct value, instead of per
        record. ``lines`` is the number of lines in ``data``."""
        offset = np.frombuffer(self.offset, dtype=np.int64).copy()
        rel = offset - base_offset
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
                r = bad.offset - base_offset
                bad.line = base_line + int(np.searchsorted(nl, r)) + 1
        length = (ends - rel).astype(np.int32)
        n = len(self.cme)
        message = list(map(_SECOND, self.cme))
        flags = _exc_flags(list(map(_THIRD, self.cme)))
        if n and (set(map(type, message)) != {str} or max(map(len, message)) > MESSAGE_CAP):
            for i, m in enumerate(message):
                if type(m) is not str:
                    m = message[i] = "" if m is None else str(m)
                if len(m) > MESSAGE_CAP:
                    message[i] = m[:MESSAGE_CAP]
                    flags[i] |= FLAG_MSG_CUT
        for i in self.repaired:
            flags[i] |= FLAG_REPAIRED
        created, odd_times = _times(list(map(_FIRST, self.cme)))
        shape = np.frombuffer(self.shape, dtype=np.int32).copy()
        shape_of = [e[1] for e in sorted(self.shapes.values(), key=lambda e: e[0])]
        norms = [_NORMALISE[k] for k in COMBO_KEYS]
        combo_table = []
        raw_int: list[int] = []
        for x, (sc, low) in enumerate(self.combos):
            present = dict(zip(shape_of[sc].low, low, strict=False))
            t = tuple(f(present.get(k)) for f, k in zip(norms, COMBO_KEYS, strict=True))
            combo_table.append(t)
            if -1 in t and _raw_int(present):
                raw_int.append(x)
        combo = np.frombuffer(self.combo, dtype=np.int32).copy()
        if raw_int:
            flags[np.isin(combo, raw_int)] |= FLAG_RAW_INT
        tags, user, partial = self._extra_columns(shape, n)
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
        )

    def _extra_columns(self, shape: np.ndarray, n: int) -> tuple[
            list[np.ndarray], dict[str, tuple[np.ndarray, list[Any]]], list[str]]:
        """Tag codes (-1 where missing) and user-key columns, from the values each key
        set kept in row order. A user key with a value too long or nested is left out
        and named instead (read from the files on use)."""
        tags = [np.full(n, -1, dtype=np.int32) for _ in TAG_KEYS]
        parts: dict[str, list[tuple[np.ndarray, list[Any]]]] = {}
        partial: set[str] = set()
        for ent in self.shapes.values():
            vals = ent[7]
            if not vals:
                continue
            sh = ent[1]
            rows = np.flatnonzero(shape == ent[0])
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
        return tags, user, sorted(partial)


def _entry(code: int, sh: _Shape) -> tuple[Any, ...]:
    """A block's entry for one shape, as the block loop unpacks it: (code, shape, its
    getters, keeper, extra getter, last combo memo, kept values). The keeper appends
    the record's tag and user values (:attr:`_Shape.extra_get`) to the kept values; it
    is None when the shape has neither."""
    kept: list[tuple[Any, ...]] = []
    keep = kept.append if sh.extra_get is not None else None
    return (code, sh, sh.cme_get, sh.low_get, keep, sh.extra_get, [None, -1], kept)


def _hashable(v: Any) -> Any:
    """Typed records may hold lists or objects; intern them by their JSON text."""
    if isinstance(v, dict | list):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return v


def _preview(raw: bytes, n: int = 200) -> str:
    return raw[:n].decode("utf-8", "replace")


def _loads_object(raw: bytes) -> dict[str, Any] | None:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


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
    lines = [0]
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    cme_append = b.cme.append
    offset_append = b.offset.append
    combo_append = b.combo.append
    shape_append = b.shape.append
    combos = b.combos
    shapes = b.shapes
    off = base_offset
    blank = 0
    pending: tuple[bytes, int, BadLine] | None = None
    for raw in chain.from_iterable(_lines(data, lines)):
        here = off
        off += len(raw) + 1
        try:
            d = loads(raw)
        except decode_error:
            if not raw.strip():
                blank += 1
                pending = None
                continue
            pending = _repair(b, raw, here, pending)
            continue
        if type(d) is not dict:
            b.bad.append(BadLine(file, 0, here, len(raw), "not a JSON object", _preview(raw)))
            pending = None
            continue
        pending = None
        keys = tuple(d)
        ent = shapes.get(keys)
        if ent is None:
            ent = shapes[keys] = _entry(len(shapes), _shape(keys))
        sc, _sh, cme_get, low_get, keep, extra_get, memo, _kept = ent
        cme_append(cme_get(d))
        offset_append(here)
        shape_append(sc)
        # Records of one shape mostly repeat the previous combo: comparing with it
        # costs less than hashing a dozen fresh strings for the dict.
        low = low_get(d)
        if low == memo[0]:
            combo_append(memo[1])
        else:
            k = (sc, low)
            try:
                x = combos.get(k)
            except TypeError:  # a nested value in a typed record (not remembered)
                k = (sc, tuple(_hashable(v) for v in low))
                x = combos.get(k)
                if x is None:
                    x = combos[k] = len(combos)
            else:
                if x is None:
                    x = combos[k] = len(combos)
                memo[0] = low
                memo[1] = x
            combo_append(x)
        if keep is not None:  # tags, and the workflow's own keys (filters need no read)
            keep(extra_get(d))
    return b.finish(data, lines[0], base_offset, base_line, blank)


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


def _raw_int(present: dict[str, Any]) -> bool:
    """Whether a combo holds a value of an integer key that its column cannot hold (not
    null, and not an integer in range): the record keeps it as written."""
    for k in INT_KEYS:
        v = present.get(k)
        if v is None or (type(v) is str and v in NULL_STRINGS):
            continue
        i = to_int(v)
        if i is None or not INT32_MIN <= i <= INT32_MAX:
            return True
    return False


def _times(cs: list[Any]) -> tuple[np.ndarray, list[int]]:
    """Raw ``created`` values as float seconds, and the rows whose value is there but is
    no usable time (not a number, or outside [:data:`TIME_MIN`, :data:`TIME_MAX`]: ``1e999``,
    ``-inf``, ``NaN``): those become NaN (a missing time) and are named. One vectorised
    range check per block; only a block with such a value looks at its rows again."""
    t = _floats(cs)
    with np.errstate(invalid="ignore"):
        ok = (t >= TIME_MIN) & (t < TIME_MAX)
    if ok.all():
        return t, []
    odd = [i for i in np.flatnonzero(~ok).tolist()
           if not (cs[i] is None or (type(cs[i]) is str and cs[i] in NULL_STRINGS))]
    t[~ok] = np.nan
    return t, odd


def _floats(cs: list[Any]) -> np.ndarray:
    """Raw ``created`` values as float seconds (NaN for what is not a number, as
    :func:`~features.normalize.to_float`)."""
    types = set(map(type, cs))
    if types == {str}:
        # Number strings parse ~6x faster as one JSON array than with float() each;
        # anything else ("None", "nan", "1,2") falls through to to_float.
        try:
            got = orjson.loads("".join(("[", ",".join(cs), "]")))
        except orjson.JSONDecodeError:
            got = None
        if got is not None and len(got) == len(cs) and set(map(type, got)) <= _NUMBERS:
            return np.array(got, dtype=np.float64)
    elif types <= _NUMBERS:
        return np.array(cs, dtype=np.float64)
    return np.fromiter(map(to_float, cs), dtype=np.float64, count=len(cs))


def _intern_tags(vs: list[Any], m: dict[Any, int]) -> np.ndarray:
    """Block codes of one key set's values of one tag key (-1 where None), new values
    added to ``m`` in order of appearance (:func:`~features.columns.intern_codes`; a run
    of equal neighbours is too short here for comparing them first to pay)."""
    try:
        codes = intern_codes(m, vs)
    except TypeError:  # a nested value in a typed record: interned by its JSON text
        codes = intern_codes(m, [_hashable(v) for v in vs])
    return np.array(codes, dtype=np.int32)


def _repair(
    b: _Builder,
    raw: bytes,
    offset: int,
    pending: tuple[bytes, int, BadLine] | None,
) -> tuple[bytes, int, BadLine] | None:
    """Record a bad line and recover what can be recovered from it.

    Two writers sharing one file (``fork``) interleave a long record A with a whole
    record B: line i is ``A[:k] + B`` and line i+1 is ``A[k:]``. B is recovered from
    the tail of line i and A by joining the held prefix with line i+1. Invalid UTF-8
    is recovered by decoding with replacement characters. Every such line is still
    counted as bad, with the number of records recovered from it.
    """
    if len(raw) > MAX_LINE:
        b.bad.append(BadLine(b.file, 0, offset, len(raw), "line too long", _preview(raw)))
        return None
    if pending is not None:
        prefix, p_off, p_bad = pending
        d = _loads_object(prefix + raw)
        if d is not None:
            b.add(d, p_off)
            p_bad.recovered += 1
            b.bad.append(BadLine(b.file, 0, offset, len(raw),
                                 "interleaved write (the tail of a torn record)", _preview(raw)))
            return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        d = _loads_object(text.encode())
        why = "invalid UTF-8" if d is not None else "not JSON (invalid UTF-8)"
        bad = BadLine(b.file, 0, offset, len(raw), why, _preview(raw))
        if d is not None:
            b.add(d, offset)
            bad.recovered = 1
        b.bad.append(bad)
        return None
    # Look for a whole record embedded after a torn prefix.
    start = 1
    for _ in range(16):
        k = raw.find(b'{"', start)
        if k < 0:
            break
        d = _loads_object(raw[k:])
        if d is not None:
            bad = BadLine(b.file, 0, offset, len(raw), "interleaved write", _preview(raw),
                          recovered=1)
            b.add(d, offset + k)
            b.bad.append(bad)
            if raw.startswith(b"{"):
                return (raw[:k], offset, bad)
            return None
        start = k + 1
    reason = "not JSON" if not raw.lstrip().startswith(b"{") else "truncated or corrupt JSON"
    bad = BadLine(b.file, 0, offset, len(raw), reason, _preview(raw))
    b.bad.append(bad)
    return (raw, offset, bad) if raw.startswith(b"{") else None

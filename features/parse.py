"""Bytes to a columnar batch: the one hot loop of the project.

:func:`parse_block` turns a block of complete lines from one pool file into a
:class:`Batch` of plain arrays. It runs in the reader (live tail) and in worker
processes (the parallel first load), so it returns only picklable, small things:
numpy arrays, lists of strings and tuples.

The loop is written for speed: the low-cardinality fields of a record are interned
as one tuple (one dict lookup instead of a dozen), the high-cardinality join keys
each get their own table, and normalisation runs once per distinct value, later,
in the store. The workflow's own keys (``fib.iteration``: not Python's LogRecord keys,
not ``academy.*``) keep their short values as parsed, so the first filter on them does
not read the files again. Everything else in a record stays in the file and is read on
demand by its byte offset.
"""

from __future__ import annotations

import array
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from features.normalize import canonical_id, canonical_str, to_float, to_int

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

MAX_LINE = 256 * 1024 * 1024
"""A line longer than this is recorded as bad instead of being parsed."""

FLAG_EXC = 1
"""The record carries a traceback (``exc_text`` is not null)."""
FLAG_REPAIRED = 2
"""The record was recovered from a bad line (interleaved write or invalid UTF-8)."""
FLAG_MSG_CUT = 4
"""``message`` was longer than :data:`MESSAGE_CAP`; read the record for the full text."""

_NULLS = (None, "None", "")

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

_CAPTURED_TYPES = (str, int, float, bool, type(None))


def is_user_key(key: str) -> bool:
    """A key the workflow added (``fib.iteration``), not Python's or Academy's: its short
    values are kept at ingest, so the first filter on it does not read the files."""
    return key not in RECORD_KEYS and not key.startswith("academy.")

_UNSEEN = object()

INT_KEYS = ("levelno", "process")
"""Low-cardinality keys stored as integer columns (-1 when missing)."""

ID_KEYS = frozenset({"academy.agent_id", "academy.src", "academy.dest", *TAG_KEYS})
"""Keys whose values are identifiers: canonicalised (uuids lower-cased)."""


def _int_or_missing(v: Any) -> int:
    i = to_int(v)
    return -1 if i is None else i


def _canon_tag(v: Any) -> str | None:
    """Canonical tag: a uuid lower-cased (fast path), anything else via canonical_id."""
    if type(v) is str and len(v) == 36 and v[8] == "-":
        return v.lower()
    return canonical_id(v)


_NORMALISE: dict[str, Callable[[Any], Any]] = {
    k: (_int_or_missing if k in INT_KEYS else canonical_id if k in ID_KEYS else canonical_str)
    for k in COMBO_KEYS
}


@dataclass(slots=True)
class BadLine:
    """One line that is not a JSON object, kept so the user can see it."""

    file: int
    """Index of the file in the pool (see :class:`features.reader.PoolReader`)."""
    line: int
    """1-based line number."""
    offset: int
    """Byte offset of the line start."""
    length: int
    """Length of the line in bytes, newline excluded."""
    reason: str
    """Why it was rejected, in a few words."""
    preview: str
    """The first bytes of the line, decoded with replacement characters."""
    recovered: int = 0
    """How many records were recovered from it (interleaved writes, bad UTF-8)."""

    def as_dict(self) -> dict[str, Any]:
        """A plain record, for JSON and CSV output."""
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "length": self.length,
            "reason": self.reason,
            "recovered": self.recovered,
            "preview": self.preview,
        }


@dataclass(slots=True)
class Batch:
    """Parsed records of one block of one file, in file order."""

    file: int
    created: np.ndarray
    line: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    flags: np.ndarray
    combo: np.ndarray
    combo_table: list[tuple[Any, ...]]
    tags: list[np.ndarray]
    tag_tables: list[list[Any]]
    shape: np.ndarray
    shape_table: list[tuple[str, ...]]
    message: list[str]
    bad: list[BadLine] = field(default_factory=list)
    repaired: dict[int, bytes] = field(default_factory=dict)
    """Batch row -> the JSON text of a record recovered from bad lines (its bytes in the
    file are not one clean line, so a raw read must come from here)."""
    lines: int = 0
    """Lines consumed (records, bad and blank lines)."""
    blank: int = 0
    """Whitespace-only lines skipped."""
    user: dict[str, tuple[np.ndarray, list[Any]]] = field(default_factory=dict)
    """User key -> (batch rows, raw values) of every record that has it (see
    :func:`is_user_key`)."""
    user_partial: list[str] = field(default_factory=list)
    """User keys with a value too long or nested to keep: read from the files on use."""

    def __len__(self) -> int:
        return len(self.created)




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


_TA, _TM, _TL = TAG_KEYS
_PAT_NONE, _PAT_ACTION, _PAT_MESSAGE, _PAT_ALL, _PAT_OTHER = range(5)


@dataclass(slots=True)
class _Shape:
    """What is known about one distinct key set: which core keys it has, and getters."""

    keys: tuple[str, ...]
    low: tuple[str, ...]
    low_get: Callable[[dict[str, Any]], tuple[Any, ...]]
    cme_get: Callable[[dict[str, Any]], tuple[Any, Any, Any]]
    tag_pat: int
    """Which tag keys the shape has: none, action tag only, message tag and label, all
    three, or another mix (the slow path)."""
    tag_get: Callable[[dict[str, Any]], Any] | None
    user: tuple[str, ...] = ()
    """User keys of the shape (kept at ingest)."""
    user_get: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None


_SHAPES: dict[tuple[str, ...], _Shape] = {}


def _shape(keys: tuple[str, ...]) -> _Shape:
    sh = _SHAPES.get(keys)
    if sh is None:
        kset = frozenset(keys)
        low = tuple(k for k in COMBO_KEYS if k in kset)
        present = tuple(k in kset for k in TAG_KEYS)
        tag_get: Callable[[dict[str, Any]], Any] | None
        if present == (False, False, False):
            pat, tag_get = _PAT_NONE, None
        elif present == (True, False, False):
            pat, tag_get = _PAT_ACTION, itemgetter(_TA)
        elif present == (False, True, True):
            pat, tag_get = _PAT_MESSAGE, itemgetter(_TM, _TL)
        elif present == (True, True, True):
            pat, tag_get = _PAT_ALL, itemgetter(_TA, _TM, _TL)
        else:
            pat, tag_get = _PAT_OTHER, None
        user = tuple(k for k in keys if is_user_key(k))
        sh = _Shape(keys, low, _getter(list(low)), _cme_getter(kset), pat, tag_get, user,
                    _getter(list(user)) if user else None)
        if len(_SHAPES) < 10_000:
            _SHAPES[keys] = sh
    return sh


class _Builder:
    """Accumulates the records of one block; see :func:`parse_block`."""

    def __init__(self, file: int) -> None:
        self.file = file
        self.created = array.array("d")
        self.offset = array.array("q")
        self.flags = array.array("B")
        self.combo = array.array("i")
        self.combos: dict[tuple[int, tuple[Any, ...]], int] = {}
        self.tag_codes = (array.array("i"), array.array("i"), array.array("i"))
        self.tag_maps: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
        self.shape = array.array("i")
        self.shapes: dict[tuple[str, ...], tuple[Any, ...]] = {}
        """Key set -> (code, shape, its getters..., user capture) as the block loop
        unpacks it; the capture is None or (rows, values, user getter)."""
        self.message: list[str] = []
        self.bad: list[BadLine] = []
        self.repaired: dict[int, bytes] = {}

    def add(self, d: dict[str, Any], offset: int, flags: int) -> None:
        """Append one record (the slow path: the block loop inlines this)."""
        if flags & FLAG_REPAIRED:
            self.repaired[len(self.created)] = orjson.dumps(d)
        keys = tuple(d)
        ent = self.shapes.get(keys)
        if ent is None:
            ent = self.shapes[keys] = _entry(len(self.shapes), _shape(keys))
        sc, sh = ent[0], ent[1]
        if ent[7] is not None:
            ent[7][0].append(len(self.created))
            ent[7][1].append(ent[7][2](d))
        c, m, e = sh.cme_get(d)
        self.created.append(to_float(c))
        if e not in _NULLS:
            flags |= FLAG_EXC
        if type(m) is not str:
            m = "" if m is None else str(m)
        if len(m) > MESSAGE_CAP:
            m = m[:MESSAGE_CAP]
            flags |= FLAG_MSG_CUT
        self.message.append(m)
        self.flags.append(flags)
        self.offset.append(offset)
        self.shape.append(sc)
        low = tuple(_hashable(v) for v in sh.low_get(d))
        k = (sc, low)
        x = self.combos.get(k)
        if x is None:
            x = self.combos[k] = len(self.combos)
        self.combo.append(x)
        self.add_tags(d)

    def add_tags(self, d: dict[str, Any]) -> None:
        """Intern the tag keys of one record, any mix of them present."""
        for key, codes, m in zip(TAG_KEYS, self.tag_codes, self.tag_maps, strict=True):
            v = d.get(key)
            if v is None:
                codes.append(-1)
                continue
            v = _hashable(v)
            x = m.get(v)
            if x is None:
                x = m[v] = len(m)
            codes.append(x)

    def finish(self, data: bytes, base_offset: int, base_line: int, lines: int,
               blank: int) -> Batch:
        """Freeze into a :class:`Batch`: line numbers, lengths and the per-key tables are
        computed here, vectorised or once per distinct value, instead of per record."""
        nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        offset = np.frombuffer(self.offset, dtype=np.int64).copy()
        rel = offset - base_offset
        idx = np.searchsorted(nl, rel)
        line = base_line + idx.astype(np.int64) + 1
        ends = np.append(nl, len(data))[idx]
        length = (ends - rel).astype(np.int32)
        for bad in self.bad:
            r = bad.offset - base_offset
            bad.line = base_line + int(np.searchsorted(nl, r)) + 1
        shape_of = [e[1] for e in sorted(self.shapes.values(), key=lambda e: e[0])]
        norms = [_NORMALISE[k] for k in COMBO_KEYS]
        combo_table = []
        for sc, low in self.combos:
            present = dict(zip(shape_of[sc].low, low, strict=False))
            combo_table.append(
                tuple(f(present.get(k)) for f, k in zip(norms, COMBO_KEYS, strict=True)))
        # Raw tag values differing only in case share a canonical value; the store
        # interns by value, so they end up with one code.
        tag_tables = [[_canon_tag(v) for v in m] for m in self.tag_maps]
        user, partial = self._user_columns()
        return Batch(
            file=self.file,
            created=np.frombuffer(self.created, dtype=np.float64).copy(),
            line=line,
            offset=offset,
            length=length,
            flags=np.frombuffer(self.flags, dtype=np.uint8).copy(),
            combo=np.frombuffer(self.combo, dtype=np.int32).copy(),
            combo_table=combo_table,
            tags=[np.frombuffer(a, dtype=np.int32).copy() for a in self.tag_codes],
            tag_tables=tag_tables,
            shape=np.frombuffer(self.shape, dtype=np.int32).copy(),
            shape_table=[sh.keys for sh in shape_of],
            message=self.message,
            bad=self.bad,
            repaired=self.repaired,
            lines=lines,
            blank=blank,
            user=user,
            user_partial=sorted(partial),
        )

    def _user_columns(self) -> tuple[dict[str, tuple[np.ndarray, list[Any]]], set[str]]:
        """Per user key, the rows and raw values captured over all shapes (in row order);
        keys with a value too long or nested are dropped and named instead."""
        parts: dict[str, list[tuple[array.array[int], list[Any]]]] = {}
        partial: set[str] = set()
        for ent in self.shapes.values():
            cap = ent[7]
            if cap is None or not cap[0]:
                continue
            rows, vals = cap[0], cap[1]
            keys = ent[1].user
            for j, key in enumerate(keys):
                if key in partial:
                    continue
                col = [v[j] for v in vals] if len(keys) > 1 else [v[0] for v in vals]
                if any(type(v) not in _CAPTURED_TYPES or (type(v) is str and len(v) > USER_CAP)
                       for v in col):
                    partial.add(key)
                    continue
                parts.setdefault(key, []).append((rows, col))
        out: dict[str, tuple[np.ndarray, list[Any]]] = {}
        for key, ps in parts.items():
            if key in partial:
                continue
            if len(ps) == 1:
                out[key] = (np.frombuffer(ps[0][0], dtype=np.int32).copy(), ps[0][1])
                continue
            rows_all = np.concatenate([np.frombuffer(r, dtype=np.int32) for r, _ in ps])
            vals_all = [v for _, c in ps for v in c]
            order = np.argsort(rows_all, kind="stable")
            out[key] = (rows_all[order], [vals_all[i] for i in order.tolist()])
        return out, partial


def _entry(code: int, sh: _Shape) -> tuple[Any, ...]:
    """A block's entry for one shape: (code, shape, getters, tag pattern, tag getter,
    last combo memo, user capture)."""
    cap: tuple[array.array[int], list[tuple[Any, ...]], Any] | None = (
        (array.array("i"), [], sh.user_get) if sh.user_get is not None else None)
    return (code, sh, sh.cme_get, sh.low_get, sh.tag_pat, sh.tag_get, [None, -1], cap)


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
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    created_append = b.created.append
    offset_append = b.offset.append
    flags_append = b.flags.append
    combo_append = b.combo.append
    shape_append = b.shape.append
    message_append = b.message.append
    ta, tm, tl = (a.append for a in b.tag_codes)
    ma, mm, ml = b.tag_maps
    combos = b.combos
    shapes = b.shapes
    cap = MESSAGE_CAP
    nulls = _NULLS
    nan = float("nan")
    p_action, p_message, p_all, p_none = _PAT_ACTION, _PAT_MESSAGE, _PAT_ALL, _PAT_NONE
    # The last tag value of each kind and its code (a sentinel equal to nothing first).
    la: Any = _UNSEEN
    lm: Any = _UNSEEN
    ll: Any = _UNSEEN
    lax = lmx = llx = -1
    off = base_offset
    blank = 0
    pending: tuple[bytes, int, BadLine] | None = None
    for raw in pieces:
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
        sc, _sh, cme_get, low_get, pat, tag_get, memo, ucap = ent
        if ucap is not None:  # the workflow's own keys: kept, so filters need no file read
            ucap[0].append(len(b.created))
            ucap[1].append(ucap[2](d))
        c, m, e = cme_get(d)
        try:
            created_append(float(c))
        except (TypeError, ValueError):
            created_append(nan)
        offset_append(here)
        shape_append(sc)
        if type(m) is not str or len(m) > cap:
            if type(m) is not str:
                m = "" if m is None else str(m)
            if len(m) > cap:
                m = m[:cap]
                flags_append((0 if e in nulls else FLAG_EXC) | FLAG_MSG_CUT)
            else:
                flags_append(0 if e in nulls else FLAG_EXC)
        else:
            flags_append(0 if e in nulls else FLAG_EXC)
        message_append(m)
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
        try:
            if pat == p_none:
                ta(-1)
                tm(-1)
                tl(-1)
            elif pat == p_action:
                v = tag_get(d)
                if v != la:  # one action's records come together: skip the hashing
                    x = ma.get(v)
                    if x is None:
                        x = ma[v] = len(ma)
                    la, lax = v, x
                ta(lax)
                tm(-1)
                tl(-1)
            elif pat == p_message:
                v, w = tag_get(d)
                ta(-1)
                if v != lm:
                    x = mm.get(v)
                    if x is None:
                        x = mm[v] = len(mm)
                    lm, lmx = v, x
                tm(lmx)
                if w != ll:
                    x = ml.get(w)
                    if x is None:
                        x = ml[w] = len(ml)
                    ll, llx = w, x
                tl(llx)
            elif pat == p_all:
                u, v, w = tag_get(d)
                if u != la:
                    x = ma.get(u)
                    if x is None:
                        x = ma[u] = len(ma)
                    la, lax = u, x
                ta(lax)
                if v != lm:
                    x = mm.get(v)
                    if x is None:
                        x = mm[v] = len(mm)
                    lm, lmx = v, x
                tm(lmx)
                if w != ll:
                    x = ml.get(w)
                    if x is None:
                        x = ml[w] = len(ml)
                    ll, llx = w, x
                tl(llx)
            else:
                b.add_tags(d)
        except TypeError:  # a nested tag value in a typed record
            _realign_tags(b)
            b.add_tags(d)
    return b.finish(data, base_offset, base_line, len(pieces), blank)


def _realign_tags(b: _Builder) -> None:
    """Undo a partial tag append so the three tag columns stay one row per record."""
    n = len(b.created) - 1
    for codes in b.tag_codes:
        while len(codes) > n:
            codes.pop()


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
            b.add(d, p_off, FLAG_REPAIRED)
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
            b.add(d, offset, FLAG_REPAIRED)
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
            b.add(d, offset + k, FLAG_REPAIRED)
            b.bad.append(bad)
            if raw.startswith(b"{"):
                return (raw[:k], offset, bad)
            return None
        start = k + 1
    reason = "not JSON" if not raw.lstrip().startswith(b"{") else "truncated or corrupt JSON"
    bad = BadLine(b.file, 0, offset, len(raw), reason, _preview(raw))
    b.bad.append(bad)
    return (raw, offset, bad) if raw.startswith(b"{") else None
